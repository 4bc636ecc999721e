"""Workspace fixtures: a git repository served over dumb HTTP on 127.0.0.1, removal of the
containers a test's workspaces created (by the storage folder of that test's server), and a helper
that drives the API with on-commit tasks run eagerly."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.docker import containers_under
from tests.fixtures.processes import free_port, listening, stop_process
from workspaces.models import Workspace


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.test", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="session")
def git_server(tmp_path_factory):
    """A bare repository `demo.git` (README.md on main, extra.txt on branch `feature`) served by
    python's http.server bound to 127.0.0.1 on a free port; yields its base URL, stopped afterwards."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("hello from the test repository\n")
    _git("add", "README.md", cwd=work)
    _git("commit", "-q", "-m", "first", cwd=work)
    _git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "extra.txt").write_text("only on feature\n")
    _git("add", "extra.txt", cwd=work)
    _git("commit", "-q", "-m", "feature", cwd=work)
    _git("checkout", "-q", "main", cwd=work)
    served = root / "served"
    served.mkdir()
    _git("clone", "-q", "--bare", str(work), str(served / "demo.git"), cwd=root)
    _git("update-server-info", cwd=served / "demo.git")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    assert listening("127.0.0.1", port, process), "the test git server did not start"
    yield f"http://127.0.0.1:{port}"
    stop_process(process, timeout=10)


@pytest.fixture
def server(local_server):
    """The server a test's workspaces land on; test modules may override it (e.g. with ssh_server)."""
    return local_server


@pytest.fixture
def server_containers(server, docker_engine):
    """Lists the Berth containers whose data lies in this test's storage folder (the server
    fixtures remove them afterwards)."""
    return lambda: containers_under(docker_engine, server.storage_root)


@pytest.fixture
def run_api(django_capture_on_commit_callbacks):
    """run_api(client.post, url, data) -> response, with the tasks it enqueued run (eager)."""

    def call(method, url, data=None):
        with django_capture_on_commit_callbacks(execute=True):
            return method(url, data, format="json") if data is not None else method(url)

    return call


def fresh(workspace_id) -> Workspace:
    return Workspace.objects.select_related("placement__server").get(pk=workspace_id)
