"""Paths under /api/ that match no route answer JSON 404s like every other API error, and
/api/v1/ lists the collections."""

import pytest

UNKNOWN = [
    "/api/v1/nope/",
    "/api/v1/workspaces/not-a-uuid/nope",
    "/api/v1/workspaces/00000000-0000-0000-0000-000000000000/nope/",
    "/api/v2/workspaces/",
    "/api/nope",
]


@pytest.mark.parametrize("path", UNKNOWN)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_paths_are_json_404s_for_anyone(api_client_for, alice, path, method):
    for user in (None, alice):
        response = getattr(api_client_for(user), method)(path)
        assert response.status_code == 404, (user, response.content[:200])
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"] == f"Not found: {path}"


def test_an_unknown_api_path_is_json_even_with_a_session_and_no_csrf_token(client, alice):
    """A signed-in browser's POST to a typo is a 404 too, not Django's HTML CSRF page."""
    client.force_login(alice)
    response = client.post("/api/v1/nope/", {"a": "b"})
    assert response.status_code == 404
    assert response.json()["detail"] == "Not found: /api/v1/nope/"


def test_a_get_that_only_lacks_the_trailing_slash_is_still_redirected(api_client_for, alice):
    response = api_client_for(alice).get("/api/v1/workspaces?limit=5")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/workspaces/?limit=5"


def test_a_post_that_only_lacks_the_trailing_slash_is_told_the_right_url(api_client_for, alice):
    response = api_client_for(alice).post("/api/v1/workspaces", {}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "Not found: /api/v1/workspaces (did you mean /api/v1/workspaces/?)"


def test_pages_outside_the_api_keep_the_html_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


def test_the_api_root_lists_every_collection_and_each_link_answers(api_client_for, operator):
    response = api_client_for(operator).get("/api/v1/")
    assert response.status_code == 200
    collections = response.json()
    for name in (
        "organizations", "memberships", "api-tokens", "workspaces", "workspace-images",
        "servers", "placement-policies", "audit-events",
    ):
        assert collections[name] == f"http://testserver/api/v1/{name}/"
    for url in collections.values():
        assert api_client_for(operator).get(url).status_code == 200, url


def test_the_api_root_refuses_anonymous(api_client_for, db):
    assert api_client_for(None).get("/api/v1/").status_code == 401
