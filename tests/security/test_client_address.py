"""The client's address behind a load balancer (BERTH_TRUSTED_PROXIES): audit events and the sign-in
throttle count people, not the proxy; an X-Forwarded-For a client writes itself changes nothing."""

import pytest
from django.core.cache import cache

from audit.models import AuditEvent
from config.proxies import forwarded_client
from tenants.views import SIGN_IN_ATTEMPTS

BALANCER = "10.0.0.1"


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.delete_pattern("berth:signin:*")
    yield
    cache.delete_pattern("berth:signin:*")


def _sign_in(client, password="guess", forwarded_for=None):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return client.post("/accounts/login/", {"username": "alice", "password": password}, REMOTE_ADDR=BALANCER, **headers)


@pytest.mark.parametrize(("header", "hops", "client"), [
    ("198.51.100.7", 1, "198.51.100.7"),
    ("6.6.6.6, 198.51.100.7", 1, "198.51.100.7"),  # the left part is the client's own claim
    ("6.6.6.6, 198.51.100.7, 10.0.0.9", 2, "198.51.100.7"),
    (" 2001:db8::7 ", 1, "2001:db8::7"),
    ("198.51.100.7", 2, None),  # did not come through both proxies
    ("not-an-address", 1, None),
    ("198.51.100.7", 0, None),  # no trusted proxy: the header is ignored
    ("", 1, None),
])
def test_the_client_is_the_entry_the_outermost_trusted_proxy_wrote(header, hops, client):
    assert forwarded_client(header, hops) == client


def test_without_trusted_proxies_a_forwarded_for_header_neither_hides_nor_unlocks_anyone(client, alice):
    for n in range(SIGN_IN_ATTEMPTS):
        _sign_in(client, forwarded_for=f"198.51.100.{n}")
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.200").status_code == 429
    assert set(AuditEvent.objects.filter(action="user.sign_in").values_list("source_ip", flat=True)) == {BALANCER}


def test_behind_a_trusted_balancer_each_client_is_throttled_and_audited_by_its_own_address(client, alice, settings):
    settings.BERTH_TRUSTED_PROXIES = 1
    for n in range(SIGN_IN_ATTEMPTS):  # the guesser varies what it claims; the balancer's entry stays
        _sign_in(client, forwarded_for=f"6.6.6.{n}, 198.51.100.7")
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.7").status_code == 429
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.8").status_code == 302  # someone else
    addresses = list(AuditEvent.objects.filter(action="user.sign_in").order_by("id").values_list("source_ip", flat=True))
    assert addresses == ["198.51.100.7"] * (SIGN_IN_ATTEMPTS + 1) + ["198.51.100.8"]


def test_a_malformed_forwarded_for_keeps_the_connection_s_address(client, alice, settings):
    settings.BERTH_TRUSTED_PROXIES = 1
    _sign_in(client, forwarded_for="<script>, x")
    assert AuditEvent.objects.get(action="user.sign_in").source_ip == BALANCER
