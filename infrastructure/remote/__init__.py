"""The one boundary to container servers: every paramiko and docker SDK call lives in this package.

Callers use only these functions and errors:
- ``docker_client(server)``: a docker.DockerClient whose transport Berth verified itself (pinned SSH
  host key, or mTLS against the registered CA, or the local engine), with timeouts on every call.
  Close it when done; the SSH connection underneath is shared per process and stays open.
- ``run_command(server, argv, stdin=b"", timeout=60)``: run an argument list on the server (over the
  pinned SSH connection, or locally for the local engine). argv is quoted, never a shell string.
- ``run_checked(server, argv, timeout=60, what="")``: the same, a non-zero exit raised as RemoteError.
- ``make_folder(server, path, owner_uid=...)``: ``install -d`` semantics (in-process for the local engine).
- ``docker_version(server)``: ping + version, failures as RemoteError.
- ``docker_session(server)``: a DockerSession (containers.py) for one operation, over the process's
  shared client for the server (its connections stay open between operations; a changed address,
  host key or credential gets a new client): find/create/start/stop/remove containers,
  ``run_to_completion`` with its output streamed, ``list_containers`` by label, ``usage``,
  ``ensure_network``. Takes a ContainerSpec and returns ContainerInfo / RunResult, never a docker
  SDK object.
- ``local_engine_answers(timeout=5)``: whether this machine's Docker socket answers a ping (bootstrap);
  ``LOCAL_DOCKER_URL`` is that socket.
- ``fetch_host_key(host, port, timeout)`` / ``open_socket``: first-contact checks for the connection
  test (key exchange only, no authentication).
- ``forget_server(server_id)``: drop cached SSH connections and Docker clients after a trust or
  credential change.
- errors: RemoteError (``.permanent`` says whether a retry can help) and its subclasses.
"""

from .connections import (
    CommandResult,
    connect_timeout,
    docker_client,
    docker_version,
    forget_server,
    local_engine_answers,
    make_folder,
    run_checked,
    run_command,
)
from .containers import ContainerInfo, ContainerSpec, DockerSession, RunResult, docker_session
from .docker_transport import LOCAL_DOCKER_URL
from .errors import AuthenticationError, HostKeyMismatch, HostKeyNotTrusted, RemoteError, Unreachable
from .ssh import fetch_host_key, open_socket

__all__ = [
    "LOCAL_DOCKER_URL",
    "AuthenticationError",
    "CommandResult",
    "ContainerInfo",
    "ContainerSpec",
    "DockerSession",
    "HostKeyMismatch",
    "HostKeyNotTrusted",
    "RemoteError",
    "RunResult",
    "Unreachable",
    "connect_timeout",
    "docker_client",
    "docker_session",
    "docker_version",
    "fetch_host_key",
    "forget_server",
    "local_engine_answers",
    "make_folder",
    "open_socket",
    "run_checked",
    "run_command",
]
