import hashlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.choices import Outcome
from audit.models import AuditEvent, canonical_json
from infrastructure.remote import fileagent
from tests.api_contract import assert_audited
from tests.fixtures.workspace_files import folder_of, make_placed_workspace
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace

from .test_paths import TRAVERSAL_PAYLOADS


def files_url(workspace, suffix: str = "") -> str:
    return f"/api/v1/workspaces/{workspace.pk}/files/{suffix}"


def content_url(workspace, path: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return files_url(workspace, "content") + f"?path={path}" + (f"&{query}" if query else "")


def patch_url(workspace, preview: bool = False) -> str:
    return f"/api/v1/workspaces/{workspace.pk}/patch/" + ("?preview=1" if preview else "")


@pytest.fixture
def folder(placed_workspace) -> Path:
    return folder_of(placed_workspace)


@pytest.fixture
def api(api_client_for, alice):
    return api_client_for(alice)


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder next to, not inside, any workspace, holding a secret nobody may read or change."""
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("top secret\n")
    return secret


def refusals(workspace) -> int:
    return AuditEvent.objects.filter(action="file.path_refused", target_id=str(workspace.pk),
                                     outcome=Outcome.DENIED).count()


# Tree ---------------------------------------------------------------------------------------------

def test_tree_lists_one_level_with_name_type_size_and_modified(api, placed_workspace, folder):
    (folder / "src" / "pkg").mkdir(parents=True)
    (folder / "src" / "pkg" / "deep.py").write_text("x")
    (folder / "README.md").write_text("hello\n")
    response = api.get(files_url(placed_workspace))
    assert response.status_code == 200
    entries = {e["path"]: e for e in response.json()["entries"]}
    assert set(entries) == {"README.md", "src"}
    assert entries["README.md"]["type"] == "file" and entries["README.md"]["size"] == 6
    assert entries["README.md"]["name"] == "README.md" and entries["README.md"]["modified"].startswith("20")
    assert entries["src"]["type"] == "dir"


def test_tree_lists_a_sub_folder_to_a_depth_or_whole(api, placed_workspace, folder):
    (folder / "src" / "pkg").mkdir(parents=True)
    (folder / "src" / "pkg" / "deep.py").write_text("x")
    (folder / "src" / "top.py").write_text("x")
    two = api.get(files_url(placed_workspace) + "?path=src&depth=1").json()
    assert [e["path"] for e in two["entries"]] == ["src/pkg", "src/top.py"]
    whole = api.get(files_url(placed_workspace) + "?depth=all").json()
    assert {e["path"] for e in whole["entries"]} == {"src", "src/pkg", "src/pkg/deep.py", "src/top.py"}
    assert whole["truncated"] is False


@pytest.mark.parametrize(("query", "status"), [("?path=nothere", 404), ("?path=file.txt", 400),
                                               ("?depth=-1", 400), ("?depth=lots", 400), ("?depth=999", 400)])
def test_tree_refuses_bad_folders_and_depths(api, placed_workspace, folder, query, status):
    (folder / "file.txt").write_text("x")
    response = api.get(files_url(placed_workspace) + query)
    assert response.status_code == status
    assert response.json()["detail"]


# Content: read ------------------------------------------------------------------------------------

def test_read_returns_text_with_its_sha256_as_etag(api, placed_workspace, folder):
    (folder / "a.txt").write_text("héllo\n")
    response = api.get(content_url(placed_workspace, "a.txt"))
    assert response.status_code == 200
    digest = hashlib.sha256("héllo\n".encode()).hexdigest()
    assert response["ETag"] == f'"{digest}"'
    assert response.json()["content"] == "héllo\n" and response.json()["sha256"] == digest


def test_read_refuses_binary_but_downloads_it(api, placed_workspace, folder):
    (folder / "img.bin").write_bytes(b"\x89PNG\x00\x01\x02")
    refused = api.get(content_url(placed_workspace, "img.bin"))
    assert refused.status_code == 415 and "binary" in refused.json()["detail"]
    download = api.get(content_url(placed_workspace, "img.bin", download=1))
    assert download.status_code == 200
    assert download.content == b"\x89PNG\x00\x01\x02"
    assert download["Content-Disposition"] == 'attachment; filename="img.bin"'


def test_read_over_the_editor_limit_is_413(api, placed_workspace, folder, settings):
    settings.BERTH_EDITOR_MAX_BYTES = 10
    (folder / "big.txt").write_text("x" * 11)
    response = api.get(content_url(placed_workspace, "big.txt"))
    assert response.status_code == 413
    assert response.json()["size"] == 11


@pytest.mark.parametrize(("path", "status"), [("missing.txt", 404), ("src", 400), ("", 400)])
def test_read_refuses_missing_files_folders_and_no_path(api, placed_workspace, folder, path, status):
    (folder / "src").mkdir()
    assert api.get(content_url(placed_workspace, path)).status_code == status


# Content: write -----------------------------------------------------------------------------------

def test_write_json_creates_parents_atomically_and_owned_by_the_workspace_user(api, placed_workspace, folder):
    response = api.put(content_url(placed_workspace, "new/dir/file.py"), {"content": "print(1)\n"}, format="json")
    assert response.status_code == 200
    assert (folder / "new" / "dir" / "file.py").read_text() == "print(1)\n"
    digest = hashlib.sha256(b"print(1)\n").hexdigest()
    assert response.json()["sha256"] == digest and response["ETag"] == f'"{digest}"'
    assert (folder / "new" / "dir" / "file.py").stat().st_uid == 1000  # tests run as root: chowned
    assert (folder / "new").stat().st_uid == 1000
    assert not [p for p in (folder / "new" / "dir").iterdir() if p.name.startswith(".berth-")]  # no temp left


def test_write_raw_bytes(api, placed_workspace, folder):
    response = api.put(content_url(placed_workspace, "blob.bin"), b"\x00\x01raw", content_type="application/octet-stream")
    assert response.status_code == 200
    assert (folder / "blob.bin").read_bytes() == b"\x00\x01raw"


def test_write_with_a_stale_if_match_is_412_and_changes_nothing(api, placed_workspace, folder):
    (folder / "a.txt").write_text("v1\n")
    etag = api.get(content_url(placed_workspace, "a.txt"))["ETag"]
    (folder / "a.txt").write_text("v2 by someone else\n")
    stale = api.put(content_url(placed_workspace, "a.txt"), {"content": "mine\n"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert (folder / "a.txt").read_text() == "v2 by someone else\n"
    fresh = api.get(content_url(placed_workspace, "a.txt"))["ETag"]
    ok = api.put(content_url(placed_workspace, "a.txt"), {"content": "mine\n"}, format="json", HTTP_IF_MATCH=fresh)
    assert ok.status_code == 200 and (folder / "a.txt").read_text() == "mine\n"


def test_if_none_match_star_creates_but_never_overwrites(api, placed_workspace, folder):
    created = api.put(content_url(placed_workspace, "n.txt"), {"content": "1"}, format="json", HTTP_IF_NONE_MATCH="*")
    assert created.status_code == 200
    again = api.put(content_url(placed_workspace, "n.txt"), {"content": "2"}, format="json", HTTP_IF_NONE_MATCH="*")
    assert again.status_code == 409 and (folder / "n.txt").read_text() == "1"


def test_write_keeps_the_mode_of_the_file_it_replaces(api, placed_workspace, folder):
    script = folder / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    api.put(content_url(placed_workspace, "run.sh"), {"content": "#!/bin/sh\necho hi\n"}, format="json")
    assert script.stat().st_mode & 0o777 == 0o755


def test_write_over_the_upload_limit_is_413(api, placed_workspace, folder, settings):
    settings.BERTH_UPLOAD_MAX_BYTES = 16
    response = api.put(content_url(placed_workspace, "big.bin"), b"x" * 17, content_type="application/octet-stream")
    assert response.status_code == 413
    assert not (folder / "big.bin").exists()


@pytest.mark.parametrize("body", [{}, {"content": 5}, {"text": "x"}])
def test_write_needs_a_string_content(api, placed_workspace, body):
    response = api.put(content_url(placed_workspace, "a.txt"), body, format="json")
    assert response.status_code == 400 and "content" in response.json()["detail"]


def test_writing_over_a_folder_is_refused(api, placed_workspace, folder):
    (folder / "src").mkdir()
    response = api.put(content_url(placed_workspace, "src"), {"content": "x"}, format="json")
    assert response.status_code == 400 and (folder / "src").is_dir()


def test_a_write_is_audited_with_only_a_hash_and_counts_as_activity(api, placed_workspace, alice):
    Workspace.objects.filter(pk=placed_workspace.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))
    api.put(content_url(placed_workspace, "secret.env"), {"content": "TOKEN=sentinel-value-123\n"}, format="json")
    event = AuditEvent.objects.get(action="file.write", target_id=str(placed_workspace.pk))
    digest = hashlib.sha256(b"TOKEN=sentinel-value-123\n").hexdigest()
    assert event.actor == alice
    assert event.change_hash == hashlib.sha256(canonical_json({"path": "secret.env", "sha256": digest}).encode()).hexdigest()
    assert "sentinel-value-123" not in str(AuditEvent.objects.values().get(pk=event.pk))
    placed_workspace.refresh_from_db()
    assert timezone.now() - placed_workspace.last_activity_at < timedelta(seconds=5)


# Delete, move, mkdir ------------------------------------------------------------------------------

def test_delete_a_file_and_a_folder_tree(api, placed_workspace, folder):
    (folder / "a.txt").write_text("x")
    (folder / "tree" / "sub").mkdir(parents=True)
    (folder / "tree" / "sub" / "f").write_text("x")
    assert api.delete(content_url(placed_workspace, "a.txt")).status_code == 204
    assert api.delete(content_url(placed_workspace, "tree")).status_code == 204
    assert list(folder.iterdir()) == []
    assert api.delete(content_url(placed_workspace, "a.txt")).status_code == 404
    assert AuditEvent.objects.filter(action="file.delete").count() == 2


def test_delete_removes_a_link_never_what_it_points_to(api, placed_workspace, folder, outside):
    (folder / "tree").mkdir()
    (folder / "tree" / "link").symlink_to(outside)
    (folder / "escape").symlink_to(outside / "secret.txt")
    assert api.delete(content_url(placed_workspace, "escape")).status_code == 204
    assert api.delete(content_url(placed_workspace, "tree")).status_code == 204
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert not (folder / "tree").exists() and not (folder / "escape").is_symlink()


def test_move_renames_and_refuses_to_overwrite(api, placed_workspace, folder):
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    moved = api.post(files_url(placed_workspace, "move"), {"from": "a.txt", "to": "docs/c.txt"}, format="json")
    assert moved.status_code == 200 and moved.json() == {"from": "a.txt", "to": "docs/c.txt", "type": "file"}
    assert (folder / "docs" / "c.txt").read_text() == "a" and not (folder / "a.txt").exists()
    clash = api.post(files_url(placed_workspace, "move"), {"from": "b.txt", "to": "docs/c.txt"}, format="json")
    assert clash.status_code == 409 and (folder / "docs" / "c.txt").read_text() == "a"
    missing = api.post(files_url(placed_workspace, "move"), {"from": "nope", "to": "x"}, format="json")
    assert missing.status_code == 404
    into_itself = api.post(files_url(placed_workspace, "move"), {"from": "docs", "to": "docs/inner"}, format="json")
    assert into_itself.status_code == 400


def test_mkdir_creates_parents_and_refuses_an_existing_name(api, placed_workspace, folder):
    created = api.post(files_url(placed_workspace, "mkdir"), {"path": "a/b/c"}, format="json")
    assert created.status_code == 201 and (folder / "a" / "b" / "c").is_dir()
    again = api.post(files_url(placed_workspace, "mkdir"), {"path": "a/b/c"}, format="json")
    assert again.status_code == 409
    assert api.post(files_url(placed_workspace, "mkdir"), {}, format="json").status_code == 400


# Patch --------------------------------------------------------------------------------------------

PATCH = """\
--- a/app.py
+++ b/app.py
@@ -1,3 +1,3 @@
 import os
-print("old")
+print("new")
 # end
--- /dev/null
+++ b/docs/notes.md
@@ -0,0 +1 @@
+notes
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
"""


@pytest.fixture
def patchable(folder):
    (folder / "app.py").write_text('import os\nprint("old")\n# end\n')
    (folder / "gone.txt").write_text("bye\n")
    return folder


def test_patch_preview_lists_files_and_hunks_and_writes_nothing(api, placed_workspace, patchable):
    response = api.post(patch_url(placed_workspace, preview=True), {"diff": PATCH}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["applied"] is False
    assert [(f["path"], f["kind"]) for f in body["files"]] == [("app.py", "modify"), ("docs/notes.md", "add"),
                                                                ("gone.txt", "delete")]
    assert body["files"][0]["hunks"] == [{"header": "@@ -1,3 +1,3 @@", "added": 1, "removed": 1}]
    assert 'print("old")' in (patchable / "app.py").read_text() and (patchable / "gone.txt").exists()
    assert not AuditEvent.objects.filter(action="file.patch").exists()


def test_patch_applies_every_file_from_a_text_body(api, placed_workspace, patchable):
    response = api.post(patch_url(placed_workspace), PATCH, content_type="text/x-diff")
    assert response.status_code == 200 and response.json()["applied"] is True
    assert (patchable / "app.py").read_text() == 'import os\nprint("new")\n# end\n'
    assert (patchable / "docs" / "notes.md").read_text() == "notes\n"
    assert not (patchable / "gone.txt").exists()
    assert AuditEvent.objects.filter(action="file.patch", target_id=str(placed_workspace.pk)).count() == 1


def test_a_conflicting_patch_names_file_and_hunk_and_writes_nothing(api, placed_workspace, patchable):
    (patchable / "gone.txt").write_text("changed meanwhile\n")
    response = api.post(patch_url(placed_workspace), {"diff": PATCH}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["path"] == "gone.txt" and body["hunk"] == 1 and body["header"] == "@@ -1 +0,0 @@"
    assert 'print("old")' in (patchable / "app.py").read_text()  # the hunks that did match were not applied
    assert not (patchable / "docs").exists()


def test_a_file_changed_between_read_and_write_refuses_the_whole_patch(api, placed_workspace, patchable, monkeypatch):
    """The race after the hunks matched in memory: the agent re-checks every sha256 before writing,
    so nothing is written, not even the new file's folder."""
    real_handle = fileagent.handle

    def change_then_commit(request):
        if request["op"] == "commit":
            (patchable / "app.py").write_text('import os\nprint("old")\n# end\n# edited meanwhile\n')
        return real_handle(request)

    monkeypatch.setattr(fileagent, "handle", change_then_commit)
    response = api.post(patch_url(placed_workspace), {"diff": PATCH}, format="json")
    assert response.status_code == 409 and "nothing was written" in response.json()["detail"]
    assert not (patchable / "docs").exists() and (patchable / "gone.txt").exists()


def test_a_patch_adding_an_existing_file_is_409(api, placed_workspace, patchable):
    (patchable / "docs").mkdir()
    (patchable / "docs" / "notes.md").write_text("already\n")
    response = api.post(patch_url(placed_workspace), {"diff": PATCH}, format="json")
    assert response.status_code == 409 and response.json()["path"] == "docs/notes.md"


@pytest.mark.parametrize("diff", ["", "not a diff\n", "--- a/x\n+++ b/x\n@@ -1,5 +1 @@\n-a\n"])
def test_a_malformed_patch_is_400(api, placed_workspace, diff):
    response = api.post(patch_url(placed_workspace), {"diff": diff}, format="json")
    assert response.status_code == 400 and response.json()["detail"]


def test_a_patch_reaching_outside_is_400_and_audited(api, placed_workspace, patchable):
    diff = "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-root\n+evil\n"
    response = api.post(patch_url(placed_workspace), {"diff": diff}, format="json")
    assert response.status_code == 400
    assert refusals(placed_workspace) == 1


# Path safety --------------------------------------------------------------------------------------

# A lone surrogate cannot travel in a URL (it arrives as U+FFFD, a plain missing name).
@pytest.mark.parametrize("payload", [p for p in TRAVERSAL_PAYLOADS if p != "\udc80"])
def test_every_traversal_payload_is_400_and_an_audit_event(api, placed_workspace, payload):
    response = api.get(files_url(placed_workspace, "content"), {"path": payload})
    assert response.status_code == 400, payload
    assert refusals(placed_workspace) == 1


@pytest.mark.parametrize("payload", ["../x", "/etc/passwd", "a%2f..%2f..%2fx"])
def test_writes_moves_and_folders_refuse_traversal(api, placed_workspace, folder, payload):
    assert api.put(files_url(placed_workspace, "content") + f"?path={payload}", {"content": "x"},
                   format="json").status_code == 400
    assert api.post(files_url(placed_workspace, "move"), {"from": "a", "to": payload}, format="json").status_code == 400
    assert api.post(files_url(placed_workspace, "mkdir"), {"path": payload}, format="json").status_code == 400
    assert api.delete(files_url(placed_workspace, "content") + f"?path={payload}").status_code == 400
    assert refusals(placed_workspace) == 4
    assert list(folder.iterdir()) == []


def test_symlinks_out_of_the_workspace_are_refused_for_read_write_and_listing(api, placed_workspace, folder, outside):
    (folder / "out").symlink_to(outside)
    (folder / "abs").symlink_to(outside / "secret.txt")
    (folder / "rel").symlink_to("../../../../../../../.." + str(outside / "secret.txt"))
    for path in ("out/secret.txt", "abs", "rel"):
        response = api.get(content_url(placed_workspace, path))
        assert response.status_code == 400, path
        assert "top secret" not in response.content.decode()
    write = api.put(content_url(placed_workspace, "out/planted.txt"), {"content": "x"}, format="json")
    assert write.status_code == 400
    assert api.get(files_url(placed_workspace) + "?path=out").status_code == 400
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert refusals(placed_workspace) == 5


def test_symlinks_that_stay_inside_are_followed(api, placed_workspace, folder):
    (folder / "real").mkdir()
    (folder / "real" / "f.txt").write_text("inside\n")
    (folder / "alias").symlink_to("real")
    (folder / "real" / "up").symlink_to("../real/f.txt")
    assert api.get(content_url(placed_workspace, "alias/f.txt")).json()["content"] == "inside\n"
    assert api.get(content_url(placed_workspace, "real/up")).json()["content"] == "inside\n"
    listing = api.get(files_url(placed_workspace) + "?path=alias").json()
    assert [e["name"] for e in listing["entries"]] == ["f.txt", "up"]


def test_a_folder_swapped_for_a_symlink_mid_request_is_refused(api, placed_workspace, folder, outside, monkeypatch):
    """The race: the check saw a real folder, then the folder becomes a link to outside before the
    agent opens it. O_NOFOLLOW makes that open fail, so nothing outside is read or written."""
    (folder / "docs").mkdir()
    (folder / "docs" / "secret.txt").write_text("inside copy\n")
    real_open_dir = fileagent._open_dir

    def swap_then_open(name, dir_fd):
        if name == "docs" and (folder / "docs").is_dir() and not (folder / "docs").is_symlink():
            (folder / "docs").rename(folder / "docs.old")
            (folder / "docs").symlink_to(outside)
        return real_open_dir(name, dir_fd)

    monkeypatch.setattr(fileagent, "_open_dir", swap_then_open)
    read = api.get(content_url(placed_workspace, "docs/secret.txt"))
    assert read.status_code == 400 and "top secret" not in read.content.decode()
    (folder / "docs").unlink()
    (folder / "docs.old").rename(folder / "docs")
    write = api.put(content_url(placed_workspace, "docs/planted.txt"), {"content": "x"}, format="json")
    assert write.status_code == 400
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert refusals(placed_workspace) == 2


def test_a_file_swapped_for_a_symlink_mid_request_is_refused(api, placed_workspace, folder, outside, monkeypatch):
    (folder / "a.txt").write_text("mine\n")
    real_open_file = fileagent._open_file

    def swap_then_open(name, dir_fd):
        if name == "a.txt":
            os.unlink(folder / "a.txt")
            (folder / "a.txt").symlink_to(outside / "secret.txt")
        return real_open_file(name, dir_fd)

    monkeypatch.setattr(fileagent, "_open_file", swap_then_open)
    response = api.get(content_url(placed_workspace, "a.txt"))
    assert response.status_code == 400 and "top secret" not in response.content.decode()
    assert refusals(placed_workspace) == 1


# Who may do what ----------------------------------------------------------------------------------

ENDPOINT_CALLS = [
    ("get", "files/", None),
    ("get", "files/content?path=a.txt", None),
    ("put", "files/content?path=a.txt", {"content": "x"}),
    ("delete", "files/content?path=a.txt", None),
    ("post", "files/move", {"from": "a.txt", "to": "b.txt"}),
    ("post", "files/mkdir", {"path": "d"}),
]


def _call(client, workspace, method, suffix, body):
    if suffix == "patch":
        return client.post(patch_url(workspace), {"diff": "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"}, format="json")
    return getattr(client, method)(f"/api/v1/workspaces/{workspace.pk}/{suffix}", body, format="json")


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINT_CALLS + [("post", "patch", None)])
def test_another_organization_gets_404_and_anonymous_401(api_client_for, charlie, placed_workspace, folder,
                                                         method, suffix, body):
    (folder / "a.txt").write_text("a\n")
    assert _call(api_client_for(charlie), placed_workspace, method, suffix, body).status_code == 404
    assert _call(api_client_for(None), placed_workspace, method, suffix, body).status_code == 401
    assert (folder / "a.txt").read_text() == "a\n"


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINT_CALLS + [("post", "patch", None)])
def test_a_member_cannot_reach_someone_elses_workspace(api_client_for, bob, placed_workspace, folder,
                                                       method, suffix, body):
    (folder / "a.txt").write_text("a\n")
    assert _call(api_client_for(bob), placed_workspace, method, suffix, body).status_code == 404


def test_a_member_edits_their_own_workspace(api_client_for, bob, acme, local_server, default_image):
    mine = make_placed_workspace(owner=bob, organization=acme, server=local_server, image=default_image, name="bobs")
    client = api_client_for(bob)
    assert client.put(content_url(mine, "x.txt"), {"content": "bob\n"}, format="json").status_code == 200
    assert client.get(content_url(mine, "x.txt")).json()["content"] == "bob\n"


def test_an_admin_edits_members_workspaces(api_client_for, alice, bob, acme, local_server, default_image):
    bobs = make_placed_workspace(owner=bob, organization=acme, server=local_server, image=default_image, name="bobs")
    assert api_client_for(alice).put(content_url(bobs, "x.txt"), {"content": "hi"}, format="json").status_code == 200


def test_an_auditor_reads_but_cannot_write(api_client_for, auditor, placed_workspace, folder):
    (folder / "a.txt").write_text("a\n")
    client = api_client_for(auditor)
    assert client.get(files_url(placed_workspace)).status_code == 200
    assert client.get(content_url(placed_workspace, "a.txt")).status_code == 200
    assert client.post(patch_url(placed_workspace, preview=True),
                       {"diff": "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"}, format="json").status_code == 200
    for method, suffix, body in ENDPOINT_CALLS[2:] + [("post", "patch", None)]:
        response = _call(client, placed_workspace, method, suffix, body)
        assert response.status_code == 403, suffix
    assert (folder / "a.txt").read_text() == "a\n"


WRITES = [
    ("put", "files/content?path=a.txt", {"content": "x"}, "file.write", 200),
    ("delete", "files/content?path=a.txt", None, "file.delete", 204),
    ("post", "files/move", {"from": "a.txt", "to": "b.txt"}, "file.move", 200),
    ("post", "files/mkdir", {"path": "d"}, "file.mkdir", 201),
    ("post", "patch", None, "file.patch", 200),
]


@pytest.mark.parametrize(("method", "suffix", "body", "action", "status"), WRITES)
def test_every_write_succeeds_for_the_owner_and_is_audited_with_the_actor(api, alice, placed_workspace, folder,
                                                                            method, suffix, body, action, status):
    (folder / "a.txt").write_text("a\n")
    assert _call(api, placed_workspace, method, suffix, body).status_code == status
    event = assert_audited(action, actor=alice, target_id=placed_workspace.pk)
    assert event.organization == placed_workspace.organization and event.change_hash


# Workspace states ---------------------------------------------------------------------------------

def test_files_of_a_stopped_workspace_are_still_there(api, placed_workspace, folder):
    Workspace.objects.filter(pk=placed_workspace.pk).update(status=WorkspaceStatus.STOPPED)
    (folder / "a.txt").write_text("kept\n")
    assert api.get(content_url(placed_workspace, "a.txt")).json()["content"] == "kept\n"
    assert api.put(content_url(placed_workspace, "a.txt"), {"content": "edited\n"}, format="json").status_code == 200


def test_a_workspace_without_a_folder_yet_is_409(api, alice, acme, default_image):
    pending = Workspace.objects.create(organization=acme, owner=alice, name="pending", image=default_image, cpu=1,
                                       memory_mb=256)
    response = api.get(files_url(pending))
    assert response.status_code == 409 and "no folder yet" in response.json()["detail"]


@pytest.mark.parametrize("workspace_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_workspace_id_is_a_json_error(api, placed_workspace, workspace_id):
    response = api.get(f"/api/v1/workspaces/{workspace_id}/files/")
    assert response.status_code in (400, 404) and response.json()["detail"]


def test_a_deleted_workspace_is_404(api, placed_workspace):
    Workspace.objects.filter(pk=placed_workspace.pk).update(status=WorkspaceStatus.DELETED)
    assert api.get(files_url(placed_workspace)).status_code == 404


# Over SSH -----------------------------------------------------------------------------------------

@pytest.mark.ssh
def test_files_on_an_ssh_server_go_through_the_agent_over_ssh(api, alice, acme, ssh_server, default_image):
    assert not ssh_server.is_local
    workspace = make_placed_workspace(owner=alice, organization=acme, server=ssh_server, image=default_image)
    folder = folder_of(workspace)
    (folder / "src").mkdir()
    (folder / "src" / "app.py").write_text('print("old")\n')
    listing = api.get(files_url(workspace) + "?depth=all")
    assert listing.status_code == 200
    assert [e["path"] for e in listing.json()["entries"]] == ["src", "src/app.py"]
    etag = api.get(content_url(workspace, "src/app.py"))["ETag"]
    written = api.put(content_url(workspace, "src/app.py"), {"content": 'print("new")\n'}, format="json",
                      HTTP_IF_MATCH=etag)
    assert written.status_code == 200 and (folder / "src" / "app.py").read_text() == 'print("new")\n'
    diff = '--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1 @@\n-print("new")\n+print("patched")\n'
    assert api.post(patch_url(workspace), {"diff": diff}, format="json").status_code == 200
    assert (folder / "src" / "app.py").read_text() == 'print("patched")\n'
    (folder / "out").symlink_to("/etc")
    assert api.get(content_url(workspace, "out/hostname")).status_code == 400


@pytest.mark.ssh
def test_a_large_listing_over_ssh_is_one_command(api, alice, acme, ssh_server, sshd, default_image):
    workspace = make_placed_workspace(owner=alice, organization=acme, server=ssh_server, image=default_image)
    folder = folder_of(workspace)
    for n in range(60):
        (folder / f"dir{n:02d}" / "sub").mkdir(parents=True)
        (folder / f"dir{n:02d}" / "sub" / "f.txt").write_text("x")
    before = sshd.log().count("Starting session: command")
    listing = api.get(files_url(workspace) + "?depth=all")
    assert listing.status_code == 200 and len(listing.json()["entries"]) == 180
    assert sshd.log().count("Starting session: command") - before == 1
