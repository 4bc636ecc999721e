"""The file agent against what a workspace user can build inside the container: trees nested deeper
than Python's recursion limit, hard links, a folder moved into itself. Each is a clear answer (done,
or a 4xx), never a crash or a write outside the workspace folder."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import tracemalloc
from pathlib import Path

import pytest

from infrastructure.remote import fileagent
from tests.fixtures.workspace_files import folder_of
from workspaces.files import AGENT_SOURCE

DEPTH = 1500  # deeper than sys.getrecursionlimit() (1000): a container user builds this with one loop


@pytest.fixture
def api(api_client_for, alice):
    return api_client_for(alice)


def _files(workspace, suffix: str) -> str:
    return f"/api/v1/workspaces/{workspace.pk}/files/{suffix}"


@pytest.fixture
def deep(placed_workspace):
    """The workspace's folder `deep`: d/d/d/... DEPTH folders deep with a file at the bottom. Removed
    with rm -rf afterwards, since pytest's own temp cleanup (shutil.rmtree) recurses and would fail."""
    top = folder_of(placed_workspace) / "deep"
    _nest(top, DEPTH)
    yield top
    subprocess.run(["rm", "-rf", "--", str(top)], check=True)


def _nest(top: Path, depth: int) -> None:
    """Built relative to descriptors because the full path is longer than PATH_MAX."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def test_deleting_a_folder_nested_deeper_than_the_recursion_limit_works(api, placed_workspace, deep):
    response = api.delete(_files(placed_workspace, "content?path=deep"))
    assert response.status_code == 204, response.content
    assert not deep.exists()


def test_listing_a_very_deep_tree_stops_at_the_level_limit(api, placed_workspace, deep):
    response = api.get(_files(placed_workspace, "?path=deep&depth=all"))
    assert response.status_code == 200
    assert response.json()["truncated"] is True


def test_writing_to_a_hard_link_replaces_the_link_never_the_file_it_shares(api, placed_workspace, tmp_path):
    """Only the host can make such a link (the container sees no other path on that filesystem, and
    link() across its bind mount is EXDEV), but even then a write goes to a new file renamed over
    the name, so the other file keeps its bytes."""
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    os.link(outside, folder_of(placed_workspace) / "linked.txt")
    response = api.put(_files(placed_workspace, "content?path=linked.txt"), {"content": "inside\n"}, format="json")
    assert response.status_code == 200
    assert outside.read_text() == "outside\n"
    assert (folder_of(placed_workspace) / "linked.txt").read_text() == "inside\n"
    assert api.delete(_files(placed_workspace, "content?path=linked.txt")).status_code == 204
    assert outside.read_text() == "outside\n"


@pytest.mark.parametrize("target", ["src/inner", "src/a/b/c"])
def test_a_folder_cannot_be_moved_into_itself(api, placed_workspace, target):
    (folder_of(placed_workspace) / "src").mkdir()
    response = api.post(_files(placed_workspace, "move"), {"from": "src", "to": target}, format="json")
    assert response.status_code == 400
    assert (folder_of(placed_workspace) / "src").is_dir()


@pytest.fixture
def reachable_folder():
    """A folder uid 1000 can reach (pytest's own temp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="berth-agent-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


def test_a_write_by_an_agent_that_is_not_root_never_keeps_a_setuid_bit(reachable_folder):
    """On a server where Berth signs in as an ordinary user, a file the workspace user made setuid
    and then filled through the API would be that user's setuid program on the host."""
    root = reachable_folder / "ws"
    root.mkdir()
    tool = root / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chown(root, 1000, 1000)
    os.chown(tool, 1000, 1000)
    os.chmod(tool, 0o6755)
    request = {"op": "commit", "root": str(root), "changes": [
        {"path": "tool", "action": "write", "content": base64.b64encode(b"\x7fELF payload").decode()}]}
    done = subprocess.run(["python3", "-I", "-c", AGENT_SOURCE], input=json.dumps(request).encode(),
                          capture_output=True, timeout=30, check=True, user=1000, group=1000)
    assert json.loads(done.stdout)["ok"], done.stdout
    assert tool.read_bytes() == b"\x7fELF payload"
    assert tool.stat().st_mode & 0o7777 == 0o755


def _crowd(tmp_path) -> Path:
    """A workspace folder holding `crowd`, a folder of 50,000 long names."""
    root = tmp_path / "ws"
    (root / "crowd").mkdir(parents=True)
    fd = os.open(root / "crowd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for n in range(50_000):
            os.close(os.open(f"f{n:05d}-{'x' * 100}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return root


def test_listing_a_huge_folder_reads_no_more_entries_than_it_returns(tmp_path):
    """A workspace user can fill one folder with millions of names; a listing capped at `limit`
    must not hold them all in memory (in-process for the local engine: the web process)."""
    root = _crowd(tmp_path)
    tracemalloc.start()
    try:
        listing = fileagent.handle({"op": "tree", "root": str(root), "path": "crowd", "depth": 1, "limit": 5})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert listing["ok"] and listing["truncated"] and len(listing["entries"]) == 5
    assert peak < 1_000_000, f"peak {peak} bytes for 5 entries"


def test_deleting_a_huge_folder_does_not_hold_its_names(tmp_path):
    root = _crowd(tmp_path)
    tracemalloc.start()
    try:
        deleted = fileagent.handle({"op": "delete", "root": str(root), "path": "crowd"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert deleted["ok"] and not (root / "crowd").exists()
    assert peak < 1_000_000, f"peak {peak} bytes"
