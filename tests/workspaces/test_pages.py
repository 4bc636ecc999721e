import urllib.request

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from infrastructure.models import Server
from tenants.models import User
from tests.fixtures.workspace_files import make_placed_workspace
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace
from workspaces.state import transition

from .test_cache import CLOSED_REDIS


@pytest.fixture
def alice_browser(client, alice):
    client.force_login(alice)
    return client


def test_home_needs_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_home_lists_the_workspace_with_status_server_image_and_actions(alice_browser, placed_workspace):
    page = alice_browser.get("/").content.decode()
    assert "demo" in page
    assert 'class="badge status-running">Running<' in page
    assert "local" in page and "Debian 12 with git" in page
    assert reverse("workspace-action", args=[placed_workspace.pk, "stop"]) in page
    assert reverse("workspace-action", args=[placed_workspace.pk, "start"]) not in page


def test_home_queries_do_not_grow_with_the_number_of_workspaces(alice_browser, alice, bob, acme, local_server,
                                                               default_image):
    def queries() -> int:
        cache.clear()  # the list is built, not served
        with CaptureQueriesContext(connection) as captured:
            assert alice_browser.get("/").status_code == 200
        return len(captured)

    make_placed_workspace(owner=alice, organization=acme, server=local_server, image=default_image, name="one")
    few = queries()
    for n in range(4):
        owner = bob if n % 2 else alice
        make_placed_workspace(owner=owner, organization=acme, server=local_server, image=default_image, name=f"w{n}")
    assert queries() <= few + 1  # +1: can_manage asked once more, for other people's workspaces


def test_a_member_sees_only_their_own_and_another_org_nothing(client, bob, charlie, placed_workspace):
    client.force_login(bob)
    assert "demo" not in client.get("/").content.decode()
    client.force_login(charlie)
    page = client.get("/").content.decode()
    assert "demo" not in page and "No workspaces yet" in page


def test_an_auditor_sees_workspaces_without_buttons_or_create_form(client, auditor, placed_workspace):
    client.force_login(auditor)
    page = client.get("/").content.decode()
    assert "demo" in page
    assert "/stop/" not in page and "New workspace" not in page


def test_empty_states_say_what_to_do_next(client, alice_browser, default_image):
    assert not Server.objects.exists()
    page = alice_browser.get("/").content.decode()
    assert "No servers registered yet: an operator adds one in the console" in page
    assert "No workspaces yet: create one with the form below" in page
    loner = User.objects.create_user(username="loner", password="x")
    client.force_login(loner)
    assert "You are not in an organization yet" in client.get("/").content.decode()


def test_creating_a_workspace_shows_it_at_once(alice_browser, alice, default_image, local_server):
    alice_browser.get("/")  # the list is now cached
    response = alice_browser.post(reverse("workspace-create"), {
        "name": "fresh", "source": "empty", "image": default_image.pk, "size": "default",
    })
    assert response.status_code == 302
    created = Workspace.objects.get(name="fresh")
    assert created.owner == alice and created.repo_url == ""
    page = alice_browser.get("/").content.decode()
    assert "fresh" in page and "is being created" in page


def test_creating_a_clone_passes_url_and_branch(alice_browser, default_image, local_server, settings):
    settings.GIT_ALLOWED_HOSTS = ["github.com"]
    alice_browser.post(reverse("workspace-create"), {
        "name": "cloned", "source": "clone", "repo_url": "https://github.com/acme/app", "branch": "main",
        "image": default_image.pk, "size": "small",
    })
    created = Workspace.objects.get(name="cloned")
    assert (created.repo_url, created.branch, created.memory_mb) == ("https://github.com/acme/app", "main", 1024)


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "Bad Name!", "source": "empty", "size": "default"}, "lowercase letters"),
    ({"name": "ok", "source": "clone", "repo_url": "", "size": "default"}, "Enter the repository to clone."),
    ({"name": "ok", "source": "clone", "repo_url": "http://evil.example/x", "size": "default"}, "repo"),
    ({"name": "ok", "source": "empty", "size": "large"}, "at most"),
])
def test_create_errors_are_shown_inline(alice_browser, default_image, data, message):
    response = alice_browser.post(reverse("workspace-create"), {**data, "image": default_image.pk})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'class="errorlist' in page and message.lower() in page.lower()
    assert "Traceback" not in page
    assert not Workspace.objects.filter(name="ok").exists()


def test_stop_asks_the_service_and_reports_back(alice_browser, placed_workspace):
    response = alice_browser.post(reverse("workspace-action", args=[placed_workspace.pk, "stop"]), follow=True)
    placed_workspace.refresh_from_db()
    assert placed_workspace.status == WorkspaceStatus.STOPPING
    assert "Stop: demo" in response.content.decode()


def test_a_refused_action_is_a_message_not_an_error_page(alice_browser, placed_workspace):
    response = alice_browser.post(reverse("workspace-action", args=[placed_workspace.pk, "start"]), follow=True)
    assert response.status_code == 200
    assert "cannot go to starting" in response.content.decode()


def test_actions_on_another_orgs_workspace_are_404(client, charlie, placed_workspace):
    client.force_login(charlie)
    assert client.post(reverse("workspace-action", args=[placed_workspace.pk, "stop"])).status_code == 404
    assert client.get(reverse("workspace-page", args=[placed_workspace.pk])).status_code == 404
    placed_workspace.refresh_from_db()
    assert placed_workspace.status == WorkspaceStatus.RUNNING


def test_an_unknown_action_is_404(alice_browser, placed_workspace):
    assert alice_browser.post(reverse("workspace-action", args=[placed_workspace.pk, "explode"])).status_code == 404


def test_actions_need_post(alice_browser, placed_workspace):
    assert alice_browser.get(reverse("workspace-action", args=[placed_workspace.pk, "stop"])).status_code == 405


def test_the_list_shows_a_status_change_made_elsewhere(alice_browser, placed_workspace, django_capture_on_commit_callbacks):
    assert "status-running" in alice_browser.get("/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        transition(placed_workspace, WorkspaceStatus.STOPPING, message="Stopping the container")
    page = alice_browser.get("/").content.decode()
    assert "status-stopping" in page and "Stopping the container" in page


def test_rows_endpoint_gives_fresh_rows_for_live_updates(alice_browser, placed_workspace,
                                                         django_capture_on_commit_callbacks):
    first = alice_browser.get(reverse("workspace-rows")).json()
    assert first["in_flight"] is False
    with django_capture_on_commit_callbacks(execute=True):
        transition(placed_workspace, WorkspaceStatus.STOPPING, message="Cloning: 42%")
    second = alice_browser.get(reverse("workspace-rows")).json()
    assert second["in_flight"] is True
    assert "Cloning: 42%" in second["rows"][str(placed_workspace.pk)]
    with django_capture_on_commit_callbacks(execute=True):
        transition(placed_workspace, WorkspaceStatus.STOPPED)
    third = alice_browser.get(reverse("workspace-rows") + "?next=/elsewhere/").json()
    assert 'name="next" value="/elsewhere/"' in third["rows"][str(placed_workspace.pk)]
    assert 'value="https://evil.example"' not in alice_browser.get(
        reverse("workspace-rows") + "?next=https://evil.example").json()["rows"][str(placed_workspace.pk)]


def test_workspace_page_has_tree_editor_and_patch_box(alice_browser, placed_workspace):
    page = alice_browser.get(reverse("workspace-page", args=[placed_workspace.pk])).content.decode()
    assert 'id="tree"' in page and 'id="editor"' in page and 'id="patch-text"' in page
    assert f'data-api="/api/v1/workspaces/{placed_workspace.pk}/"' in page
    assert 'data-may-edit="1"' in page


def test_workspace_page_without_a_folder_says_why(alice_browser, alice, acme, default_image):
    pending = Workspace.objects.create(organization=acme, owner=alice, name="waiting", image=default_image, cpu=1,
                                       memory_mb=256)
    page = alice_browser.get(reverse("workspace-page", args=[pending.pk])).content.decode()
    assert "no folder yet" in page and 'id="editor"' not in page


def test_an_auditor_gets_a_read_only_workspace_page(client, auditor, placed_workspace):
    client.force_login(auditor)
    page = client.get(reverse("workspace-page", args=[placed_workspace.pk])).content.decode()
    assert 'data-may-edit="0"' in page and 'id="save"' not in page


def test_static_assets_are_served_by_the_app(alice_browser, live_server):
    for name in ("berth/berth.css", "berth/live.js", "berth/workspace.js"):
        with urllib.request.urlopen(f"{live_server.url}/static/{name}") as response:  # 127.0.0.1 only
            assert response.status == 200


@override_settings(CACHES=CLOSED_REDIS)
def test_with_redis_down_the_pages_still_work(alice_browser, alice, acme, local_server, default_image):
    workspace = make_placed_workspace(owner=alice, organization=acme, server=local_server, image=default_image)
    assert alice_browser.get("/").status_code == 200
    assert alice_browser.get(reverse("workspace-rows")).status_code == 200
    assert alice_browser.get(reverse("workspace-page", args=[workspace.pk])).status_code == 200
    response = alice_browser.post(reverse("workspace-create"), {
        "name": "during-outage", "source": "empty", "image": default_image.pk, "size": "default",
    })
    assert response.status_code == 302
    assert "during-outage" in alice_browser.get("/").content.decode()
