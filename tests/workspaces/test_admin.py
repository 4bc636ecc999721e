"""The operator console: the workspace list shows where each runs and why; bulk actions call the
services and report what they refused."""

import pytest

from audit.models import AuditEvent
from workspaces.choices import WorkspaceStatus as S
from workspaces.models import Workspace

from ..factories import make_workspace, place

CHANGELIST = "/admin/workspaces/workspace/"


@pytest.fixture
def console(client, operator):
    client.force_login(operator)
    return client


def test_the_list_shows_server_and_placement_reason(console, alice, acme, default_image, local_server):
    workspace = make_workspace(alice, acme, default_image, "demo", S.RUNNING)
    place(workspace, local_server, reason="policy eu: least loaded in region eu")
    page = console.get(CHANGELIST, {"status__exact": "running"}).content.decode()
    assert "demo" in page and "policy eu: least loaded in region eu" in page and "local" in page


def test_bulk_stop_moves_the_running_and_reports_the_rest(console, alice, acme, default_image):
    first = make_workspace(alice, acme, default_image, "one", S.RUNNING)
    second = make_workspace(alice, acme, default_image, "two", S.RUNNING)
    stopped = make_workspace(alice, acme, default_image, "three", S.STOPPED)
    response = console.post(CHANGELIST, {"action": "stop_selected", "_selected_action": [first.pk, second.pk, stopped.pk]},
                            follow=True)
    statuses = dict(Workspace.objects.values_list("name", "status"))
    assert statuses == {"one": S.STOPPING, "two": S.STOPPING, "three": S.STOPPED}
    text = response.content.decode()
    assert "Stopping 2 workspace(s)." in text and "is stopped; it cannot go to stopping" in text
    assert AuditEvent.objects.filter(action="workspace.stop", actor_name="operator").count() == 2


def test_bulk_delete_and_retry_work_on_failed_workspaces(console, alice, acme, default_image):
    doomed = make_workspace(alice, acme, default_image, "doomed", S.FAILED)
    again = make_workspace(alice, acme, default_image, "again", S.FAILED)
    console.post(CHANGELIST, {"action": "delete_selected_workspaces", "_selected_action": [doomed.pk]})
    console.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [again.pk]})
    assert dict(Workspace.objects.values_list("name", "status")) == {"doomed": S.DELETING, "again": S.PENDING}
