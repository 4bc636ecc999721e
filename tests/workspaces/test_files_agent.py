"""The file agent on its own: the protocol an SSH server speaks, and limits the API does not reach."""

import base64
import json
import os
import subprocess

import pytest

from infrastructure.remote import fileagent
from workspaces.files import AGENT_SOURCE


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    return folder


def run_as_on_a_server(request: dict) -> dict:
    """Exactly what an SSH server runs: the constant source with -I, the request on stdin."""
    done = subprocess.run(["python3", "-I", "-c", AGENT_SOURCE], input=json.dumps(request).encode(),
                          capture_output=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_the_source_runs_standalone_with_json_on_stdin_and_stdout(root):
    (root / "a.txt").write_text("hello\n")
    listing = run_as_on_a_server({"op": "tree", "root": str(root), "depth": 0})
    assert listing["ok"] is True and [e["path"] for e in listing["entries"]] == ["a.txt"]
    read = run_as_on_a_server({"op": "read", "root": str(root), "path": "a.txt", "max_bytes": 100})
    assert base64.b64decode(read["content"]) == b"hello\n"


def test_a_request_that_is_not_json_is_an_invalid_answer_not_a_crash(root):
    done = subprocess.run(["python3", "-I", "-c", AGENT_SOURCE], input=b"{nope", capture_output=True, timeout=30)
    assert done.returncode == 0
    assert json.loads(done.stdout)["error"] == "invalid"


@pytest.mark.parametrize("request_body", [
    {"op": "explode"},
    {"op": "read"},
    {"op": "tree", "root": "relative/path"},
    {"op": "commit", "changes": [{"path": "a", "action": "chmod"}]},
])
def test_malformed_requests_are_refused(root, request_body):
    answer = fileagent.handle({"root": str(root), **request_body})
    assert answer["ok"] is False and answer["error"] in ("invalid", "not_found")


def test_a_missing_workspace_folder_is_not_found(root):
    answer = fileagent.handle({"op": "tree", "root": str(root / "gone")})
    assert answer["error"] == "not_found" and "missing" in answer["message"]


def test_a_listing_stops_at_its_limit_and_says_so(root):
    for n in range(10):
        (root / f"f{n}").write_text("x")
    answer = fileagent.handle({"op": "tree", "root": str(root), "depth": 0, "limit": 4})
    assert len(answer["entries"]) == 4 and answer["truncated"] is True


def test_depth_limits_the_levels_listed_without_calling_it_truncated(root):
    (root / "a" / "b" / "c").mkdir(parents=True)
    answer = fileagent.handle({"op": "tree", "root": str(root), "depth": 2})
    assert [e["path"] for e in answer["entries"]] == ["a", "a/b"] and answer["truncated"] is False


def test_special_files_are_listed_but_never_opened(root):
    os.mkfifo(root / "pipe")
    listing = fileagent.handle({"op": "tree", "root": str(root)})
    assert listing["entries"][0]["type"] == "other"
    answer = fileagent.handle({"op": "read", "root": str(root), "path": "pipe"})  # would block if opened for real
    assert answer["error"] == "not_a_file"


def test_a_link_loop_is_refused(root):
    (root / "loop").symlink_to("loop")
    answer = fileagent.handle({"op": "read", "root": str(root), "path": "loop/x"})
    assert answer["error"] == "refused"


def test_the_workspace_folder_itself_cannot_be_deleted_or_moved(root):
    assert fileagent.handle({"op": "delete", "root": str(root), "path": ""})["error"] in ("refused", "invalid")
    assert root.is_dir()


def test_stat_gives_type_size_and_sha256(root):
    (root / "a.txt").write_bytes(b"abc")
    answer = fileagent.handle({"op": "stat", "root": str(root), "path": "a.txt"})
    assert (answer["type"], answer["size"]) == ("file", 3)
    assert answer["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
