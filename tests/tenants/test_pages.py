"""Sign-in, sign-out, the organization switcher and the API tokens page, as a browser uses them."""

import pytest

from audit.choices import Outcome
from audit.models import AuditEvent
from tenants.choices import Role
from tenants.middleware import SESSION_KEY
from tenants.models import ApiToken, Membership
from tenants.services import issue_api_token


def test_the_sign_in_page_signs_a_person_in(client, alice):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-password", "next": "/tokens/"})
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    assert client.get("/tokens/").status_code == 200


def test_a_wrong_password_shows_an_error_and_is_audited(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope-sentinel"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    event = AuditEvent.objects.get(action="user.sign_in")
    assert event.outcome == Outcome.FAILURE and "alice" in event.message
    assert "nope-sentinel" not in repr(AuditEvent.objects.filter(pk=event.pk).values().get())


def test_signing_in_and_out_is_audited(client, alice):
    client.post("/accounts/login/", {"username": "alice", "password": "alice-password"})
    client.post("/accounts/logout/")
    events = AuditEvent.objects.filter(actor=alice).order_by("id")
    assert [(event.action, event.outcome) for event in events] == [
        ("user.sign_in", Outcome.SUCCESS), ("user.sign_out", Outcome.SUCCESS),
    ]


def test_signing_out_ends_the_session(client, alice):
    client.force_login(alice)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/tokens/")["Location"].startswith("/accounts/login/")


def test_pages_send_anonymous_people_to_sign_in(client, db):
    response = client.get("/tokens/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/tokens/"


def test_the_switcher_chooses_one_of_my_organizations(client, alice, globex):
    Membership.objects.create(user=alice, organization=globex, role=Role.MEMBER)
    client.force_login(alice)
    page = client.get("/tokens/").content.decode()
    assert "Globex" in page and "Acme" in page
    response = client.post("/organizations/switch/", {"organization": globex.pk, "next": "/tokens/"})
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    assert client.session[SESSION_KEY] == globex.pk
    assert client.get("/tokens/").context["active_organization"] == globex


def test_the_switcher_refuses_an_organization_i_do_not_belong_to(client, alice, globex):
    client.force_login(alice)
    assert client.post("/organizations/switch/", {"organization": globex.pk}).status_code == 404
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/"])
def test_the_switcher_never_redirects_off_site(client, alice, acme, next_url):
    client.force_login(alice)
    response = client.post("/organizations/switch/", {"organization": acme.pk, "next": next_url})
    assert response.status_code == 302 and "evil" not in response["Location"]


def test_the_switcher_takes_only_post(client, alice, acme):
    client.force_login(alice)
    assert client.get("/organizations/switch/", {"organization": acme.pk}).status_code == 405


def test_a_new_token_is_shown_once(client, alice):
    client.force_login(alice)
    response = client.post("/tokens/", {"name": "laptop", "expires_days": "30"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    raw = response.context["new_key"]
    assert raw.startswith("berth_") and raw in response.content.decode()
    token = ApiToken.objects.get(user=alice, name="laptop")
    assert token.expires_at is not None
    again = client.get("/tokens/").content.decode()
    assert raw not in again and token.prefix in again


def test_a_bad_token_form_is_refused(client, alice):
    client.force_login(alice)
    response = client.post("/tokens/", {"name": "", "expires_days": "7"})
    assert response.status_code == 400
    assert not ApiToken.objects.filter(user=alice).exists()


def test_revoking_from_the_page(client, alice):
    token, _ = issue_api_token(alice, name="laptop", expires_in=None)
    client.force_login(alice)
    response = client.post(f"/tokens/{token.pk}/revoke/", follow=True)
    assert "is revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_nobody_revokes_someone_elses_token_from_the_page(client, alice, bob):
    token, _ = issue_api_token(alice, name="laptop", expires_in=None)
    client.force_login(bob)
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert "laptop" not in client.get("/tokens/").content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
