"""What happens on a server for a workspace: its data folder, the clone, the hardened container.

Everything goes through `infrastructure.remote` (`run_checked` and `make_folder` with argument lists, `docker_session`
for containers: this module decides what they are, the remote primitives make them), and every step
finds what a crashed earlier run left (folder by path, containers by name) instead of making a
second one. Docker and network failures surface as `RemoteError`: `permanent` when a
retry cannot help (missing image, clone refused), transient otherwise.

Hardening of the workspace container (see docs/workspaces.md): runs as uid 1000 with
no-new-privileges, all capabilities dropped except CAP_ADD (which matter only to a process an
operator runs as root with `docker exec -u 0`, e.g. apt-get: chown/chmod of files, switching user,
signalling its own processes), a tiny init reaping zombies, CPU/memory/pids limits, only its own
folder mounted (never the Docker socket), no host PID/IPC namespace, and the network
BERTH_WORKSPACE_NETWORK (a Berth bridge without inter-container traffic in production).
"""

import collections
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from infrastructure.remote import (
    ContainerInfo,
    ContainerSpec,
    DockerSession,
    RemoteError,
    docker_session,
    make_folder,
    run_checked,
)

CAP_ADD = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"]
KEEP_RUNNING = ["sleep", "infinity"]
ROLE_WORKSPACE, ROLE_CLONE = "workspace", "clone"


@dataclass(frozen=True)
class ContainerState:
    """A Berth container as the reconciler sees it."""

    id: str
    name: str
    workspace_id: str
    data_path: str
    running: bool
    exit_code: int | None


def _owned_path(server, data_path: str) -> str:
    """Refuse any path that is not <storage_root>/<org>/<uuid> on this server (we run rm -rf on it)."""
    relative = posixpath.relpath(data_path, server.storage_root)
    if posixpath.normpath(data_path) != data_path or relative.startswith("..") or relative.count("/") != 1:
        raise RemoteError(f"refusing to touch {data_path!r}: not a workspace folder of {server.name}", permanent=True)
    return data_path


def ensure_folder(server, data_path: str) -> None:
    """`mkdir -p`, the workspace folder itself owned by the workspace user."""
    make_folder(server, _owned_path(server, data_path), owner_uid=settings.BERTH_WORKSPACE_UID)


def empty_folder(server, data_path: str) -> None:
    """Clear what a clone interrupted by a crash left (never follows symlinks the repo may contain)."""
    run_checked(server, ["find", _owned_path(server, data_path), "-mindepth", "1", "-delete"], timeout=300)


def remove_folder(server, data_path: str) -> None:
    run_checked(server, ["rm", "-rf", "--", _owned_path(server, data_path)], timeout=300)


def _labels(workspace, data_path: str, role: str) -> dict[str, str]:
    return {
        "berth.managed": "1",
        "berth.workspace": str(workspace.pk),
        "berth.organization": workspace.organization.slug,
        "berth.role": role,
        # The reconciler claims only containers whose data lives under its server's storage root.
        "berth.data": data_path,
    }


def _hardening(workspace) -> dict:
    """ContainerSpec fields that confine every container of a workspace (remote never makes one privileged)."""
    uid = settings.BERTH_WORKSPACE_UID
    return {
        "user": f"{uid}:{uid}",
        "cap_drop": ("ALL",),
        "cap_add": tuple(CAP_ADD),
        "security_opt": ("no-new-privileges",),
        "init": True,
        "cpus": workspace.cpu,
        "memory_mb": workspace.memory_mb,
        "pids_limit": settings.BERTH_WORKSPACE_PIDS_LIMIT,
        "network": settings.BERTH_WORKSPACE_NETWORK,
        "working_dir": "/workspace",
    }


def _spec(workspace, data_path: str, role: str, **values) -> ContainerSpec:
    """Hardening, labels and the one bind mount: the workspace folder at /workspace."""
    return ContainerSpec(image=workspace.image.reference, labels=_labels(workspace, data_path, role),
                         binds={data_path: "/workspace"}, **_hardening(workspace), **values)


def ensure_network(docker: DockerSession) -> None:
    """Create the workspace bridge network (no traffic between containers) if this server lacks it."""
    docker.ensure_network(settings.BERTH_WORKSPACE_NETWORK, labels={"berth.managed": "1"},
                          options={"com.docker.network.bridge.enable_icc": "false"})


def clone_command(url: str, branch: str, scheme: str) -> list[str]:
    """git as an argument list: only the URL's own protocol enabled, no redirects, no submodules."""
    argv = ["git", "-c", "protocol.allow=never", "-c", "protocol.https.allow=always"]
    if scheme in {"http", "ssh"}:
        argv += ["-c", f"protocol.{scheme}.allow=always"]
    argv += ["-c", "http.followRedirects=false", "-c", "submodule.recurse=false",
             "clone", "--progress", "--no-recurse-submodules"]
    if branch:
        argv += ["--branch", branch, "--single-branch"]
    return argv + ["--", url, "/workspace"]


def clone_container_name(workspace) -> str:
    return f"berth-clone-{workspace.pk}"


def clone_repository(docker: DockerSession, workspace, data_path: str, *, scheme: str,
                     progress: Callable[[str], None]) -> None:
    """Clone into the (emptied) folder from a short-lived container of the workspace image, as the
    workspace user with only that folder mounted, killed after BERTH_CLONE_TIMEOUT. Progress gets
    at most two lines a second; a failure quotes git's last five lines."""
    name = clone_container_name(workspace)
    docker.remove(name)  # what a crashed run left
    empty_folder(docker.server, data_path)
    tail: collections.deque[str] = collections.deque(maxlen=5)
    last_report = 0.0

    def on_line(line: str) -> None:
        nonlocal last_report
        tail.append(line)
        if time.monotonic() - last_report > 0.5:
            progress(line)
            last_report = time.monotonic()

    spec = _spec(workspace, data_path, ROLE_CLONE, name=name,
                 command=clone_command(workspace.repo_url, workspace.branch, scheme),
                 environment={"GIT_TERMINAL_PROMPT": "0", "HOME": "/tmp", "GIT_CONFIG_NOSYSTEM": "1"})
    result = docker.run_to_completion(spec, timeout=settings.BERTH_CLONE_TIMEOUT, on_line=on_line)
    if result.exit_code != 0:
        detail = f"timed out after {settings.BERTH_CLONE_TIMEOUT} s" if result.timed_out else (
            " / ".join(tail) or f"exit code {result.exit_code}"
        )
        raise RemoteError(f"git clone failed: {detail}"[:450], permanent=True)


def create_container(docker: DockerSession, workspace, data_path: str) -> ContainerInfo:
    """The workspace container, created; one a crashed earlier run created is returned instead."""
    ensure_network(docker)
    return docker.create(_spec(workspace, data_path, ROLE_WORKSPACE, name=workspace.container_name,
                               command=KEEP_RUNNING, hostname=workspace.name, environment={"HOME": "/workspace"}),
                         existing_ok=True)


_CLAIM_LABELS = ("berth.managed", "berth.workspace", "berth.role", "berth.data")


def _ours(server, workspace, data_path: str, container: ContainerInfo) -> None:
    """A container found under the workspace's name is adopted only when it carries this workspace's
    labels and folder: one that someone else made under that name is never started as the workspace."""
    expected = _labels(workspace, data_path, ROLE_WORKSPACE)
    if any(container.labels.get(key) != expected[key] for key in _CLAIM_LABELS):
        raise RemoteError(
            f"a container named {container.name} on {server.name} was not made by Berth for this workspace: "
            f"remove it (docker rm -f {container.name}) and retry",
            permanent=True,
        )


def bring_up(server, workspace, data_path: str, *, new: bool, clone_scheme: str = "",
             progress: Callable[[str], None]) -> str:
    """The running workspace container; returns its id.

    When the container does not exist yet: the folder, then (if `clone_scheme`) the clone, then the
    container. A container that exists means those steps finished, so a re-run after a crash only
    starts it; a crash before that redoes the folder (idempotent) and the clone (from empty). A
    `new` workspace without a clone skips the lookup: a container a crashed run left is found when
    its name is taken (under load every call to the engine waits). Either way a container found
    under the name must carry this workspace's labels, or the step fails for the operator."""
    with docker_session(server) as docker:
        container = None if new and not clone_scheme else docker.find(workspace.container_name)
        if container is None:
            ensure_folder(server, data_path)
            if clone_scheme:
                progress("Cloning the repository")
                clone_repository(docker, workspace, data_path, scheme=clone_scheme, progress=progress)
            container = create_container(docker, workspace, data_path)
        _ours(server, workspace, data_path, container)
        if not container.running:
            docker.start(container.id)
        return container.id


def stop_container(server, name: str) -> None:
    with docker_session(server) as docker:
        docker.stop(name, timeout=10)


def remove_containers(server, names: list[str]) -> None:
    with docker_session(server) as docker:
        for name in names:
            docker.remove(name)


def list_containers(server) -> list[ContainerState]:
    """Berth workspace containers on `server` whose data lies under its storage root."""
    prefix = server.storage_root.rstrip("/") + "/"
    with docker_session(server) as docker:
        found = docker.list_containers(["berth.managed=1", f"berth.role={ROLE_WORKSPACE}"])
    return [
        ContainerState(container.id, container.name, container.labels.get("berth.workspace", ""),
                       container.labels["berth.data"], container.running, container.exit_code)
        for container in found if container.labels.get("berth.data", "").startswith(prefix)
    ]


def container_usage(server, name: str) -> tuple[float, int] | None:
    """(CPU percent of one core, memory bytes) of a running container, or None if it is gone."""
    with docker_session(server) as docker:
        return docker.usage(name)
