"""Proving a server's identity over a real sshd: first contact, trust, mismatch, wrong key, unreachable."""

import os
import time

import pytest

from audit.models import AuditEvent
from infrastructure import remote, services
from infrastructure.choices import DockerEndpoint, ServerStatus
from tests.fixtures.ssh import SilentListener

pytestmark = [pytest.mark.ssh, pytest.mark.docker]


def _register(operator, sshd, storage, **extra):
    fields = {
        "name": "edge-1", "host": sshd.host, "ssh_port": sshd.port, "ssh_user": "root",
        "docker_endpoint": DockerEndpoint.SSH, "storage_root": str(storage),
    } | extra.pop("fields", {})
    server, _ = services.register_server(actor=operator, fields=fields, ssh_key={"private_key": sshd.client_key}, **extra)
    return server


def _steps(server):
    return {step["name"]: step for step in server.last_test}


def test_first_contact_shows_the_fingerprint_and_trust_makes_it_active(db, operator, sshd, tmp_path):
    server = _register(operator, sshd, tmp_path)
    assert server.status == ServerStatus.UNVERIFIED

    services.test_connection(server, actor=operator)
    server.refresh_from_db()
    host_key = _steps(server)["host_key"]
    assert host_key["result"] == "new"
    assert sshd.ssh_keygen_fingerprint() in host_key["message"]
    assert server.offered_host_key_fingerprint == sshd.ssh_keygen_fingerprint()
    assert server.status == ServerStatus.UNVERIFIED
    assert "ssh_auth" not in _steps(server), "nothing authenticates before the operator trusts the key"

    services.trust_host_key(server, fingerprint=sshd.ssh_keygen_fingerprint(), actor=operator, test=False)
    services.test_connection(server, actor=operator)
    server.refresh_from_db()

    assert server.status == ServerStatus.ACTIVE, server.last_test
    assert server.host_key_fingerprint == sshd.ssh_keygen_fingerprint()
    assert all(step["ok"] for step in server.last_test), server.last_test
    assert {"tcp", "host_key", "ssh_auth", "docker", "storage", "disk", "cpu", "memory"} <= set(_steps(server))
    assert server.discovered["cpu_cores"] >= 1 and server.discovered["docker_api_version"]
    actions = set(AuditEvent.objects.filter(target_id=str(server.pk)).values_list("action", flat=True))
    assert {"server.register", "server.credential_set", "server.test", "server.trust_host_key", "server.verified"} <= actions


def test_a_fingerprint_given_at_registration_is_pinned_on_first_test(db, operator, sshd, tmp_path):
    server = _register(operator, sshd, tmp_path, fields={"expected_host_key_fingerprint": sshd.ssh_keygen_fingerprint()})

    services.test_connection(server, actor=operator)
    server.refresh_from_db()

    assert server.status == ServerStatus.ACTIVE, server.last_test
    assert server.host_key_fingerprint == sshd.ssh_keygen_fingerprint()


def test_a_wrong_trusted_fingerprint_is_refused(db, operator, sshd, tmp_path):
    server = _register(operator, sshd, tmp_path)
    services.test_connection(server, actor=operator)

    with pytest.raises(services.ValidationError) as refused:
        services.trust_host_key(server, fingerprint="SHA256:" + "A" * 43, actor=operator)

    assert "fingerprint" in refused.value.message_dict
    server.refresh_from_db()
    assert server.host_key == "" and server.status == ServerStatus.UNVERIFIED


def test_a_swapped_host_key_fails_closed_before_authentication(ssh_server, sshd, operator):
    sshd.swap_host_key()
    remote.forget_server(ssh_server.pk)

    with pytest.raises(remote.HostKeyMismatch):
        remote.run_command(ssh_server, ["touch", f"{ssh_server.storage_root}/must-not-exist"])
    services.check_server_health(ssh_server)

    log = sshd.log()
    assert "Connection from" in log, "the attempts reached this sshd"
    assert "publickey" not in log and "Accepted" not in log and "session" not in log.lower(), log
    ssh_server.refresh_from_db()
    assert ssh_server.status == ServerStatus.HOST_KEY_MISMATCH
    assert ssh_server.offered_host_key_fingerprint == sshd.ssh_keygen_fingerprint()
    assert AuditEvent.objects.filter(action="server.host_key_mismatch", target_id=str(ssh_server.pk)).exists()
    assert not os.path.exists(f"{ssh_server.storage_root}/must-not-exist")


def test_docker_over_ssh_refuses_a_swapped_host_key_before_any_docker_call(ssh_server, sshd):
    sshd.swap_host_key()
    remote.forget_server(ssh_server.pk)
    client = remote.docker_client(ssh_server)

    with pytest.raises(remote.HostKeyMismatch):
        client.containers.list()

    client.close()
    assert "publickey" not in sshd.log() and "dial-stdio" not in sshd.log()


def test_an_unpinned_server_gets_no_docker_client(db, operator, sshd, tmp_path):
    server = _register(operator, sshd, tmp_path)

    with pytest.raises(remote.HostKeyNotTrusted):
        remote.docker_client(server)
    with pytest.raises(remote.HostKeyNotTrusted):
        remote.run_command(server, ["true"])


def test_only_an_audited_re_trust_clears_a_mismatch(ssh_server, sshd, operator):
    sshd.swap_host_key()
    services.test_connection(ssh_server, actor=operator)
    ssh_server.refresh_from_db()
    assert ssh_server.status == ServerStatus.HOST_KEY_MISMATCH
    assert "MISMATCH" in _steps(ssh_server)["host_key"]["message"]

    services.test_connection(ssh_server, actor=operator)
    ssh_server.refresh_from_db()
    assert ssh_server.status == ServerStatus.HOST_KEY_MISMATCH, "a test alone never clears it"

    services.trust_host_key(ssh_server, fingerprint=sshd.ssh_keygen_fingerprint(), actor=operator, test=False)
    services.test_connection(ssh_server, actor=operator)
    ssh_server.refresh_from_db()
    assert ssh_server.status == ServerStatus.ACTIVE
    trust = AuditEvent.objects.filter(action="server.trust_host_key", target_id=str(ssh_server.pk)).latest("id")
    assert trust.actor == operator and "replacing" in trust.message


def test_a_key_the_server_does_not_accept_is_a_clear_authentication_failure(db, operator, sshd, tmp_path):
    from tests.fixtures.ssh import make_ssh_key

    stranger = make_ssh_key(tmp_path / "stranger")
    server, _ = services.register_server(
        actor=operator, ssh_key={"private_key": stranger},
        fields={"name": "edge-2", "host": sshd.host, "ssh_port": sshd.port, "ssh_user": "root",
                "docker_endpoint": DockerEndpoint.SSH, "storage_root": str(tmp_path),
                "expected_host_key_fingerprint": sshd.ssh_keygen_fingerprint()},
    )

    services.test_connection(server, actor=operator)
    server.refresh_from_db()

    auth = _steps(server)["ssh_auth"]
    assert auth["result"] == "fail"
    assert "refused Berth's key" in auth["message"] and "authorized_keys" in auth["message"]
    assert server.status == ServerStatus.UNVERIFIED


def test_a_closed_port_fails_quickly(db, operator, sshd, tmp_path):
    from tests.fixtures.processes import free_port

    server = _register(operator, sshd, tmp_path, fields={"ssh_port": free_port()})
    started = time.monotonic()

    services.test_connection(server, actor=operator)

    assert time.monotonic() - started < 10
    server.refresh_from_db()
    assert _steps(server)["tcp"]["result"] == "fail"
    assert "Cannot reach" in _steps(server)["tcp"]["message"]


def test_a_host_that_accepts_but_never_speaks_ssh_fails_within_10_seconds(db, operator, sshd, tmp_path):
    silent = SilentListener()
    try:
        server = _register(operator, sshd, tmp_path, fields={"ssh_port": silent.port})
        started = time.monotonic()
        services.test_connection(server, actor=operator)
        elapsed = time.monotonic() - started
    finally:
        silent.close()

    assert elapsed < 10
    server.refresh_from_db()
    assert _steps(server)["host_key"]["result"] == "fail"


def test_a_missing_storage_folder_is_offered_and_created_on_request(db, operator, sshd, tmp_path):
    root = tmp_path / "not" / "yet"
    server = _register(operator, sshd, root, fields={"expected_host_key_fingerprint": sshd.ssh_keygen_fingerprint()})

    services.test_connection(server, actor=operator)
    server.refresh_from_db()
    assert _steps(server)["storage"]["result"] == "fail" and "create" in _steps(server)["storage"]["message"]
    assert server.status == ServerStatus.UNVERIFIED

    services.test_connection(server, actor=operator, create_storage=True)
    server.refresh_from_db()
    assert root.is_dir() and server.status == ServerStatus.ACTIVE
