"""The client's address behind load balancers (BERTH_TRUSTED_PROXIES): audit events and the sign-in
throttle count people, not the proxy; an X-Forwarded-For a client writes itself changes nothing."""

from ipaddress import ip_network

import pytest
from django.core.cache import cache

from audit.models import AuditEvent
from audit.services import verify_chain
from config.proxies import canonical_address, forwarded_client
from tenants.views import SIGN_IN_ATTEMPTS

BALANCER = "10.0.0.1"
PROXIES = (ip_network("10.0.0.0/24"), ip_network("fd00::/8"))


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.delete_pattern("berth:signin:*")
    yield
    cache.delete_pattern("berth:signin:*")


@pytest.fixture
def behind_balancer(settings):
    settings.BERTH_TRUSTED_PROXIES = PROXIES


def _sign_in(client, password="guess", forwarded_for=None, remote=BALANCER):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return client.post("/accounts/login/", {"username": "alice", "password": password}, REMOTE_ADDR=remote, **headers)


@pytest.mark.parametrize(("text", "address"), [
    ("198.51.100.7", "198.51.100.7"),
    (" 2001:DB8::7 ", "2001:db8::7"),
    ("::ffff:198.51.100.7", "198.51.100.7"),  # an IPv4 client of a dual-stack proxy
    ("::1", "::1"),
    ("fe80::1%eth0", None),
    ("::198.51.100.7", None),  # deprecated IPv4-compatible form
    ("198.51.100.7:443", None),
    ("", None),
])
def test_addresses_are_recorded_as_the_database_prints_them(text, address):
    assert canonical_address(text) == address


@pytest.mark.parametrize(("remote", "header", "client"), [
    (BALANCER, "198.51.100.7", "198.51.100.7"),
    (BALANCER, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the left part is the client's own claim
    (BALANCER, "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"),  # through two of our proxies
    ("fd00::1", "::ffff:198.51.100.7", "198.51.100.7"),
    ("198.51.100.9", "203.0.113.5", None),  # not from a proxy: reached Berth directly
    (BALANCER, "not-an-address, 198.51.100.7", "198.51.100.7"),
    (BALANCER, "198.51.100.7, not-an-address", None),
    (BALANCER, "198.51.100.7:51234", "198.51.100.7"),  # proxies that write the port too
    (BALANCER, "[2001:db8::7]:51234", "2001:db8::7"),
    (BALANCER, "10.0.0.9", None),  # only proxies
    (BALANCER, "", None),
])
def test_the_client_is_the_last_address_before_the_trusted_proxies(remote, header, client):
    assert forwarded_client(remote, header, PROXIES) == client


def test_without_trusted_proxies_a_forwarded_for_header_neither_hides_nor_unlocks_anyone(client, alice):
    for n in range(SIGN_IN_ATTEMPTS):
        _sign_in(client, forwarded_for=f"198.51.100.{n}")
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.200").status_code == 429
    assert set(AuditEvent.objects.filter(action="user.sign_in").values_list("source_ip", flat=True)) == {BALANCER}


def test_behind_a_trusted_balancer_each_client_is_throttled_and_audited_by_its_own_address(
    client, alice, behind_balancer
):
    for n in range(SIGN_IN_ATTEMPTS):  # the guesser varies what it claims; the balancer's entry stays
        _sign_in(client, forwarded_for=f"6.6.6.{n}, 198.51.100.7")
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.7").status_code == 429
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.8").status_code == 302  # someone else
    addresses = list(AuditEvent.objects.filter(action="user.sign_in").order_by("id").values_list("source_ip", flat=True))
    assert addresses == ["198.51.100.7"] * (SIGN_IN_ATTEMPTS + 1) + ["198.51.100.8"]


def test_a_client_reaching_berth_directly_cannot_claim_an_address(client, alice, behind_balancer):
    for n in range(SIGN_IN_ATTEMPTS):
        _sign_in(client, forwarded_for=f"198.51.100.{n}", remote="203.0.113.9")
    assert _sign_in(client, "alice-password", forwarded_for="198.51.100.99", remote="203.0.113.9").status_code == 429
    assert set(AuditEvent.objects.filter(action="user.sign_in").values_list("source_ip", flat=True)) == {"203.0.113.9"}


@pytest.mark.parametrize("forwarded_for", ["::ffff:198.51.100.7", "2001:DB8::7", "fe80::1%eth0", "<script>"])
def test_any_forwarded_address_leaves_the_audit_chain_verifiable(client, alice, behind_balancer, forwarded_for):
    _sign_in(client, forwarded_for=forwarded_for, remote="fd00::1")
    assert AuditEvent.objects.get(action="user.sign_in").source_ip in {"198.51.100.7", "2001:db8::7", "fd00::1"}
    assert verify_chain().intact
