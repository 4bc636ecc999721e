"""What happens on a server for a workspace: its data folder, the clone, the hardened container.

Everything goes through `infrastructure.remote` (`run_command` with argument lists, `docker_client`),
and every step finds what a crashed earlier run left (folder by path, containers by name) instead
of making a second one. Docker and network failures surface as `RemoteError`: `permanent` when a
retry cannot help (missing image, clone refused), transient otherwise.

Hardening of the workspace container (see docs/workspaces.md): runs as uid 1000 with
no-new-privileges, all capabilities dropped except CAP_ADD (which matter only to a process an
operator runs as root with `docker exec -u 0`, e.g. apt-get: chown/chmod of files, switching user,
signalling its own processes), a tiny init reaping zombies, CPU/memory/pids limits, only its own
folder mounted (never the Docker socket), no host PID/IPC namespace, and the network
BERTH_WORKSPACE_NETWORK (a Berth bridge without inter-container traffic in production).
"""

import contextlib
import posixpath
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docker.errors
import requests.exceptions
from django.conf import settings

from infrastructure.remote import RemoteError, docker_client, run_command

CAP_ADD = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"]
KEEP_RUNNING = ["sleep", "infinity"]
ROLE_WORKSPACE, ROLE_CLONE = "workspace", "clone"
_HOST_NETWORKS = {"host", "none", "bridge"}


@dataclass(frozen=True)
class ContainerState:
    """A Berth container as the reconciler sees it."""

    id: str
    name: str
    workspace_id: str
    data_path: str
    running: bool
    exit_code: int | None


@contextlib.contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Docker SDK and HTTP failures become RemoteError: 4xx refusals are permanent, the rest transient."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise RemoteError(f"{what}: image not found ({exc.explanation})", permanent=True) from exc
    except docker.errors.APIError as exc:
        status = exc.response.status_code if exc.response is not None else 500
        raise RemoteError(f"{what}: {exc.explanation or exc}", permanent=400 <= status < 500 and status != 409) from exc
    except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
        raise RemoteError(f"{what}: {exc}") from exc


@contextlib.contextmanager
def _docker(server) -> Iterator:
    """One Docker client (one verified connection, reused for every call) per operation."""
    with docker_errors(f"docker on {server.name}"):
        client = docker_client(server)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _check(server, argv: list[str], *, timeout: float = 60) -> None:
    result = run_command(server, argv, timeout=timeout)
    if result.exit_code != 0:
        detail = result.stderr.decode(errors="replace").strip()[:300]
        raise RemoteError(f"{argv[0]} failed on {server.name}: {detail}", permanent=False)


def _owned_path(server, data_path: str) -> str:
    """Refuse any path that is not <storage_root>/<org>/<uuid> on this server (we run rm -rf on it)."""
    relative = posixpath.relpath(data_path, server.storage_root)
    if posixpath.normpath(data_path) != data_path or relative.startswith("..") or relative.count("/") != 1:
        raise RemoteError(f"refusing to touch {data_path!r}: not a workspace folder of {server.name}", permanent=True)
    return data_path


def ensure_folder(server, data_path: str) -> None:
    """`mkdir -p` plus `chown uid:uid` of the last component, in one command (`install -d`)."""
    uid = settings.BERTH_WORKSPACE_UID
    _check(server, ["install", "-d", "-o", str(uid), "-g", str(uid), "--", _owned_path(server, data_path)])


def empty_folder(server, data_path: str) -> None:
    """Clear what a clone interrupted by a crash left (never follows symlinks the repo may contain)."""
    _check(server, ["find", _owned_path(server, data_path), "-mindepth", "1", "-delete"], timeout=300)


def remove_folder(server, data_path: str) -> None:
    _check(server, ["rm", "-rf", "--", _owned_path(server, data_path)], timeout=300)


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
    uid = settings.BERTH_WORKSPACE_UID
    return {
        "user": f"{uid}:{uid}",
        "cap_drop": ["ALL"],
        "cap_add": CAP_ADD,
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "init": True,
        "nano_cpus": int(workspace.cpu * 1_000_000_000),
        "mem_limit": f"{workspace.memory_mb}m",
        "pids_limit": settings.BERTH_WORKSPACE_PIDS_LIMIT,
        "network_mode": settings.BERTH_WORKSPACE_NETWORK,
        "working_dir": "/workspace",
    }


def _run_options(workspace, data_path: str, role: str) -> dict:
    """Hardening, labels and the one bind mount: the workspace folder at /workspace."""
    return {**_hardening(workspace), "labels": _labels(workspace, data_path, role),
            "volumes": {data_path: {"bind": "/workspace", "mode": "rw"}}}


def ensure_network(client) -> None:
    """Create the workspace bridge network (no traffic between containers) if this server lacks it."""
    name = settings.BERTH_WORKSPACE_NETWORK
    if name in _HOST_NETWORKS:
        return
    with docker_errors("network"):
        if not client.networks.list(names=[name]):
            client.networks.create(
                name, driver="bridge", labels={"berth.managed": "1"},
                options={"com.docker.network.bridge.enable_icc": "false"},
            )


def _find(client, name: str):
    with docker_errors("inspect"):
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            return None


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


def clone_repository(client, server, workspace, data_path: str, *, scheme: str, progress: Callable[[str], None]) -> None:
    """Clone into the (emptied) folder from a short-lived container of the workspace image, as the
    workspace user with only that folder mounted, killed after BERTH_CLONE_TIMEOUT."""
    name = clone_container_name(workspace)
    leftover = _find(client, name)
    if leftover is not None:
        with docker_errors("remove old clone"):
            leftover.remove(force=True)
    empty_folder(server, data_path)
    with docker_errors("clone"), _image_errors(server, workspace):
        container = client.containers.run(
            workspace.image.reference, clone_command(workspace.repo_url, workspace.branch, scheme), name=name,
            detach=True, environment={"GIT_TERMINAL_PROMPT": "0", "HOME": "/tmp", "GIT_CONFIG_NOSYSTEM": "1"},
            **_run_options(workspace, data_path, ROLE_CLONE),
        )
    killed = threading.Event()
    timer = threading.Timer(settings.BERTH_CLONE_TIMEOUT, _kill_quietly, args=(container, killed))
    timer.start()
    try:
        last_report, tail = 0.0, []
        for line in _stream_lines(container):
            tail = (tail + [line])[-5:]
            if time.monotonic() - last_report > 0.5:
                progress(line)
                last_report = time.monotonic()
        with docker_errors("clone"):
            exit_code = container.wait(timeout=30)["StatusCode"]
    finally:
        timer.cancel()
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            container.remove(force=True)
    if exit_code != 0:
        detail = f"timed out after {settings.BERTH_CLONE_TIMEOUT} s" if killed.is_set() else (
            " / ".join(tail) or f"exit code {exit_code}"
        )
        raise RemoteError(f"git clone failed: {detail}"[:450], permanent=True)


def _kill_quietly(container, killed: threading.Event) -> None:
    killed.set()
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        container.kill()


def _stream_lines(container) -> Iterator[str]:
    """git writes progress with carriage returns; yield each non-empty line or update."""
    buffer = ""
    with docker_errors("clone output"):
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            buffer += chunk.decode(errors="replace")
            *complete, buffer = buffer.replace("\r", "\n").split("\n")
            yield from (line.strip() for line in complete if line.strip())
    if buffer.strip():
        yield buffer.strip()


@contextlib.contextmanager
def _image_errors(server, workspace) -> Iterator[None]:
    """A missing image is the operator's to fix: say which image and where, and how to load it."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise RemoteError(
            f"the image {workspace.image.reference} is not on server {server.name}; load it there "
            "(docker save | docker load, see docs/workspaces.md)",
            permanent=True,
        ) from exc


def create_container(client, server, workspace, data_path: str):
    ensure_network(client)
    with docker_errors("create container"), _image_errors(server, workspace):
        return client.containers.create(
            workspace.image.reference, KEEP_RUNNING, name=workspace.container_name, hostname=workspace.name,
            environment={"HOME": "/workspace"}, **_run_options(workspace, data_path, ROLE_WORKSPACE),
        )


def bring_up(server, workspace, data_path: str, *, clone_scheme: str = "", progress: Callable[[str], None]) -> str:
    """The running workspace container; returns its id.

    When the container does not exist yet: the folder, then (if `clone_scheme`) the clone, then the
    container. A container that exists means those steps finished, so a re-run after a crash only
    starts it; a crash before that redoes the folder (idempotent) and the clone (from empty)."""
    with _docker(server) as client:
        container = _find(client, workspace.container_name)
        if container is None:
            progress(f"Creating the workspace folder on {server.name}")
            ensure_folder(server, data_path)
            if clone_scheme:
                progress("Cloning the repository")
                clone_repository(client, server, workspace, data_path, scheme=clone_scheme, progress=progress)
            container = create_container(client, server, workspace, data_path)
        if container.status != "running":
            with docker_errors("start container"):
                container.start()
        return container.id


def stop_container(server, name: str) -> None:
    with _docker(server) as client:
        container = _find(client, name)
        if container is not None:
            with docker_errors("stop container"):
                container.stop(timeout=10)


def remove_containers(server, names: list[str]) -> None:
    with _docker(server) as client:
        for name in names:
            container = _find(client, name)
            if container is not None:
                with docker_errors("remove container"):
                    container.remove(force=True)


def list_containers(server) -> list[ContainerState]:
    """Berth workspace containers on `server` whose data lies under its storage root."""
    prefix = server.storage_root.rstrip("/") + "/"
    with _docker(server) as client, docker_errors("list containers"):
        found = client.containers.list(
            all=True, sparse=True, filters={"label": ["berth.managed=1", f"berth.role={ROLE_WORKSPACE}"]}
        )
    states = []
    for container in found:
        labels = container.attrs.get("Labels") or {}
        if not labels.get("berth.data", "").startswith(prefix):
            continue
        state = container.attrs.get("State")
        running = state == "running"
        status = container.attrs.get("Status", "")
        exit_code = int(status.split("(")[1].split(")")[0]) if "(" in status else None
        names = container.attrs.get("Names") or [""]
        states.append(
            ContainerState(container.id, names[0].lstrip("/"), labels.get("berth.workspace", ""),
                           labels["berth.data"], running, exit_code)
        )
    return states


def container_usage(server, name: str) -> tuple[float, int] | None:
    """(CPU percent of one core, memory bytes) of a running container, or None if it is gone."""
    with _docker(server) as client:
        container = _find(client, name)
        if container is None:
            return None
        with docker_errors("stats"):
            stats = container.stats(stream=False)
    cpu, precpu = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - precpu.get("cpu_usage", {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - precpu.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or 1
    percent = (cpu_delta / system_delta) * cores * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = stats.get("memory_stats", {})
    used = memory.get("usage", 0) - memory.get("stats", {}).get("cache", 0)
    return round(percent, 2), max(used, 0)
