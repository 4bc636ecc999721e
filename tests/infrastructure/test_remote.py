"""The remote boundary against a real sshd and dockerd: commands, Docker over the verified SSH
connection, connection sharing and rebuilding, timeouts, and nothing read from ~/.ssh."""

import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from infrastructure import crypto, remote
from infrastructure.remote import docker_transport
from infrastructure.remote import ssh as ssh_transport
from tests.fixtures.ssh import SilentListener, make_ssh_key

pytestmark = [pytest.mark.ssh, pytest.mark.docker]


def test_run_command_returns_exit_code_stdout_and_stderr(ssh_server):
    result = remote.run_command(ssh_server, ["sh", "-c", 'echo "$1"; echo oops >&2; exit 3', "sh", "a b; rm -rf /"])

    assert result.exit_code == 3
    assert result.stdout == b"a b; rm -rf /\n", "arguments are quoted, never interpreted by a shell"
    assert result.stderr == b"oops\n"


@pytest.mark.parametrize("server", ["local_server", "ssh_server"])
def test_make_folder_creates_parents_and_hands_the_folder_to_its_owner_also_when_it_exists(request, db, server):
    """The local engine does in-process what `install -d` does over SSH: the same result either way."""
    server = request.getfixturevalue(server)
    folder = Path(server.storage_root, "acme", "one")
    remote.make_folder(server, str(folder), owner_uid=1000)
    assert (folder.stat().st_uid, folder.stat().st_gid, stat.S_IMODE(folder.stat().st_mode)) == (1000, 1000, 0o755)

    os.chown(folder, 0, 0)
    folder.chmod(0o700)
    remote.make_folder(server, str(folder), owner_uid=1000)
    assert (folder.stat().st_uid, stat.S_IMODE(folder.stat().st_mode)) == (1000, 0o755)

    (folder / "file").write_text("x")
    with pytest.raises(remote.RemoteError, match=f"creating {folder}/file on {server.name}"):
        remote.make_folder(server, str(folder / "file"), owner_uid=1000)



def test_make_folder_on_the_local_engine_refuses_a_symlink_in_place_of_the_folder(local_server):
    """install(1) would follow it (and hand the target to the workspace user); the in-process
    version opens the folder without following links. Only root can plant one under the
    root-owned organization folder: this is hardening, not a hole over SSH."""
    elsewhere = Path(local_server.storage_root, "elsewhere")
    elsewhere.mkdir(mode=0o700)
    Path(local_server.storage_root, "acme").mkdir()
    planted = Path(local_server.storage_root, "acme", "planted")
    planted.symlink_to(elsewhere)
    with pytest.raises(remote.RemoteError, match=f"creating {planted} on local"):
        remote.make_folder(local_server, str(planted), owner_uid=1000)
    assert (elsewhere.stat().st_uid, stat.S_IMODE(elsewhere.stat().st_mode)) == (0, 0o700), "the link was followed"


def test_large_stdin_and_stdout_flow_without_stalling(ssh_server):
    payload = bytes(range(256)) * 16384  # 4 MiB, more than one SSH window each way

    result = remote.run_command(ssh_server, ["cat"], stdin=payload, timeout=30)

    assert result.exit_code == 0 and result.stdout == payload


def test_a_command_that_overruns_its_timeout_is_cut_off(ssh_server):
    started = time.monotonic()

    with pytest.raises(remote.RemoteError, match="did not finish"):
        remote.run_command(ssh_server, ["sleep", "30"], timeout=1)

    assert time.monotonic() - started < 5


def test_docker_runs_containers_through_the_verified_ssh_connection(ssh_server, workspace_image, test_run_label, tmp_path):
    client = remote.docker_client(ssh_server)
    try:
        assert client.api.base_url == "http+docker://ssh"
        output = client.containers.run(
            workspace_image, ["sh", "-c", "echo hello > /data/proof && cat /data/proof"],
            volumes={ssh_server.storage_root: {"bind": "/data", "mode": "rw"}}, network_mode="none",
            labels={"berth.test-run": test_run_label}, remove=True,
        )
        container = client.containers.run(workspace_image, ["sleep", "60"], detach=True, init=True,
                                          network_mode="none", labels={"berth.test-run": test_run_label})
        exit_code, exec_output = container.exec_run(["echo", "inside"])
        container.remove(force=True)
    finally:
        client.close()

    assert output == b"hello\n"
    assert (exit_code, exec_output) == (0, b"inside\n")
    with open(f"{ssh_server.storage_root}/proof") as proof:
        assert proof.read() == "hello\n"


@pytest.mark.django_db(transaction=True)  # the threads read the server through their own connections
def test_twenty_concurrent_docker_users_share_few_ssh_connections(ssh_server, sshd):
    errors = []

    def work():
        try:
            client = remote.docker_client(ssh_server)
            client.containers.list()
            client.version()
            client.close()
            remote.run_command(ssh_server, ["true"])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connection.close()  # the credential lookup borrowed one from the pool

    threads = [threading.Thread(target=work) for _ in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert time.monotonic() - started < 20
    logins = sshd.log().count("Accepted publickey")
    # one per MaxSessions (10) channels in flight, plus the fixture's own connection
    assert 1 <= logins <= 4, sshd.log()


def test_a_dead_connection_is_rebuilt_and_verified_again(ssh_server, sshd):
    remote.run_command(ssh_server, ["true"])
    for pool in list(ssh_transport._pools.values()):
        for client in pool.clients:
            client.get_transport().close()
    before = sshd.log().count("Accepted publickey")

    assert remote.run_command(ssh_server, ["echo", "back"]).stdout == b"back\n"
    assert sshd.log().count("Accepted publickey") == before + 1


def test_nothing_comes_from_the_workers_ssh_directory_or_agent(ssh_server, sshd, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    make_ssh_key(home / ".ssh" / "id_ed25519")
    (home / ".ssh" / "known_hosts").write_text(f"[{sshd.host}]:{sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7tm0bl8zdwS0qGW9pd4lk3L0b0TgkVY5uhLQOI5fH0\n")
    (home / ".ssh" / "config").write_text(f"Host {sshd.host}\n  Port 1\n  User nobody\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "no-agent.sock"))
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    remote.forget_server(ssh_server.pk)

    assert remote.run_command(ssh_server, ["true"]).exit_code == 0
    assert remote.docker_version(ssh_server)["ApiVersion"]


@pytest.mark.parametrize("kind,bits", [("ed25519", None), ("ecdsa", 384), ("rsa", 3072)])
def test_fingerprints_match_ssh_keygen(tmp_path, kind, bits):
    private = make_ssh_key(tmp_path / "k", kind=kind, bits=bits)
    keygen = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True)

    material = crypto.parse_ssh_private_key(private)

    assert material.fingerprint == keygen.stdout.split()[1]
    assert crypto.public_line_fingerprint((tmp_path / "k.pub").read_text())[2] == material.fingerprint


@pytest.mark.parametrize("kind,bits", [("ed25519", None), ("ecdsa", 521), ("rsa", 3072)])
def test_a_passphrase_protected_key_of_each_kind_signs_in(db, operator, sshd, tmp_path, kind, bits):
    from infrastructure import services

    protected = make_ssh_key(tmp_path / "p", kind=kind, bits=bits, passphrase="correct horse")
    (sshd.directory / "authorized_keys").write_text((tmp_path / "p.pub").read_text())
    server, _ = services.register_server(
        actor=operator, ssh_key={"private_key": protected, "passphrase": "correct horse"},
        fields={"name": "pp", "host": sshd.host, "ssh_port": sshd.port, "storage_root": str(tmp_path),
                "expected_host_key_fingerprint": sshd.ssh_keygen_fingerprint()},
    )
    services.test_connection(server, actor=operator)

    assert server.status == "active", server.last_test


@pytest.mark.django_db(transaction=True)
def test_callers_waiting_on_a_hanging_server_fail_together_not_in_turn(ssh_server, sshd, settings):
    """Ten callers start together against a host that accepts and never answers. Shared, they cost one
    handshake (two if a slow-starting caller arrives after the first failed); in turn they would cost
    ten, one after another. The handshake count does not depend on how loaded the machine is; the
    time bound is half of what ten in turn would take at the least."""
    timeout = settings.BERTH_CONNECT_TIMEOUT = 2
    callers = 10
    sshd.stop()
    remote.forget_server(ssh_server.pk)
    silent = SilentListener(sshd.port)  # the same address now accepts and never answers
    outcomes = []
    start = threading.Barrier(callers)

    def work():
        try:
            start.wait(timeout=30)
            remote.run_command(ssh_server, ["true"])
        except remote.RemoteError as exc:
            outcomes.append(type(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(callers)]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        silent.close()

    assert outcomes == [remote.Unreachable] * callers
    assert len(silent.held) <= 2, f"{len(silent.held)} handshakes: callers retried in turn"
    assert elapsed < callers * timeout / 2, f"{elapsed:.1f} s: callers waited for each other's timeouts"


def test_the_local_engine_answers(docker_engine):
    assert remote.local_engine_answers(timeout=5) is True


def test_a_missing_local_socket_is_no_engine(monkeypatch, tmp_path):
    monkeypatch.setattr(docker_transport, "LOCAL_DOCKER_URL", f"unix://{tmp_path}/docker.sock")
    assert remote.local_engine_answers(timeout=5) is False


def test_a_local_socket_that_never_answers_is_no_engine_once_the_timeout_passes(monkeypatch, tmp_path):
    path = tmp_path / "docker.sock"
    silent = socket.socket(socket.AF_UNIX)
    silent.bind(str(path))
    silent.listen(8)  # connections wait in the backlog; nobody ever reads or answers
    monkeypatch.setattr(docker_transport, "LOCAL_DOCKER_URL", f"unix://{path}")
    started = time.monotonic()
    try:
        assert remote.local_engine_answers(timeout=1) is False
    finally:
        silent.close()
    assert 1 <= time.monotonic() - started < 10


def test_docker_operations_share_one_client_and_its_open_ssh_channel(ssh_server, sshd):
    """A `docker system dial-stdio` session on the server per operation would cost a channel, a
    process on the server and a client each time; the process's shared client keeps its channel."""
    remote.forget_server(ssh_server.pk)
    before = sshd.log().count("Starting session: command")
    for _ in range(3):
        with remote.docker_session(ssh_server) as docker:
            assert docker.find("berth-no-such-container") is None

    assert sshd.log().count("Starting session: command") == before + 1, sshd.log()


def test_a_shared_docker_client_still_fails_closed_on_a_swapped_host_key(ssh_server, sshd):
    """An impostor takes over the address and the verified connection drops: the shared client's
    open channel dies with it, and its next channel needs a new connection, verified against the pin."""
    with remote.docker_session(ssh_server) as docker:
        docker.find("berth-no-such-container")
    sshd.swap_host_key()
    for pool in list(ssh_transport._pools.values()):
        for client in pool.clients:
            client.get_transport().close()

    with pytest.raises(remote.HostKeyMismatch), remote.docker_session(ssh_server) as docker:
        docker.find("berth-no-such-container")
    assert "Accepted publickey" not in sshd.log()


def test_forget_server_replaces_the_shared_docker_client(ssh_server, sshd):
    with remote.docker_session(ssh_server) as docker:
        docker.find("berth-no-such-container")
    before = sshd.log().count("Starting session: command")

    remote.forget_server(ssh_server.pk)
    with remote.docker_session(ssh_server) as docker:
        docker.find("berth-no-such-container")

    assert sshd.log().count("Starting session: command") == before + 1


def test_an_operation_that_began_before_a_new_key_finishes_on_its_client(ssh_server, sshd, operator, tmp_path):
    """The new key gets a new shared client; the one an operation already holds is not closed under
    it (a closed client would fail that operation half-way)."""
    from infrastructure import services

    renewed = make_ssh_key(tmp_path / "renewed")
    with open(sshd.directory / "authorized_keys", "a") as authorized:
        authorized.write((tmp_path / "renewed.pub").read_text())
    with remote.docker_session(ssh_server) as before:
        assert before.find("berth-no-such-container") is None
        services.set_ssh_key(ssh_server, private_key=renewed, actor=operator)
        with remote.docker_session(ssh_server) as after:
            assert after.find("berth-no-such-container") is None
        assert before.find("berth-no-such-container") is None


@pytest.mark.django_db(transaction=True)  # the threads read the server through their own connections
def test_a_burst_past_the_idle_channel_limit_closes_the_surplus_quietly(ssh_server, caplog):
    """More operations at once than the shared client keeps idle channels: all succeed, the surplus
    channels are closed without urllib3's "pool is full" warning on every burst."""
    errors, start = [], threading.Barrier(16)

    def work():
        try:
            start.wait()
            with remote.docker_session(ssh_server) as docker:
                docker.list_containers(["berth.managed=1"])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
