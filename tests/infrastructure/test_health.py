"""Health checks (the beat task) take a failing server offline after 3 failures and back when it passes."""

import pytest

from audit.models import AuditEvent
from infrastructure import remote, tasks
from infrastructure.choices import ServerStatus

pytestmark = [pytest.mark.ssh, pytest.mark.docker]


def _status(server) -> str:
    server.refresh_from_db()
    return server.status


def test_a_server_goes_offline_after_three_failed_checks_and_comes_back(ssh_server, sshd):
    sshd.stop()
    remote.forget_server(ssh_server.pk)

    tasks.check_all_servers()
    tasks.check_all_servers()
    assert _status(ssh_server) == ServerStatus.ACTIVE
    assert ssh_server.consecutive_failures == 2
    tasks.check_all_servers()
    assert _status(ssh_server) == ServerStatus.OFFLINE
    assert "Cannot reach" in ssh_server.status_message
    assert AuditEvent.objects.filter(action="server.offline", target_id=str(ssh_server.pk), actor=None).exists()

    sshd.start()
    tasks.check_all_servers()

    assert _status(ssh_server) == ServerStatus.ACTIVE
    assert ssh_server.consecutive_failures == 0
    assert AuditEvent.objects.filter(action="server.online", target_id=str(ssh_server.pk)).exists()


def test_a_missing_storage_folder_counts_as_a_failure(ssh_server, settings):
    settings.BERTH_SERVER_FAILURES_BEFORE_OFFLINE = 1
    ssh_server.storage_root = ssh_server.storage_root + "/gone"
    ssh_server.save(update_fields=["storage_root"])

    tasks.check_server(ssh_server.pk)

    assert _status(ssh_server) == ServerStatus.OFFLINE
    assert "Storage folder" in ssh_server.status_message


def test_a_draining_server_is_checked_but_stays_draining(ssh_server, sshd, operator, settings):
    from infrastructure import services

    settings.BERTH_SERVER_FAILURES_BEFORE_OFFLINE = 1
    services.drain_server(ssh_server, actor=operator)
    sshd.stop()
    remote.forget_server(ssh_server.pk)

    tasks.check_all_servers()

    assert _status(ssh_server) == ServerStatus.DRAINING
    assert ssh_server.consecutive_failures == 1


def test_retired_and_unverified_servers_are_not_checked(ssh_server, operator):
    from infrastructure import services

    services.retire_server(ssh_server, actor=operator)
    tasks.check_all_servers()

    ssh_server.refresh_from_db()
    assert ssh_server.last_checked_at is None


def test_the_connection_test_task_has_a_hard_time_limit():
    assert 0 < tasks.test_server_connection.time_limit <= 300
    assert tasks.check_server.time_limit and tasks.check_all_servers.time_limit
