import hashlib
from dataclasses import dataclass

from django.db import models, transaction
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
    with transaction.atomic(savepoint=False):  # a failed append fails the caller's whole transaction
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1, defaults={"last_hash": GENESIS_HASH})
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
            previous_hash=head.last_hash,
        )
        event.hash = event.compute_hash()
        event.save()
        head.last_hash = event.hash
        head.save(update_fields=["last_hash"])
    return event


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
