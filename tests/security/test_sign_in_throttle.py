"""Password guessing on the sign-in page is slowed: after SIGN_IN_ATTEMPTS failures for one username
from one address, the page answers 429 without checking the password, for SIGN_IN_WINDOW."""

import pytest
from django.core.cache import cache

from audit.choices import Outcome
from audit.models import AuditEvent
from tenants.views import SIGN_IN_ATTEMPTS


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.delete_pattern("berth:signin:*")
    yield
    cache.delete_pattern("berth:signin:*")


def _sign_in(client, username, password, address="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_after_too_many_failures_even_the_right_password_is_refused_for_a_while(client, alice):
    for _ in range(SIGN_IN_ATTEMPTS):
        assert _sign_in(client, "alice", "guess").status_code == 200
    response = _sign_in(client, "Alice ", "alice-password")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="user.sign_in", outcome=Outcome.FAILURE).count() == SIGN_IN_ATTEMPTS + 1


def test_other_people_and_other_addresses_are_not_locked_out(client, alice, bob):
    for _ in range(SIGN_IN_ATTEMPTS):
        _sign_in(client, "alice", "guess")
    assert _sign_in(client, "bob", "bob-password").status_code == 302
    client.logout()
    assert _sign_in(client, "alice", "alice-password", address="10.0.0.2").status_code == 302


def test_a_successful_sign_in_starts_the_count_again(client, alice):
    for _ in range(SIGN_IN_ATTEMPTS - 1):
        _sign_in(client, "alice", "guess")
    assert _sign_in(client, "alice", "alice-password").status_code == 302
    client.logout()
    for _ in range(SIGN_IN_ATTEMPTS - 1):
        _sign_in(client, "alice", "guess")
    assert _sign_in(client, "alice", "alice-password").status_code == 302


def test_an_ipv6_client_cannot_escape_the_count_by_moving_within_its_64(client, alice):
    """A subscriber usually holds a whole /64: each of its addresses is the same client."""
    for n in range(SIGN_IN_ATTEMPTS):
        _sign_in(client, "alice", "guess", address=f"2001:db8:1:2::{n + 1:x}")
    assert _sign_in(client, "alice", "alice-password", address="2001:db8:1:2:ffff::9").status_code == 429
    assert _sign_in(client, "alice", "alice-password", address="2001:db8:1:3::1").status_code == 302
