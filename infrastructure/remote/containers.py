"""Container primitives on a server: networks, create/start/stop/remove, a run to completion with its
output streamed, listing by label, usage. Callers pass plain values (names, an image reference, a
ContainerSpec) and get plain values back (ContainerInfo, RunResult); no docker SDK object leaves.

`docker_session(server)` hands an operation the process's shared client for the server
(`connections.shared_docker_client`), whose verified connections stay open between operations.
Docker SDK and HTTP failures become RemoteError: 4xx refusals other than 409 (conflict, e.g.
"already in progress") are permanent, a missing image is permanent, everything else is transient.
Every request carries the client's DOCKER_TIMEOUT.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import docker.errors
import requests.exceptions
from docker.models.containers import _create_container_args  # pinned SDK (requirements.txt)

from .connections import shared_docker_client
from .errors import RemoteError

# Docker's predefined networks: they exist on every engine and cannot be created.
BUILTIN_NETWORKS = frozenset({"host", "none", "bridge"})
_WAIT_TIMEOUT = 30


@dataclass(frozen=True)
class ContainerSpec:
    """What to run and how it is confined. `binds` maps a server folder to its path in the container
    (read-write); nothing else is mounted. Never privileged."""

    image: str
    command: list[str]
    name: str
    labels: dict[str, str]
    user: str
    network: str
    cpus: Decimal | float
    memory_mb: int
    pids_limit: int
    binds: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    hostname: str | None = None
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    init: bool = False

    def create_kwargs(self) -> dict:
        """The docker SDK's `containers.create`/`run` keyword arguments (image and command excluded)."""
        return {
            "name": self.name, "labels": self.labels, "user": self.user, "network_mode": self.network,
            "nano_cpus": int(self.cpus * 1_000_000_000), "mem_limit": f"{self.memory_mb}m",
            "pids_limit": self.pids_limit, "environment": self.environment, "working_dir": self.working_dir or None,
            "hostname": self.hostname, "cap_drop": list(self.cap_drop), "cap_add": list(self.cap_add),
            "security_opt": list(self.security_opt), "privileged": False, "init": self.init,
            "volumes": {source: {"bind": target, "mode": "rw"} for source, target in self.binds.items()},
        }


@dataclass(frozen=True)
class ContainerInfo:
    """A container as listed or inspected. `running` is Docker's status "running" (not paused);
    `exit_code` is known for an exited container only."""

    id: str
    name: str
    labels: dict[str, str]
    running: bool
    exit_code: int | None


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    timed_out: bool


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
def _image_errors(server, image: str) -> Iterator[None]:
    """A missing image is the operator's to fix: say which image and where, and how to load it."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise RemoteError(
            f"the image {image} is not on server {server.name}; load it there "
            "(docker save | docker load, see docs/workspaces.md)",
            permanent=True,
        ) from exc


def _inspected(container) -> ContainerInfo:
    state = container.attrs.get("State") or {}
    running = state.get("Status") == "running"
    return ContainerInfo(container.id, container.name, container.labels, running,
                         None if running or state.get("Status") != "exited" else state.get("ExitCode"))


def _listed(container) -> ContainerInfo:
    """From a sparse listing: State is the status word, Status reads "Exited (137) 5 seconds ago"."""
    attrs = container.attrs
    running = attrs.get("State") == "running"
    status = attrs.get("Status", "")
    exit_code = int(status.split("(")[1].split(")")[0]) if "(" in status else None
    names = attrs.get("Names") or [""]
    return ContainerInfo(container.id, names[0].lstrip("/"), attrs.get("Labels") or {}, running, exit_code)


def _usage(stats: dict) -> tuple[float, int]:
    """(CPU percent of one core, memory bytes without page cache) from one `stats` reading."""
    cpu, precpu = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - precpu.get("cpu_usage", {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - precpu.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or 1
    percent = (cpu_delta / system_delta) * cores * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = stats.get("memory_stats", {})
    used = memory.get("usage", 0) - memory.get("stats", {}).get("cache", 0)
    return round(percent, 2), max(used, 0)


def _stream_lines(container) -> Iterator[str]:
    """Programs like git write progress with carriage returns; yield each non-empty line or update."""
    buffer = ""
    with docker_errors("output"):
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            buffer += chunk.decode(errors="replace")
            *complete, buffer = buffer.replace("\r", "\n").split("\n")
            yield from (line.strip() for line in complete if line.strip())
    if buffer.strip():
        yield buffer.strip()


def _kill_quietly(container, killed: threading.Event) -> None:
    killed.set()
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        container.kill()


class DockerSession:
    """The Docker engine of one server over one connection; get it from `docker_session(server)`."""

    def __init__(self, server, client):
        self.server = server
        self._client = client

    def _get(self, name: str):
        with docker_errors("inspect"):
            try:
                return self._client.containers.get(name)
            except docker.errors.NotFound:
                return None

    def find(self, name: str) -> ContainerInfo | None:
        """The container called `name` (or with that id), None when there is none."""
        container = self._get(name)
        return None if container is None else _inspected(container)

    def ensure_network(self, name: str, *, labels: dict[str, str], options: dict[str, str]) -> None:
        """Create the bridge network `name` with these driver options unless the server has it."""
        if name in BUILTIN_NETWORKS:
            return
        with docker_errors("network"):
            if not self._client.networks.list(names=[name]):
                self._client.networks.create(name, driver="bridge", labels=labels, options=options)

    def create(self, spec: ContainerSpec, *, existing_ok: bool = False) -> ContainerInfo:
        """Create (not start) the container. With `existing_ok`, a container that already has the
        name (a crashed earlier run made it) is returned as it is instead of being a conflict.

        The engine's answer (its id) is all there is to know about a new container, so unlike the
        SDK's `containers.create` this sends no inspect after it: under load every call waits."""
        arguments = _create_container_args({  # detached, as `docker run -d`: nothing attaches to its output
            "image": spec.image, "command": spec.command, "version": self._client.api._version, "detach": True,
            **spec.create_kwargs(),
        })
        with docker_errors("create container"), _image_errors(self.server, spec.image):
            try:
                created = self._client.api.create_container(**arguments)
            except docker.errors.APIError as exc:
                existing = self.find(spec.name) if existing_ok and exc.status_code == 409 else None
                if existing is None:
                    raise
                return existing
        return ContainerInfo(created["Id"], spec.name, dict(spec.labels), running=False, exit_code=None)

    def start(self, name: str) -> None:
        with docker_errors("start container"):
            self._client.api.start(name)

    def stop(self, name: str, *, timeout: int = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` s; nothing when the container does not exist."""
        container = self._get(name)
        if container is not None:
            with docker_errors("stop container"):
                container.stop(timeout=timeout)

    def remove(self, name: str) -> None:
        """Force-remove the container (running or not); nothing when it does not exist."""
        container = self._get(name)
        if container is not None:
            with docker_errors("remove container"):
                container.remove(force=True)

    def run_to_completion(self, spec: ContainerSpec, *, timeout: float, on_line: Callable[[str], None]) -> RunResult:
        """Run the container, pass each line of its output to `on_line`, kill it after `timeout` s
        and remove it whatever happens. A leftover of the same name must be removed first.

        Create then start, never the SDK's `containers.run`: that one pulls a missing image from a
        registry, and Berth never makes a server reach out to one (images are loaded by operators)."""
        with docker_errors("run"), _image_errors(self.server, spec.image):
            container = self._client.containers.create(spec.image, spec.command, **spec.create_kwargs())
        with docker_errors("run"):
            try:
                container.start()
            except BaseException:
                with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                    container.remove(force=True)
                raise
        killed = threading.Event()
        timer = threading.Timer(timeout, _kill_quietly, args=(container, killed))
        timer.start()
        try:
            for line in _stream_lines(container):
                on_line(line)
            with docker_errors("wait"):
                exit_code = container.wait(timeout=_WAIT_TIMEOUT)["StatusCode"]
        finally:
            timer.cancel()
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                container.remove(force=True)
        return RunResult(exit_code, killed.is_set())

    def list_containers(self, labels: list[str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of `labels` ("key=value" or "key")."""
        with docker_errors("list containers"):
            found = self._client.containers.list(all=True, sparse=True, filters={"label": labels})
        return [_listed(container) for container in found]

    def usage(self, name: str) -> tuple[float, int] | None:
        """(CPU percent of one core, memory bytes) of a running container, or None if it is gone.
        The engine takes about a second for its second CPU reading."""
        container = self._get(name)
        if container is None:
            return None
        with docker_errors("stats"):
            return _usage(container.stats(stream=False))


@contextlib.contextmanager
def docker_session(server) -> Iterator[DockerSession]:
    """The server's Docker engine for one operation, over the process's shared verified client."""
    with docker_errors(f"docker on {server.name}"):
        client = shared_docker_client(server)
    yield DockerSession(server, client)
