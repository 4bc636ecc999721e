"""End to end through the API on real servers: the local Docker engine and a server registered over
a private sshd (Docker and commands through the pinned SSH connection). Create -> running (hardened
container inspected), clone over HTTP, stop/start/restart/delete, retention."""

import os
from pathlib import Path

import pytest

from workspaces.choices import WorkspaceStatus as S

from .conftest import fresh

pytestmark = pytest.mark.docker

GIB = 1024**3


@pytest.fixture(params=["local_server", "ssh_server"])
def server(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def alice_api(alice, api_client_for):
    return api_client_for(alice)


def create(run_api, client, **body):
    response = run_api(client.post, "/api/v1/workspaces/", {"name": "demo", "memory_mb": 256, **body})
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == S.PENDING
    return fresh(response.json()["id"])


def test_an_empty_workspace_becomes_a_hardened_running_container(
    alice_api, run_api, default_image, server, server_containers, workspace_image, docker_engine
):
    workspace = create(run_api, alice_api, cpu="0.5")
    assert workspace.status == S.RUNNING, workspace.failure_reason
    placement = workspace.placement
    assert placement.server == server
    assert placement.data_path == f"{server.storage_root}/acme/{workspace.pk}"
    container = docker_engine.containers.get(f"berth-{workspace.pk}")
    host = container.attrs["HostConfig"]
    assert container.status == "running"
    assert container.labels["berth.workspace"] == str(workspace.pk)
    assert container.labels["berth.organization"] == "acme"
    assert [(m["Source"], m["Destination"]) for m in container.attrs["Mounts"]] == [(placement.data_path, "/workspace")]
    assert host["Memory"] == 256 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 1024
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["PidMode"] == "" and host["IpcMode"] != "host"
    assert host["Init"] is True
    assert container.attrs["Config"]["User"] == "1000:1000"
    assert not container.attrs["Config"]["AttachStdout"] and not container.attrs["Config"]["AttachStderr"]  # as run -d
    exit_code, output = container.exec_run(["sh", "-c", "id -u; grep -E 'CapEff|NoNewPrivs' /proc/self/status"])
    assert output.decode().split() == ["1000", "CapEff:", "0000000000000000", "NoNewPrivs:", "1"]
    assert (os.stat(placement.data_path).st_uid, os.stat(placement.data_path).st_mode & 0o777) == (1000, 0o755)


def test_it_clones_the_repository_owned_by_the_workspace_user(
    alice_api, run_api, default_image, server, server_containers, workspace_image, git_server
):
    workspace = create(run_api, alice_api, repo_url=f"{git_server}/demo.git", branch="feature")
    assert workspace.status == S.RUNNING, workspace.failure_reason
    folder = Path(workspace.placement.data_path)
    assert (folder / "README.md").read_text() == "hello from the test repository\n"
    assert (folder / "extra.txt").exists()
    assert {path.stat().st_uid for path in folder.rglob("*")} == {1000}
    assert server_containers() and all(c.name == f"berth-{workspace.pk}" for c in server_containers())


def test_a_failing_clone_fails_the_workspace_with_git_s_message(
    alice_api, run_api, default_image, server, server_containers, workspace_image, git_server
):
    workspace = create(run_api, alice_api, repo_url=f"{git_server}/missing.git")
    assert workspace.status == S.FAILED
    assert "git clone failed" in workspace.failure_reason
    assert server_containers() == []
    workspace.placement.refresh_from_db()
    assert workspace.placement.released is True


def test_stop_start_restart_and_delete_move_the_container(
    alice_api, run_api, default_image, server, server_containers, workspace_image, docker_engine
):
    workspace = create(run_api, alice_api)
    url = f"/api/v1/workspaces/{workspace.pk}/"
    name = f"berth-{workspace.pk}"

    response = run_api(alice_api.post, url + "stop/")
    assert response.status_code == 202 and response.json()["status"] == S.STOPPING
    assert fresh(workspace.pk).status == S.STOPPED
    assert docker_engine.containers.get(name).status == "exited"

    assert run_api(alice_api.post, url + "start/").status_code == 202
    assert fresh(workspace.pk).status == S.RUNNING
    container = docker_engine.containers.get(name)
    started = container.attrs["State"]["StartedAt"]
    assert container.status == "running"

    assert run_api(alice_api.post, url + "restart/").status_code == 202
    assert fresh(workspace.pk).status == S.RUNNING
    assert docker_engine.containers.get(name).attrs["State"]["StartedAt"] != started

    response = run_api(alice_api.delete, url)
    assert response.status_code == 202 and response.json()["status"] == S.DELETING
    deleted = fresh(workspace.pk)
    assert deleted.status == S.DELETED
    assert server_containers() == []
    assert not Path(deleted.placement.data_path).exists()
    server.refresh_from_db()
    assert (server.reserved_workspaces, server.reserved_memory_mb) == (0, 0)
    assert alice_api.get(url).status_code == 404


def test_with_retention_the_folder_outlives_the_delete_until_purged(
    alice_api, run_api, acme, default_image, server, server_containers, workspace_image
):
    from datetime import timedelta

    from django.utils import timezone

    from workspaces import tasks
    from workspaces.models import Workspace

    acme.deleted_data_retention = timedelta(days=7)
    acme.save()
    workspace = create(run_api, alice_api)
    run_api(alice_api.delete, f"/api/v1/workspaces/{workspace.pk}/")
    deleted = fresh(workspace.pk)
    folder = Path(deleted.placement.data_path)
    assert deleted.status == S.DELETED and folder.is_dir()
    assert server_containers() == []

    assert tasks.purge_expired_data() == 0
    assert folder.is_dir()
    Workspace.objects.filter(pk=workspace.pk).update(data_purge_after=timezone.now() - timedelta(seconds=1))
    assert tasks.purge_expired_data() == 1
    assert not folder.exists()
