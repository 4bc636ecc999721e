"""Request bodies that would exhaust the server: too deep or too big is a clear 4xx, read no further.

DRF parses the request stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE check (which guards
`request.body` and forms) never runs for JSON or raw bodies, and Python's json module raises
RecursionError (not ValueError) on deep nesting."""

import pytest

DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def api(api_client_for, alice):
    return api_client_for(alice)


def _post(api, url, body: str, content_type: str):
    return api.generic("POST", url, body.encode(), content_type=content_type)


@pytest.mark.parametrize("url", ["/api/v1/workspaces/", "/api/v1/api-tokens/"])
def test_json_nested_too_deep_is_a_400_not_a_crash(api, url):
    response = _post(api, url, DEEP_JSON, "application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_deep_json_to_the_files_api_is_a_400(api, placed_workspace):
    response = _post(api, f"/api/v1/workspaces/{placed_workspace.pk}/files/mkdir", DEEP_JSON, "application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(("url", "content_type"), [
    ("/api/v1/workspaces/", "application/json"),
    ("/api/v1/api-tokens/", "application/json"),
])
def test_a_body_over_the_request_limit_is_a_413(api, settings, url, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = _post(api, url, '{"name": "%s"}' % ("x" * 20_000), content_type)
    assert response.status_code == 413
    assert "10000 byte limit" in response.json()["detail"]


def test_a_patch_over_the_request_limit_is_a_413_before_it_is_read(api, settings, placed_workspace):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    diff = "--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+" + "y" * 20_000 + "\n"
    response = _post(api, f"/api/v1/workspaces/{placed_workspace.pk}/patch/", diff, "text/x-diff")
    assert response.status_code == 413


def test_a_body_within_the_limit_still_works(api, settings, default_image):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = api.post("/api/v1/api-tokens/", {"name": "ci"}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("length", ["abc", "-5", "1e3"])
def test_a_malformed_content_length_is_not_a_crash(api, placed_workspace, length):
    response = api.generic("PUT", f"/api/v1/workspaces/{placed_workspace.pk}/files/content?path=x.txt", b"data",
                           content_type="application/octet-stream", CONTENT_LENGTH=length)
    assert response.status_code < 500
