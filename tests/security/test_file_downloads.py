"""Workspace files are user content served from Berth's own origin: a downloaded .html or .svg must
never render there (stored XSS). Every download is an attachment of a type no browser renders, with
sniffing off, whatever the file's name; the editor read is JSON, never the raw bytes."""

from urllib.parse import quote

import pytest

from tests.fixtures.workspace_files import folder_of

PAYLOAD = b"<html><script>alert(document.cookie)</script><svg onload=alert(1)></svg></html>"


@pytest.fixture
def api(api_client_for, alice):
    return api_client_for(alice)


def _download(api, workspace, name: str):
    return api.get(f"/api/v1/workspaces/{workspace.pk}/files/content?path={quote(name)}&download=1")


@pytest.mark.parametrize("name", [
    "page.html", "image.svg", "<img src=x onerror=alert(1)>.html", 'quote" onload=x.html', "a;b=c.html",
    "rapport-é.html", "报告.html", "emoji-😀.svg",
])
def test_a_download_is_always_an_attachment_that_is_not_sniffed(api, placed_workspace, name):
    (folder_of(placed_workspace) / name).write_bytes(PAYLOAD)
    response = _download(api, placed_workspace, name)
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; "), disposition
    assert "\n" not in disposition and "=?utf-8?" not in disposition


def test_a_non_ascii_name_is_kept_in_the_rfc_5987_form(api, placed_workspace):
    (folder_of(placed_workspace) / "报告.html").write_bytes(PAYLOAD)
    disposition = _download(api, placed_workspace, "报告.html")["Content-Disposition"]
    assert disposition == "attachment; filename*=utf-8''%E6%8A%A5%E5%91%8A.html"


def test_the_editor_read_of_html_is_json_not_markup(api, placed_workspace):
    (folder_of(placed_workspace) / "page.html").write_bytes(PAYLOAD)
    response = api.get(f"/api/v1/workspaces/{placed_workspace.pk}/files/content?path=page.html")
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.json()["content"] == PAYLOAD.decode()
