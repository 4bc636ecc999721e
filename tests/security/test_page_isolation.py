"""Tenant and role isolation through the browser (session) paths not pinned elsewhere: a colleague
(member) is a stranger to alice's workspace on every page, the live rows and the files API; an
auditor's page actions and file writes change nothing."""

import pytest
from django.urls import reverse

from tenants.choices import Role
from tenants.models import Membership, User
from tests.fixtures.workspace_files import folder_of
from workspaces.choices import WorkspaceStatus


@pytest.fixture
def auditor(acme):
    user = User.objects.create_user(username="audrey", password="audrey-password")
    Membership.objects.create(user=user, organization=acme, role=Role.AUDITOR)
    return user


@pytest.mark.parametrize("person", ["bob", "charlie"])
def test_someone_elses_workspace_is_not_found_on_any_page(client, request, placed_workspace, person):
    client.force_login(request.getfixturevalue(person))
    (folder_of(placed_workspace) / "secret.txt").write_text("alice's\n")
    ws = placed_workspace.pk
    assert client.get(reverse("workspace-page", args=[ws])).status_code == 404
    for action in ("stop", "restart", "delete"):
        assert client.post(reverse("workspace-action", args=[ws, action])).status_code == 404
    assert str(ws) not in client.get(reverse("workspace-rows")).json()["rows"]
    assert client.get(f"/api/v1/workspaces/{ws}/files/content?path=secret.txt").status_code == 404
    assert client.get(f"/api/v1/workspaces/{ws}/files/?depth=all").status_code == 404
    placed_workspace.refresh_from_db()
    assert placed_workspace.status == WorkspaceStatus.RUNNING


def test_an_auditors_page_actions_and_file_writes_change_nothing(client, auditor, placed_workspace):
    client.force_login(auditor)
    ws = placed_workspace.pk
    response = client.post(reverse("workspace-action", args=[ws, "delete"]), follow=True)
    assert "may view this workspace but not change it" in response.content.decode()
    put = client.put(f"/api/v1/workspaces/{ws}/files/content?path=planted.txt", {"content": "x"},
                     content_type="application/json")
    assert put.status_code == 403
    placed_workspace.refresh_from_db()
    assert placed_workspace.status == WorkspaceStatus.RUNNING
    assert not (folder_of(placed_workspace) / "planted.txt").exists()
