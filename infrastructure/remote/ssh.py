"""SSH to container servers, trusting only the host key pinned in Berth's database.

Nothing here reads ~/.ssh, the agent or /etc/ssh: the host key comes from the Server row, the user
key from its decrypted credential. Verified connections are shared per process (`_Pool`): callers
open channels on an existing transport, and a second transport is opened only when sshd refuses
more sessions on the first (OpenSSH MaxSessions, 10 by default) or the first died.
"""

import base64
import io
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field

import paramiko

from ..crypto import fingerprint
from .errors import AuthenticationError, HostKeyMismatch, HostKeyNotTrusted, RemoteError, Unreachable

# A process never holds more than this many SSH connections to one server.
MAX_CONNECTIONS_PER_SERVER = 8
# OpenSSH's default MaxSessions: more channels on one connection are refused (and paramiko logs an
# ERROR for each refusal), so a connection this busy is skipped. A lower server limit still works:
# a refused channel falls through to the next connection.
SESSIONS_PER_CONNECTION = 10
KEEPALIVE_SECONDS = 30
_READ_CHUNK = 65536
_POLL_SECONDS = 0.005
_KEY_CLASSES = {"ssh-ed25519": paramiko.Ed25519Key, "ssh-rsa": paramiko.RSAKey}


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class SSHTarget:
    """Everything needed to reach one server, read from its row and credential. The secret fields
    stay out of repr() so a traceback or log line never shows them."""

    server_id: int
    host: str
    port: int
    user: str
    host_key_type: str
    host_key: str
    credential_fingerprint: str
    public_key_type: str
    private_key: str = field(repr=False)
    passphrase: str = field(repr=False, default="")

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def cache_key(self) -> tuple:
        return (self.server_id, self.host, self.port, self.user, self.host_key, self.credential_fingerprint)


def key_triple(key: paramiko.PKey) -> tuple[str, str, str]:
    """(type, base64 blob, SHA256 fingerprint) of a host key, as stored on the Server row."""
    return key.get_name(), key.get_base64(), fingerprint(key.asbytes())


def open_socket(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection, or Unreachable within `timeout` seconds."""
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        raise Unreachable(f"{host}:{port} did not answer within {timeout:g} s.") from None
    except OSError as exc:
        raise Unreachable(f"Cannot reach {host}:{port}: {exc.strerror or exc}.") from None


def fetch_host_key(host: str, port: int, timeout: float) -> tuple[str, str, str]:
    """The host key the server offers, read during key exchange only: no authentication is tried."""
    transport = paramiko.Transport(open_socket(host, port, timeout))
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return key_triple(transport.get_remote_server_key())
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise Unreachable(f"SSH handshake with {host}:{port} failed: {exc or type(exc).__name__}.") from None
    finally:
        transport.close()


class _RejectUnpinned(paramiko.RejectPolicy):
    """RejectPolicy that also says which key was offered: paramiko calls it when the server offers a
    key of a type other than the pinned one, which is a mismatch just like a changed key."""

    def missing_host_key(self, client, hostname, key):
        raise HostKeyMismatch(
            f"{hostname} offered a {key.get_name()} host key, but a different key is pinned.", offered=key_triple(key)
        )


def _load_user_key(target: SSHTarget) -> paramiko.PKey:
    key_class = paramiko.ECDSAKey if target.public_key_type.startswith("ecdsa-") else _KEY_CLASSES.get(target.public_key_type)
    if key_class is None:
        raise AuthenticationError(f"Unsupported credential key type {target.public_key_type!r}.")
    try:
        return key_class.from_private_key(io.StringIO(target.private_key), password=target.passphrase or None)
    except (paramiko.SSHException, ValueError):
        raise AuthenticationError("The stored SSH key cannot be loaded; set the credential again.") from None


def connect(target: SSHTarget, timeout: float) -> paramiko.SSHClient:
    """A verified, authenticated SSH connection. The host key check runs after key exchange and before
    authentication, so a server with the wrong key never sees Berth's credential or a command."""
    if not target.host_key:
        raise HostKeyNotTrusted(f"No host key is pinned for {target.host}:{target.port}: run a test and trust it.")
    client = paramiko.SSHClient()
    pinned = paramiko.PKey.from_type_string(target.host_key_type, base64.b64decode(target.host_key))
    known_name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    client.get_host_keys().add(known_name, target.host_key_type, pinned)
    client.set_missing_host_key_policy(_RejectUnpinned())
    user_key = _load_user_key(target)
    sock = open_socket(target.host, target.port, timeout)
    try:
        client.connect(
            target.host, port=target.port, username=target.user, pkey=user_key, sock=sock,
            allow_agent=False, look_for_keys=False,
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        offered = key_triple(exc.key)
        raise HostKeyMismatch(
            f"{target.host}:{target.port} presented host key {offered[2]}, not the pinned "
            f"{fingerprint(pinned.asbytes())}. Nothing was sent.",
            offered=offered,
        ) from None
    except HostKeyMismatch:
        client.close()
        raise
    except paramiko.AuthenticationException:
        client.close()
        raise AuthenticationError(
            f"{target.address} refused Berth's key {target.credential_fingerprint}: add its public line to "
            f"~{target.user}/.ssh/authorized_keys."
        ) from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        client.close()
        raise Unreachable(f"SSH connection to {target.host}:{target.port} failed: {exc or type(exc).__name__}.") from None
    client.get_transport().set_keepalive(KEEPALIVE_SECONDS)
    return client


def _open_channels(client: paramiko.SSHClient) -> int:
    # Transport._channels is private but has been the channel map since paramiko 1.x; the concurrency
    # test covers it. Without it, sessions beyond MaxSessions are merely refused and retried elsewhere.
    return len(getattr(client.get_transport(), "_channels", ()))


class _Pool:
    """The verified connections of one process to one server (one cache key)."""

    def __init__(self, target: SSHTarget):
        self.target = target
        self.clients: list[paramiko.SSHClient] = []
        self.lock = threading.Lock()
        # The last failed connect: callers that were already waiting for it share its error instead of
        # each trying again in turn (20 waiters on an unreachable host would otherwise take 20 timeouts).
        self.failure: tuple[float, RemoteError] | None = None

    def _prune(self) -> None:
        alive = []
        for client in self.clients:
            transport = client.get_transport()
            if transport is not None and transport.is_active():
                alive.append(client)
            else:
                client.close()
        self.clients = alive

    def open_channel(self, timeout: float) -> paramiko.Channel:
        """A session channel on a live connection; connects (and verifies) only when none can take it.
        Callers waiting on the lock while another connects then use that new connection."""
        tried: set[int] = set()
        waiting_since = time.monotonic()
        while True:
            with self.lock:
                self._prune()
                candidates = [client for client in self.clients if id(client) not in tried]
                if not candidates:
                    if self.failure is not None and self.failure[0] >= waiting_since:
                        raise self.failure[1]
                    if len(self.clients) >= MAX_CONNECTIONS_PER_SERVER:
                        raise RemoteError(f"All {len(self.clients)} SSH connections to {self.target.host} are busy.")
                    try:
                        candidates = [connect(self.target, timeout)]
                    except RemoteError as exc:
                        self.failure = (time.monotonic(), exc)
                        raise
                    self.clients.append(candidates[0])
            for client in candidates:
                tried.add(id(client))
                if _open_channels(client) >= SESSIONS_PER_CONNECTION:
                    continue
                try:
                    return client.get_transport().open_session(timeout=timeout)
                except (paramiko.SSHException, EOFError, OSError, AttributeError):
                    continue  # refused (MaxSessions) or died meanwhile: try the next connection

    def close(self) -> None:
        with self.lock:
            for client in self.clients:
                client.close()
            self.clients = []


_pools: dict[tuple, _Pool] = {}
_pools_lock = threading.Lock()


def pool_for(target: SSHTarget) -> _Pool:
    """The shared pool for this exact identity; a changed host key, address or credential gets a
    fresh pool and the server's old connections are closed."""
    with _pools_lock:
        pool = _pools.get(target.cache_key)
        if pool is None:
            for key in [key for key in _pools if key[0] == target.server_id]:
                _pools.pop(key).close()
            pool = _pools[target.cache_key] = _Pool(target)
        return pool


def forget_server(server_id: int) -> None:
    """Close a server's cached connections (after retire, re-trust or a credential change)."""
    with _pools_lock:
        for key in [key for key in _pools if key[0] == server_id]:
            _pools.pop(key).close()


def _forget_after_fork() -> None:
    # A forked worker inherits the dict but not the transport threads; never write to the parent's sockets.
    global _pools, _pools_lock
    _pools, _pools_lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _exec(channel: paramiko.Channel, command: str, timeout: float) -> None:
    """paramiko waits for the server's answer to an exec request without a time limit; closing the
    channel from a watchdog ends that wait with an SSHException instead of a hung worker."""
    watchdog = threading.Timer(timeout, channel.close)
    watchdog.daemon = True
    watchdog.start()
    try:
        channel.exec_command(command)
    finally:
        watchdog.cancel()


def run(target: SSHTarget, argv: list[str], *, stdin: bytes, timeout: float, connect_timeout: float) -> CommandResult:
    """Run argv (quoted with shlex.join, never a shell string from input) and collect its output.
    Stdin is fed while output is drained, so neither side can fill its window and stall."""
    channel = pool_for(target).open_channel(connect_timeout)
    deadline = time.monotonic() + timeout
    out, err, sent = bytearray(), bytearray(), 0
    try:
        _exec(channel, shlex.join(argv), connect_timeout)
        if not stdin:
            channel.shutdown_write()
        while True:
            progressed = False
            if sent < len(stdin) and channel.send_ready():
                sent += channel.send(stdin[sent:sent + _READ_CHUNK])
                progressed = True
                if sent == len(stdin):
                    channel.shutdown_write()
            while channel.recv_ready():
                out += channel.recv(_READ_CHUNK)
                progressed = True
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(_READ_CHUNK)
                progressed = True
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                return CommandResult(channel.recv_exit_status(), bytes(out), bytes(err))
            if time.monotonic() > deadline:
                raise RemoteError(f"{argv[0]} on {target.host} did not finish within {timeout:g} s.")
            if not progressed:
                time.sleep(_POLL_SECONDS)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise RemoteError(f"{argv[0]} on {target.host} failed: {exc or type(exc).__name__}.") from None
    finally:
        channel.close()


def open_dial_stdio(target: SSHTarget, *, timeout: float, connect_timeout: float) -> paramiko.Channel:
    """A channel running `docker system dial-stdio`: a byte pipe to the server's Docker daemon (the
    one sshd's session environment names in DOCKER_HOST), carried by a verified connection."""
    channel = pool_for(target).open_channel(connect_timeout)
    channel.settimeout(timeout)
    try:
        _exec(channel, "docker system dial-stdio", connect_timeout)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        channel.close()
        raise RemoteError(f"Cannot start docker dial-stdio on {target.host}: {exc or type(exc).__name__}.") from None
    return channel
