"""Docker over mutual TLS against a real dockerd started with --tlsverify."""

import socket
import ssl
import tempfile

import pytest

from infrastructure import remote, services
from infrastructure.choices import DockerEndpoint, ServerStatus
from infrastructure.remote.connections import shared_docker_client
from tests.fixtures.tls import issue, make_ca

pytestmark = [pytest.mark.docker, pytest.mark.ssh]


def _register_tls(operator, sshd, tls_dockerd, tmp_path, *, docker_url=None, **bundle):
    server, _ = services.register_server(
        actor=operator,
        fields={"name": "tls-1", "host": sshd.host, "ssh_port": sshd.port, "docker_endpoint": DockerEndpoint.TLS,
                "docker_url": docker_url or tls_dockerd.url, "storage_root": str(tmp_path),
                "expected_host_key_fingerprint": sshd.ssh_keygen_fingerprint()},
        ssh_key={"private_key": sshd.client_key},
        docker_tls=tls_dockerd.bundle(**bundle),
    )
    return server


def test_the_registered_client_certificate_reaches_docker(db, operator, sshd, tls_dockerd, tmp_path):
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path)

    services.test_connection(server, actor=operator)
    server.refresh_from_db()

    assert server.status == ServerStatus.ACTIVE, server.last_test
    docker_step = next(step for step in server.last_test if step["name"] == "docker")
    assert "tcp with mutual tls" in docker_step["message"]
    assert server.credentials.get(kind="tls_bundle").expires_at is not None


def test_the_client_key_file_is_gone_once_the_client_exists(db, operator, sshd, tls_dockerd, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path / "storage")

    client = remote.docker_client(server)

    assert list((tmp_path / "tmp").iterdir()) == []
    assert client.ping()
    client.close()


def test_the_environment_cannot_replace_the_registered_ca(db, operator, sshd, tls_dockerd, tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path)

    assert remote.docker_version(server)["ApiVersion"]


def test_a_client_certificate_from_another_ca_is_refused(db, operator, sshd, tls_dockerd, tmp_path):
    stranger = issue(make_ca("stranger-ca"), "berth-client")
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path, client_cert=stranger.cert, client_key=stranger.key)

    with pytest.raises(remote.RemoteError):
        remote.docker_version(server)


def test_a_daemon_whose_certificate_is_not_from_the_registered_ca_is_refused(db, operator, sshd, tls_dockerd, tmp_path):
    other_ca = make_ca("other-ca")
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path, ca_cert=other_ca[0].cert)

    with pytest.raises(remote.RemoteError) as refused:
        remote.docker_version(server)

    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_the_daemon_host_name_is_verified(db, operator, sshd, tls_dockerd, tmp_path):
    port = tls_dockerd.url.rsplit(":", 1)[1]
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path, docker_url=f"tcp://localhost:{port}")

    with pytest.raises(remote.RemoteError) as refused:
        remote.docker_version(server)

    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_the_daemon_refuses_a_client_without_certificate(tls_dockerd):
    context = ssl.create_default_context(cadata=tls_dockerd.ca.cert)
    host, port = tls_dockerd.url.removeprefix("tcp://").split(":")

    with pytest.raises((ssl.SSLError, ConnectionError)):
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
                if not tls.recv(100):
                    raise ConnectionError("closed without answer")


def test_a_replaced_bundle_is_used_by_the_next_operation_not_the_shared_clients_old_one(
    db, operator, sshd, tls_dockerd, tmp_path
):
    """Operations share one client per server; a new bundle is a new identity, so a certificate the
    daemon refuses is refused at once, not after the old client's connections expire."""
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path)
    with remote.docker_session(server) as docker:
        assert docker.find("berth-no-such-container") is None

    stranger = issue(make_ca("stranger-ca"), "berth-client")
    services.set_tls_bundle(server, **tls_dockerd.bundle(client_cert=stranger.cert, client_key=stranger.key),
                            actor=operator)

    with pytest.raises(remote.RemoteError), remote.docker_session(server) as docker:
        docker.find("berth-no-such-container")


def test_idle_tls_connections_are_kept_alive_with_tcp_keepalive(db, operator, sshd, tls_dockerd, tmp_path):
    """Shared clients keep TLS connections open between operations: a NAT must not drop them unnoticed."""
    server = _register_tls(operator, sshd, tls_dockerd, tmp_path)
    with remote.docker_session(server) as docker:
        docker.find("berth-no-such-container")
    client = shared_docker_client(server)
    pools = client.api.get_adapter("https://").poolmanager.pools
    idle = [conn for key in pools.keys() for conn in list(pools[key].pool.queue) if conn is not None and conn.sock]

    assert idle and all(conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) for conn in idle)
