"""Text that comes from users or from remote output (git's stderr in a failure reason, a progress
message, a repository URL, a token name, a server's test result) is shown escaped on every page that
renders it: the home page, the live rows fragment, the workspace page and the operator console."""

import pytest
from django.urls import reverse

from tenants.services import issue_api_token
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace

PAYLOAD = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture
def hostile_workspace(placed_workspace):
    Workspace.objects.filter(pk=placed_workspace.pk).update(
        status=WorkspaceStatus.FAILED, failure_reason=f"git clone failed: {PAYLOAD}", status_message=PAYLOAD,
        repo_url=f"https://github.com/x/{PAYLOAD}",
    )
    return placed_workspace


def _assert_escaped(html: str) -> None:
    assert PAYLOAD not in html and "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_user_and_remote_text_is_escaped_on_every_page(client, alice, hostile_workspace):
    client.force_login(alice)
    _assert_escaped(client.get(reverse("home")).content.decode())
    _assert_escaped(client.get(reverse("workspace-page", args=[hostile_workspace.pk])).content.decode())
    rows = client.get(reverse("workspace-rows")).json()["rows"]
    _assert_escaped(rows[str(hostile_workspace.pk)])


def test_a_token_name_is_escaped_on_the_tokens_page(client, alice):
    issue_api_token(alice, name=PAYLOAD, expires_in=None)
    client.force_login(alice)
    _assert_escaped(client.get(reverse("api-tokens")).content.decode())


def test_the_console_escapes_workspace_text(client, operator, hostile_workspace):
    client.force_login(operator)
    _assert_escaped(client.get(reverse("admin:workspaces_workspace_changelist")).content.decode())
    _assert_escaped(client.get(reverse("admin:workspaces_workspace_change", args=[hostile_workspace.pk])).content.decode())


def test_the_console_escapes_what_a_server_answered(client, operator, local_server):
    local_server.last_test = [{"name": "docker", "result": "fail", "ok": False, "message": PAYLOAD}]
    local_server.status_message = PAYLOAD
    local_server.save(update_fields=["last_test", "status_message"])
    client.force_login(operator)
    _assert_escaped(client.get(reverse("admin:infrastructure_server_change", args=[local_server.pk])).content.decode())
