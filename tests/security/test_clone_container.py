"""The short-lived clone container is as hardened as the workspace container it prepares: it runs a
repository's git over the network with the workspace folder mounted, so it gets the workspace user,
no capabilities in effect, no new privileges, only that folder, none of Berth's environment.

The clone is pointed at a host that accepts and never answers, so the container lives long enough to
be inspected; the clone timeout then fails the workspace."""

import threading

import pytest

from tests.fixtures.ssh import SilentListener
from tests.workspaces.conftest import fresh, run_api, server, server_containers  # noqa: F401 - fixtures
from workspaces.choices import WorkspaceStatus

pytestmark = pytest.mark.docker


def _watch_clone(docker_engine, storage_root: str, seen: dict, stop: threading.Event) -> None:
    """Record the full inspection of the first clone container whose data lies under storage_root."""
    while not stop.is_set() and not seen:
        for container in docker_engine.containers.list(filters={"label": "berth.role=clone"}):
            if container.labels.get("berth.data", "").startswith(storage_root):
                container.reload()
                seen.update(container.attrs)
                return
        stop.wait(0.05)


def test_the_clone_runs_hardened_with_only_the_workspace_folder(
    api_client_for, alice, run_api, default_image, server, server_containers, workspace_image,  # noqa: F811
    docker_engine, settings,
):
    settings.BERTH_CLONE_TIMEOUT = 4
    listener, seen, stop = SilentListener(), {}, threading.Event()
    watcher = threading.Thread(target=_watch_clone, args=(docker_engine, server.storage_root, seen, stop))
    watcher.start()
    try:
        response = run_api(api_client_for(alice).post, "/api/v1/workspaces/",
                           {"name": "hang", "repo_url": f"http://127.0.0.1:{listener.port}/x.git"})
    finally:
        stop.set()
        watcher.join()
        listener.close()
    workspace = fresh(response.json()["id"])
    assert workspace.status == WorkspaceStatus.FAILED and "timed out" in workspace.failure_reason
    assert seen, "the clone container was never seen"
    host, config = seen["HostConfig"], seen["Config"]
    assert config["User"] == "1000:1000"
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False and host["PidMode"] == "" and host["IpcMode"] != "host"
    assert [(m["Source"], m["Destination"]) for m in seen["Mounts"]] == [(workspace.placement.data_path, "/workspace")]
    assert not any("docker.sock" in (m.get("Source") or "") for m in seen["Mounts"])
    environment = dict(item.split("=", 1) for item in config["Env"])
    assert not {"SECRET_KEY", "DATABASE_URL", "BERTH_ENCRYPTION_KEYS", "REDIS_URL"} & set(environment)
    assert environment["GIT_TERMINAL_PROMPT"] == "0"
    assert config["Cmd"][-3:] == ["--", f"http://127.0.0.1:{listener.port}/x.git", "/workspace"]
