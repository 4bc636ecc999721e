"""The caches are always right for the user who changes something, and Redis down is not an error."""

import pytest
from django.core.cache import cache
from django.test import override_settings

from tests.fixtures.workspace_files import folder_of
from workspaces import cache as workspace_cache
from workspaces.choices import WorkspaceStatus
from workspaces.state import report_progress, transition

from .test_files_api import content_url, files_url

CLOSED_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
}


@pytest.fixture
def api(api_client_for, alice):
    return api_client_for(alice)


def listed(api, workspace, query=""):
    response = api.get(files_url(workspace) + query)
    assert response.status_code == 200
    return sorted(e["path"] for e in response.json()["entries"]), response["X-Berth-Cache"]


def test_these_tests_use_the_real_redis(settings):
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    cache.set("berth:test:ping", 1)
    assert cache.get("berth:test:ping") == 1


def test_a_listing_is_cached_for_a_minute(api, placed_workspace):
    folder = folder_of(placed_workspace)
    (folder / "a.txt").write_text("a")
    assert listed(api, placed_workspace) == (["a.txt"], "miss")
    (folder / "from-the-terminal.txt").write_text("b")  # a change Berth does not see
    assert listed(api, placed_workspace) == (["a.txt"], "hit")
    assert listed(api, placed_workspace, "?refresh=1") == (["a.txt", "from-the-terminal.txt"], "miss")
    assert listed(api, placed_workspace) == (["a.txt", "from-the-terminal.txt"], "hit")  # refresh stored it


def test_you_see_your_own_write_at_once_in_the_folder_and_every_ancestor(api, placed_workspace):
    (folder_of(placed_workspace) / "src" / "pkg").mkdir(parents=True)
    listed(api, placed_workspace, "?depth=all")
    listed(api, placed_workspace, "?path=src")
    listed(api, placed_workspace, "?path=src/pkg")
    api.put(content_url(placed_workspace, "src/pkg/new.py"), {"content": "x"}, format="json")
    assert listed(api, placed_workspace, "?path=src/pkg") == (["src/pkg/new.py"], "miss")
    assert listed(api, placed_workspace, "?path=src") == (["src/pkg"], "miss")
    whole = listed(api, placed_workspace, "?depth=all")
    assert whole == (["src", "src/pkg", "src/pkg/new.py"], "miss")


def test_a_write_leaves_unrelated_folders_cached(api, placed_workspace):
    folder = folder_of(placed_workspace)
    (folder / "docs").mkdir()
    (folder / "src").mkdir()
    listed(api, placed_workspace, "?path=docs")
    api.put(content_url(placed_workspace, "src/new.py"), {"content": "x"}, format="json")
    assert listed(api, placed_workspace, "?path=docs")[1] == "hit"


@pytest.mark.parametrize("change", ["delete", "move", "mkdir", "patch"])
def test_every_kind_of_change_invalidates_what_it_touched(api, placed_workspace, change):
    folder = folder_of(placed_workspace)
    (folder / "d" / "sub").mkdir(parents=True)
    (folder / "d" / "sub" / "f.txt").write_text("old\n")
    listed(api, placed_workspace, "?path=d/sub")
    listed(api, placed_workspace, "?path=d")
    if change == "delete":
        api.delete(content_url(placed_workspace, "d/sub"))
        assert api.get(files_url(placed_workspace) + "?path=d/sub").status_code == 404  # not a stale listing
        expected = []
    elif change == "move":
        api.post(files_url(placed_workspace, "move"), {"from": "d/sub", "to": "d/moved"}, format="json")
        assert api.get(files_url(placed_workspace) + "?path=d/sub").status_code == 404
        expected = ["d/moved"]
    elif change == "mkdir":
        api.post(files_url(placed_workspace, "mkdir"), {"path": "d/new"}, format="json")
        expected = ["d/new", "d/sub"]
    else:
        diff = "--- /dev/null\n+++ b/d/added.txt\n@@ -0,0 +1 @@\n+x\n"
        assert api.post(f"/api/v1/workspaces/{placed_workspace.pk}/patch/", {"diff": diff}, format="json").status_code == 200
        expected = ["d/added.txt", "d/sub"]
    assert listed(api, placed_workspace, "?path=d") == (expected, "miss")


class TestWorkspaceList:
    def build_counter(self, placed_workspace):
        calls = []

        def build():
            calls.append(1)
            return [placed_workspace.status]

        return calls, build

    def rows(self, alice, placed_workspace, build):
        return workspace_cache.cached_workspace_list(alice, placed_workspace.organization, "owner", build)

    def test_it_is_built_once_then_served(self, alice, placed_workspace):
        calls, build = self.build_counter(placed_workspace)
        self.rows(alice, placed_workspace, build)
        self.rows(alice, placed_workspace, build)
        assert len(calls) == 1

    def test_a_status_change_or_progress_message_rebuilds_it(self, alice, placed_workspace,
                                                              django_capture_on_commit_callbacks):
        calls, build = self.build_counter(placed_workspace)
        self.rows(alice, placed_workspace, build)
        with django_capture_on_commit_callbacks(execute=True):
            transition(placed_workspace, WorkspaceStatus.STOPPING)
        assert self.rows(alice, placed_workspace, build) == [WorkspaceStatus.STOPPING]
        with django_capture_on_commit_callbacks(execute=True):
            report_progress(placed_workspace, "stopping the container")
        self.rows(alice, placed_workspace, build)
        assert len(calls) == 3

    def test_a_rolled_back_change_keeps_it(self, alice, placed_workspace, django_capture_on_commit_callbacks):
        calls, build = self.build_counter(placed_workspace)
        self.rows(alice, placed_workspace, build)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            transition(placed_workspace, WorkspaceStatus.STOPPING)
        assert len(callbacks) == 1  # the bump waits for a commit that, here, never comes
        self.rows(alice, placed_workspace, build)
        assert len(calls) == 1

    def test_a_new_workspace_appears_at_once_even_while_it_waits_for_a_server(
        self, alice, bob, acme, default_image, django_capture_on_commit_callbacks
    ):
        """With no server, placement rolls back and changes no status: the create itself must
        invalidate, or alice would not see bob's new workspace for five minutes."""
        from workspaces.models import Workspace
        from workspaces.services import create_workspace

        def names():
            return sorted(Workspace.objects.filter(organization=acme).values_list("name", flat=True))

        assert workspace_cache.cached_workspace_list(alice, acme, "owner", names) == []
        with django_capture_on_commit_callbacks(execute=True):
            create_workspace(organization=acme, owner=bob, name="fresh", actor=bob)
        assert Workspace.objects.get(name="fresh").status == WorkspaceStatus.PENDING
        assert workspace_cache.cached_workspace_list(alice, acme, "owner", names) == ["fresh"]

    def test_another_role_has_its_own_entry(self, alice, placed_workspace):
        calls, build = self.build_counter(placed_workspace)
        self.rows(alice, placed_workspace, build)
        workspace_cache.cached_workspace_list(alice, placed_workspace.organization, "auditor", build)
        assert len(calls) == 2


@override_settings(CACHES=CLOSED_REDIS)
def test_with_redis_down_the_files_api_still_works(api, placed_workspace):
    folder = folder_of(placed_workspace)
    (folder / "a.txt").write_text("a\n")
    assert listed(api, placed_workspace) == (["a.txt"], "miss")
    assert api.put(content_url(placed_workspace, "b.txt"), {"content": "b\n"}, format="json").status_code == 200
    assert listed(api, placed_workspace) == (["a.txt", "b.txt"], "miss")
    assert api.get(content_url(placed_workspace, "b.txt")).json()["content"] == "b\n"
    transition(placed_workspace, WorkspaceStatus.STOPPING)  # the invalidation hook runs, quietly
