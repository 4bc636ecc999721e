import hashlib
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.utils import timezone

from .choices import Outcome
from .context import current
from .models import GENESIS_HASH, AuditChainHead, AuditEvent, canonical_json


def _organization_of(target):
    if target is None:
        return None
    if target.__class__.__name__ == "Organization":
        return target
    return getattr(target, "organization", None)


def record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    organization=None,
    outcome: str = Outcome.SUCCESS,
    message: str = "",
    change: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain. Runs inside the caller's transaction, so the event exists
    exactly when the change it describes does. `change` is hashed, never stored: callers may pass
    identifying data but must not rely on reading it back."""
    context = current.get()
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        created_at=timezone.now(),
        actor=actor,
        actor_name=actor.get_username() if actor else "system",
        organization=organization or _organization_of(target),
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:200] if target is not None else "",
        request_id=context.request_id,
        source_ip=context.source_ip,
        user_agent=context.user_agent,
        outcome=outcome,
        message=message[:500],
        change_hash=hashlib.sha256(canonical_json(change).encode()).hexdigest() if change is not None else "",
    )
    if connection.vendor == "postgresql":
        _append_in_one_statement(event)
    else:
        _append_under_lock(event)
    return event


def _append_under_lock(event: AuditEvent) -> None:
    """Read the head with a row lock, then insert and move the head: three statements under the lock."""
    with transaction.atomic(savepoint=False):  # a failed append fails the caller's whole transaction
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1, defaults={"last_hash": GENESIS_HASH})
        event.previous_hash = head.last_hash
        event.hash = event.compute_hash()
        event.save()
        head.previous_hash, head.last_hash = head.last_hash, event.hash
        head.save(update_fields=["previous_hash", "last_hash"])


_CHAINED_COLUMNS = [field for field in AuditEvent._meta.concrete_fields if field.name not in {"id", "previous_hash", "hash"}]
_HEAD, _EVENTS = AuditChainHead._meta.db_table, AuditEvent._meta.db_table
_LINK = "encode(sha256(convert_to(%s || {previous} || %s, 'UTF8')), 'hex')"
# The head row is moved (or made) and the event inserted with the links the move returns. The row
# lock is taken by this statement and held to the commit, so it covers one statement instead of
# a locking read, an insert and an update: appends from concurrent transactions queue for less time.
_APPEND_SQL = f"""
WITH link AS (
    INSERT INTO "{_HEAD}" AS head (id, previous_hash, last_hash)
    VALUES (1, %s, {_LINK.format(previous="%s")})
    ON CONFLICT (id) DO UPDATE
    SET previous_hash = head.last_hash, last_hash = {_LINK.format(previous="head.last_hash")}
    RETURNING previous_hash, last_hash
)
INSERT INTO "{_EVENTS}" ({", ".join(f'"{field.column}"' for field in _CHAINED_COLUMNS)}, previous_hash, hash)
SELECT {", ".join(["%s"] * len(_CHAINED_COLUMNS))}, link.previous_hash, link.last_hash FROM link
RETURNING id, previous_hash, hash
"""


def _append_in_one_statement(event: AuditEvent) -> None:
    """PostgreSQL hashes the text compute_hash would, with the previous hash it holds put in, so the
    chain is the same one `_append_under_lock` builds and verify_chain checks."""
    before, after = event.hashed_text_around_previous_hash()
    values = [field.get_db_prep_save(getattr(event, field.attname), connection) for field in _CHAINED_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_SQL, [GENESIS_HASH, before, GENESIS_HASH, after, before, after, *values])
        event.id, event.previous_hash, event.hash = cursor.fetchone()
    event._state.adding, event._state.db = False, connection.alias


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_event_id: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason


def verify_chain() -> ChainReport:
    """Walk the events in insertion order; name the first whose content or link does not match."""
    expected_previous = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.previous_hash != expected_previous:
            return ChainReport(checked, event.id, "its previous_hash does not match the event before it (deleted or reordered)")
        if event.compute_hash() != event.hash:
            return ChainReport(checked, event.id, "its content does not match its hash (edited)")
        expected_previous = event.hash
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.last_hash != expected_previous:
        return ChainReport(checked, None, "the newest events were deleted (the chain head is ahead of the last event)")
    return ChainReport(checked)
