"""Docker SDK clients whose transport Berth set up itself.

- SSH: an HTTP adapter whose connections are `docker system dial-stdio` channels on a connection
  verified against the pinned host key (ssh.py). The SDK's own ssh:// transport takes host trust from
  ~/.ssh/known_hosts and keys from the agent, so it is never used. Modelled on the SDK's
  docker/transport/sshconn.py (SSHConnection / SSHConnectionPool, docker 7.2.0); the test suite
  exercises it end to end against a real sshd and dockerd, pinned docker==7.2.0 / paramiko==5.1.0.
- TLS: an adapter with one ssl.SSLContext holding the registered CA (in memory) and the client
  certificate and key, loaded from 0600 files in a private folder that is removed before the client is
  returned. Trust comes only from that CA; requests' default bundle and the environment are ignored.

Both clients are built with an explicit API version, so the constructor sends nothing, and with
trust_env=False, so REQUESTS_CA_BUNDLE and *_PROXY have no effect.
"""

import os
import queue
import shutil
import socket
import ssl
import tempfile
from functools import partial

import docker
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
from docker.transport.basehttpadapter import BaseHTTPAdapter

from . import ssh

DOCKER_API_VERSION = "1.41"
DOCKER_TIMEOUT = 60
# The SDK's raw-socket helpers (attach, exec with socket=True) recognise an SSH transport by this prefix.
_SSH_BASE_URL = "http+docker://ssh"
LOCAL_DOCKER_URL = "unix:///var/run/docker.sock"
# Idle connections a shared client keeps (a worker runs up to 32 operations at once). Over SSH each
# is a `docker system dial-stdio` process and an SSH session on the server, so it keeps fewer and
# closes the surplus of a burst quietly; a socket or TLS connection costs next to nothing idle.
_POOL_SIZE = 10
_SHARED_POOL_SIZE = 32
# TLS connections wait in the pool between operations: keepalive probes keep a NAT or firewall from
# dropping the idle flow unnoticed (the next request would hang until DOCKER_TIMEOUT) and find a dead peer.
_KEEPALIVE_OPTIONS = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4),
]


class _ChannelConnection(urllib3.connection.HTTPConnection):
    def __init__(self, opener, timeout):
        super().__init__("localhost", timeout=timeout)
        self._opener = opener

    def connect(self):
        self.sock = self._opener()


class _ChannelPool(urllib3.connectionpool.HTTPConnectionPool):
    scheme = "ssh"

    def __init__(self, opener, timeout):
        super().__init__("localhost", timeout=timeout, maxsize=_POOL_SIZE)
        self._opener = opener

    def _new_conn(self):
        return _ChannelConnection(self._opener, self.timeout)

    def _get_conn(self, timeout=None):
        """Reuse an idle channel only while it is open. urllib3's own liveness check select()s on the
        socket, and each paramiko Channel.fileno() creates a pipe, so it is replaced (as in the SDK)."""
        conn = self._pop_idle()
        if conn is not None and conn.sock is not None and (conn.sock.closed or conn.sock.eof_received):
            conn.close()
            conn = None
        return conn or self._new_conn()

    def _put_conn(self, conn):
        """Past _POOL_SIZE idle channels, close the channel instead of logging urllib3's warning."""
        try:
            self.pool.put(conn, block=False)
        except (AttributeError, queue.Full):  # closed pool, or enough idle channels already
            if conn is not None:
                conn.close()

    def _pop_idle(self):
        try:
            return self.pool.get(block=False)
        except AttributeError:  # pool closed
            raise urllib3.exceptions.ClosedPoolError(self, "Pool is closed.") from None
        except queue.Empty:
            return None


class _SSHChannelAdapter(BaseHTTPAdapter):
    def __init__(self, opener, timeout):
        self._pool = _ChannelPool(opener, timeout)
        super().__init__()

    def get_connection(self, url, proxies=None):
        return self._pool

    def close(self):
        super().close()
        self._pool.close()


class _PinnedTLSAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, context: ssl.SSLContext):
        self._context = context
        super().__init__(pool_connections=1, pool_maxsize=_SHARED_POOL_SIZE)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context,
                                 socket_options=urllib3.connection.HTTPConnection.default_socket_options
                                 + _KEEPALIVE_OPTIONS, **pool_kwargs)

    def cert_verify(self, conn, url, verify, cert):
        """requests would add its default CA bundle here; trust comes only from the context's CA."""
        conn.cert_reqs = "CERT_REQUIRED"


def _quiet_client(base_url: str, timeout: float) -> docker.DockerClient:
    """A DockerClient whose constructor sends nothing (explicit API version) and that ignores the
    environment (proxies, CA bundles)."""
    client = docker.DockerClient(base_url=base_url, version=DOCKER_API_VERSION, timeout=timeout,
                                  max_pool_size=_SHARED_POOL_SIZE)
    client.api.trust_env = False
    return client


def ssh_docker_client(target: "ssh.SSHTarget", *, timeout: float = DOCKER_TIMEOUT, connect_timeout: float) -> docker.DockerClient:
    # The placeholder socket is never connected to: its adapter is replaced before any request.
    client = _quiet_client("http+unix:///nonexistent/berth-unused.sock", timeout)
    api = client.api
    api.adapters.pop("http+docker://").close()
    opener = partial(ssh.open_dial_stdio, target, timeout=timeout, connect_timeout=connect_timeout)
    api._custom_adapter = _SSHChannelAdapter(opener, timeout)
    api.mount(_SSH_BASE_URL, api._custom_adapter)
    api.base_url = _SSH_BASE_URL
    return client


def _write_private(folder: str, name: str, text: str) -> str:
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def tls_context(*, ca_cert: str, client_cert: str, client_key: str) -> ssl.SSLContext:
    """Verify the daemon against `ca_cert` only (and its host name), present the client certificate.
    The key touches disk only in a 0700 folder for the duration of load_cert_chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca_cert)
    folder = tempfile.mkdtemp(prefix="berth-tls-")
    try:
        context.load_cert_chain(_write_private(folder, "cert.pem", client_cert), _write_private(folder, "key.pem", client_key))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return context


def tls_docker_client(url: str, context: ssl.SSLContext, *, timeout: float = DOCKER_TIMEOUT) -> docker.DockerClient:
    """`url` is https://host:port (from a validated tcp:// docker_url)."""
    client = _quiet_client(url, timeout)
    client.api.verify = True
    client.api.mount("https://", _PinnedTLSAdapter(context))
    return client


def local_docker_client(*, timeout: float = DOCKER_TIMEOUT) -> docker.DockerClient:
    return _quiet_client(LOCAL_DOCKER_URL, timeout)
