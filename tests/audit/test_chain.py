"""The audit log is a hash chain: an edit or deletion made behind Berth's back is found and named."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

import audit.services as audit
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from audit.services import verify_chain


@pytest.fixture
def three_events(alice, acme):
    return [audit.record(actor=alice, action=f"test.step{number}", target=acme, change={"n": number}) for number in range(3)]


def run_sql(sql: str, params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_an_untouched_chain_verifies(three_events):
    report = verify_chain()
    assert report.intact and report.checked == 3


def test_each_event_links_to_the_one_before(three_events):
    first, second, third = three_events
    assert second.previous_hash == first.hash and third.previous_hash == second.hash


def test_the_change_is_stored_only_as_a_hash(alice, acme):
    event = audit.record(actor=alice, action="test.secret", target=acme, change={"password": "hunter2-sentinel"})
    row = AuditEvent.objects.filter(pk=event.pk).values().get()
    assert "hunter2-sentinel" not in repr(row)
    assert len(event.change_hash) == 64


def test_an_edited_row_is_named(three_events):
    edited = three_events[1]
    run_sql("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", edited.pk])
    report = verify_chain()
    assert report.broken_event_id == edited.pk
    assert "edited" in report.reason


def test_an_edit_that_recomputes_the_hash_breaks_the_next_link(three_events):
    first, second, _ = three_events
    second.refresh_from_db()
    second.message = "nothing happened"
    run_sql("UPDATE audit_auditevent SET message = %s, hash = %s WHERE id = %s", [second.message, second.compute_hash(), second.pk])
    assert verify_chain().broken_event_id == three_events[2].pk


def test_a_deleted_row_is_found_at_the_next_event(three_events):
    run_sql("DELETE FROM audit_auditevent WHERE id = %s", [three_events[1].pk])
    report = verify_chain()
    assert report.broken_event_id == three_events[2].pk
    assert "deleted" in report.reason


def test_deleting_the_newest_row_is_found(three_events):
    run_sql("DELETE FROM audit_auditevent WHERE id = %s", [three_events[2].pk])
    report = verify_chain()
    assert not report.intact and "newest events were deleted" in report.reason


def test_the_command_reports_an_intact_chain(three_events, capsys):
    call_command("verify_audit_chain")
    assert "intact: 3 events" in capsys.readouterr().out


def test_the_command_fails_and_names_the_broken_event(three_events):
    run_sql("UPDATE audit_auditevent SET outcome = 'failure' WHERE id = %s", [three_events[0].pk])
    with pytest.raises(CommandError, match=rf"broken at event {three_events[0].pk}: .*edited"):
        call_command("verify_audit_chain")


def test_the_command_exits_non_zero_from_the_shell(three_events):
    run_sql("UPDATE audit_auditevent SET outcome = 'failure' WHERE id = %s", [three_events[0].pk])
    with pytest.raises(SystemExit) as exited:
        call_command_from_shell("verify_audit_chain")
    assert exited.value.code == 1


def call_command_from_shell(name: str) -> None:
    """As `manage.py <name>` runs it: CommandError becomes a message and exit status 1."""
    from django.core.management import ManagementUtility

    ManagementUtility(["manage.py", name]).execute()


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_many_connections_form_one_unbroken_chain(alice, acme):
    """12 threads, each in its own transactions on its own PostgreSQL connection, append 10 events each
    at the same time. Each event must link to exactly one other: a second writer reading the same head
    (no lock, or a lock taken too late) would fork the chain and verify_chain would name the fork."""
    assert connection.vendor == "postgresql"
    start = threading.Barrier(12)

    def append_ten(number):
        try:
            start.wait(timeout=30)
            for step in range(10):
                with transaction.atomic():
                    audit.record(actor=alice, action="test.concurrent", target=acme, message=f"{number}-{step}")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(append_ten, range(12)))
    report = verify_chain()
    assert report.intact and report.checked == 120
    assert AuditEvent.objects.values("previous_hash").distinct().count() == 120


def test_the_in_database_append_hashes_what_compute_hash_hashes(alice, acme):
    """PostgreSQL fills the previous hash into the text Python prepared and hashes it there; text with
    quotes, backslashes, non-ASCII letters and the key's own name must come out as compute_hash says."""
    tricky = 'she said "previous_hash":"x" \\ naïve — 東京 \U0001f680'
    event = audit.record(actor=alice, action="test.tricky", target=acme, message=tricky, change={"k": tricky})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.message == tricky and stored.hash == event.hash == stored.compute_hash()
    assert verify_chain().intact


def test_both_ways_of_appending_extend_the_same_chain(alice, acme):
    """SQLite (the embedded default) appends with the locking read in Python; PostgreSQL in one
    statement. Interleaved on one database they must build one chain that verifies."""
    from audit.services import _append_under_lock

    first = audit.record(actor=alice, action="test.sql", target=acme)
    second = AuditEvent(created_at=first.created_at, actor_name="system", action="test.python", previous_hash="")
    _append_under_lock(second)
    third = audit.record(actor=alice, action="test.sql", target=acme)
    assert second.previous_hash == first.hash and third.previous_hash == second.hash
    report = verify_chain()
    assert report.intact and report.checked == 3


def test_the_first_append_makes_the_chain_head(alice, acme):
    AuditChainHead.objects.all().delete()
    event = audit.record(actor=alice, action="test.first", target=acme)
    assert event.previous_hash == GENESIS_HASH
    assert AuditChainHead.objects.get().last_hash == event.hash
    assert verify_chain().intact
