"""Server rows -> verified connections. The only place that decrypts a credential for use."""

import contextlib
import hashlib
import os
import subprocess
import threading
from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit

import docker
from django.conf import settings

from ..choices import CredentialKind, DockerEndpoint
from ..crypto import DecryptionError
from . import docker_transport, ssh
from .errors import AuthenticationError, HostKeyNotTrusted, RemoteError
from .ssh import CommandResult

DOCKER_API_VERSION = docker_transport.DOCKER_API_VERSION
DOCKER_TIMEOUT = docker_transport.DOCKER_TIMEOUT


def connect_timeout() -> float:
    return settings.BERTH_CONNECT_TIMEOUT


def _credential(server, kind: str):
    credential = server.credentials.filter(kind=kind).first()
    if credential is None:
        raise AuthenticationError(f"Server {server.name} has no {CredentialKind(kind).label} credential.")
    return credential


def _secret(credential, field: str) -> str:
    try:
        return credential.get_secret(field)
    except DecryptionError:
        raise AuthenticationError(
            f"The {credential.get_kind_display()} of {credential.server} cannot be decrypted with the configured "
            "BERTH_ENCRYPTION_KEYS; set it again."
        ) from None


def ssh_target(server) -> ssh.SSHTarget:
    """The connection parameters of a remote server, with its decrypted SSH key."""
    credential = _credential(server, CredentialKind.SSH_KEY)
    return ssh.SSHTarget(
        server_id=server.pk,
        host=server.host,
        port=server.ssh_port,
        user=server.ssh_user,
        host_key_type=server.host_key_type,
        host_key=server.host_key,
        credential_fingerprint=credential.fingerprint,
        public_key_type=credential.public_key.split(" ", 1)[0],
        private_key=_secret(credential, "private_key"),
        passphrase=_secret(credential, "passphrase"),
    )


def docker_https_url(docker_url: str) -> str:
    """tcp://host:port -> https://host:port (the scheme is validated at registration)."""
    parts = urlsplit(docker_url)
    return f"https://{parts.hostname}:{parts.port or 2376}"


def _docker_transport(server) -> tuple[tuple, Callable[[], docker.DockerClient]]:
    """What identifies `server`'s verified Docker transport (address, pinned host key, credential),
    and how to build a client over it."""
    if server.docker_endpoint == DockerEndpoint.LOCAL:
        return (LOCAL_ENGINE,), docker_transport.local_docker_client
    if server.docker_endpoint == DockerEndpoint.SSH:
        target = ssh_target(server)
        if not target.host_key:
            raise HostKeyNotTrusted(f"No host key is pinned for {server.name}: run a connection test and trust it.")
        return target.cache_key, partial(docker_transport.ssh_docker_client, target, connect_timeout=connect_timeout())
    if server.docker_endpoint == DockerEndpoint.TLS:
        bundle = _credential(server, CredentialKind.TLS_BUNDLE)
        material = hashlib.sha256("\0".join((bundle.ca_cert, bundle.client_cert, bundle.encrypted_client_key)).encode())
        return (server.pk, server.docker_url, material.hexdigest()), partial(_tls_client, server, bundle)
    raise RemoteError(f"Unknown docker endpoint {server.docker_endpoint!r}.", permanent=True)


def _tls_client(server, bundle) -> docker.DockerClient:
    try:
        context = docker_transport.tls_context(
            ca_cert=bundle.ca_cert, client_cert=bundle.client_cert, client_key=_secret(bundle, "client_key")
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise AuthenticationError(f"The mTLS bundle of {server.name} cannot be loaded: {exc}.") from None
    return docker_transport.tls_docker_client(docker_https_url(server.docker_url), context)


def docker_client(server) -> docker.DockerClient:
    """A new Docker client for `server` over a transport Berth verified: the local socket, the pinned
    SSH connection, or mTLS against the registered CA. The caller closes it. Every request times out
    after DOCKER_TIMEOUT s."""
    return _docker_transport(server)[1]()


# One client per server and process, kept while the server's identity stays the same.
LOCAL_ENGINE = "local"
_shared_clients: dict[int | str, tuple[tuple, docker.DockerClient]] = {}
_shared_clients_lock = threading.Lock()


def shared_docker_client(server) -> docker.DockerClient:
    """The process's Docker client for `server`, shared by every operation and thread: its pooled
    connections stay open between operations, so an operation opens no new socket, TLS session or
    SSH channel (`docker system dial-stdio` on the server). Never close it. A changed address,
    host key or credential builds a new client; the old one is not closed here, since operations
    that began with it (or with a server row read before the change) may still be using it: its
    connections close when the last of them lets go of it. `forget_server` closes it at once."""
    identity, build = _docker_transport(server)
    slot = LOCAL_ENGINE if identity == (LOCAL_ENGINE,) else server.pk
    with _shared_clients_lock:
        cached = _shared_clients.get(slot)
    if cached is not None and cached[0] == identity:
        return cached[1]
    client = build()
    with _shared_clients_lock:
        cached = _shared_clients.get(slot)
        if cached is not None and cached[0] == identity:  # another thread built it first
            spare, client = client, cached[1]
        else:
            spare = None
            _shared_clients[slot] = (identity, client)
    if spare is not None:
        spare.close()
    return client


def forget_server(server_id: int) -> None:
    """Close a server's cached connections, SSH and Docker (after retire, re-trust or a credential
    change), so the next operation verifies the server again."""
    ssh.forget_server(server_id)
    with _shared_clients_lock:
        cached = _shared_clients.pop(server_id, None)
    if cached is not None:
        cached[1].close()


def _forget_clients_after_fork() -> None:
    # A forked worker must not write to its parent's sockets.
    global _shared_clients, _shared_clients_lock
    _shared_clients, _shared_clients_lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_clients_after_fork)


def docker_version(server) -> dict:
    """Ping the server's Docker daemon and return its version (`Version`, `ApiVersion`, `Os`, ...).
    Every failure is a RemoteError, so callers outside this package never see docker SDK errors."""
    try:
        client = docker_client(server)
    except RemoteError:
        raise
    except Exception as exc:  # noqa: BLE001 - the SDK and requests raise many types
        raise RemoteError(f"Docker client for {server.name}: {exc}") from None
    try:
        client.ping()
        return client.version()
    except RemoteError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise RemoteError(f"Docker on {server.name} did not answer: {_short(exc)}") from None
    finally:
        client.close()


def local_engine_answers(*, timeout: float = 5.0) -> bool:
    """Whether a Docker engine on this machine answers a ping within `timeout` seconds (bootstrap asks
    before registering it). No socket, no permission, a daemon that does not answer: all are False."""
    try:
        client = docker_transport.local_docker_client(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - the SDK, requests and the socket raise many types
        return False


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def run_checked(server, argv: list[str], *, timeout: float = 60, what: str = "") -> None:
    """run_command for a step that must succeed: a non-zero exit is a (transient) RemoteError
    quoting the start of stderr, "<what> on <server>: ..." (what defaults to "<program> failed")."""
    result = run_command(server, argv, timeout=timeout)
    if result.exit_code != 0:
        detail = result.stderr.decode(errors="replace").strip()[:300]
        raise RemoteError(f"{what or argv[0] + ' failed'} on {server.name}: {detail}")


def make_folder(server, path: str, *, owner_uid: int) -> None:
    """`install -d -o UID -g UID -- PATH`: create the folder and its parents, the folder itself owned
    by `owner_uid` and mode 0755 (also when it already exists). For the local engine in-process,
    since starting a program costs more than the work; over the pinned SSH connection otherwise."""
    if server.docker_endpoint == DockerEndpoint.LOCAL:
        try:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o755)
            # Owner and mode through a handle opened without following a symlink, as install(1) does:
            # a symlink planted at `path` is refused, never handed to the workspace user.
            folder = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                os.fchown(folder, owner_uid, owner_uid)
                os.fchmod(folder, 0o755)
            finally:
                os.close(folder)
        except OSError as exc:
            raise RemoteError(f"creating {path} on {server.name}: {exc.strerror}") from exc
        return
    run_checked(server, ["install", "-d", "-o", str(owner_uid), "-g", str(owner_uid), "--", path],
                what=f"creating {path}")


def run_command(server, argv: list[str], *, stdin: bytes = b"", timeout: float = 60) -> CommandResult:
    """Run an argument list on the server: over the pinned SSH connection, or locally for the local
    engine. Raises RemoteError (or a subclass) when it cannot run; a non-zero exit is a result."""
    if not argv:
        raise ValueError("argv must not be empty")
    if server.docker_endpoint == DockerEndpoint.LOCAL:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RemoteError(f"{argv[0]}: {exc}") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)
    return ssh.run(ssh_target(server), argv, stdin=stdin, timeout=timeout, connect_timeout=connect_timeout())
