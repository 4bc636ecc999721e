"""What protects a signed-in browser: CSRF on every state-changing page and on the session-
authenticated API, no redirect off-site through `next`, no framing, a new session at sign-in."""

import pytest
from django.test import Client

from tenants.models import ApiToken
from tenants.services import issue_api_token
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace

EVIL = ["https://evil.example/", "//evil.example/", "/\\evil.example/", "https:evil.example", "\\\\evil.example"]


@pytest.fixture
def browser(alice):
    """alice signed in, with CSRF checked as a real browser request would be."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


@pytest.fixture
def token(alice):
    return issue_api_token(alice, name="laptop", expires_in=None)[0]


def _page_posts(workspace, token, acme):
    return [
        (f"/workspaces/{workspace.pk}/stop/", {}),
        (f"/workspaces/{workspace.pk}/delete/", {}),
        ("/workspaces/new/", {"name": "forged", "source": "empty", "size": "default"}),
        ("/tokens/", {"name": "forged"}),
        (f"/tokens/{token.pk}/revoke/", {}),
        ("/organizations/switch/", {"organization": acme.pk, "next": "/"}),
        ("/accounts/logout/", {}),
    ]


def test_every_page_post_without_the_csrf_token_is_refused_and_changes_nothing(browser, placed_workspace, token,
                                                                                 acme, default_image):
    for url, data in _page_posts(placed_workspace, token, acme):
        response = browser.post(url, data)
        assert response.status_code == 403, url
    placed_workspace.refresh_from_db()
    token.refresh_from_db()
    assert placed_workspace.status == WorkspaceStatus.RUNNING and token.revoked_at is None
    assert not Workspace.objects.filter(name="forged").exists() and not ApiToken.objects.filter(name="forged").exists()
    assert browser.get("/").status_code == 200  # still signed in: the logout was refused too


@pytest.mark.parametrize(("method", "url"), [
    ("post", "/api/v1/api-tokens/"),
    ("post", "/api/v1/workspaces/{ws}/stop/"),
    ("put", "/api/v1/workspaces/{ws}/files/content?path=forged.txt"),
    ("post", "/api/v1/workspaces/{ws}/files/mkdir"),
    ("delete", "/api/v1/workspaces/{ws}/"),
])
def test_the_api_with_a_session_needs_the_csrf_token(browser, placed_workspace, method, url):
    response = getattr(browser, method)(url.format(ws=placed_workspace.pk), {"name": "x", "path": "forged", "content": ""},
                                        content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.parametrize("target", EVIL)
def test_an_action_never_redirects_off_site(browser, placed_workspace, target):
    browser.get("/")  # sets the CSRF cookie
    response = browser.post(f"/workspaces/{placed_workspace.pk}/stop/",
                            {"next": target, "csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("target", EVIL)
def test_signing_in_never_redirects_off_site(client, alice, target):
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-password", "next": target})
    assert response.status_code == 302
    assert not response["Location"].lstrip("/").startswith(("evil", "\\")) and "evil" not in response["Location"]


def test_signing_in_starts_a_new_session(client, alice):
    planted = client.session  # a session an attacker could fix in the victim's browser before sign-in
    planted["planted"] = True
    planted.save()
    assert client.cookies["sessionid"].value == planted.session_key
    client.post("/accounts/login/", {"username": "alice", "password": "alice-password"})
    assert client.cookies["sessionid"].value != planted.session_key
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("url", ["/", "/tokens/", "/accounts/login/"])
def test_pages_may_not_be_framed(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_session_cookie_is_not_readable_by_script(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-password"})
    assert response.cookies["sessionid"]["httponly"]


def test_an_action_over_https_never_redirects_to_plain_http(browser, placed_workspace):
    browser.get("/", secure=True)
    response = browser.post(f"/workspaces/{placed_workspace.pk}/stop/", {
        "next": "http://testserver/tokens/", "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
    }, secure=True, HTTP_REFERER="https://testserver/")
    assert response.status_code == 302
    assert response["Location"] == "/"
