"""The one way a workspace's status changes: compare-and-set against the transition table."""

from django.utils import timezone

from . import cache
from .choices import WorkspaceStatus as S
from .models import TransitionConflict, Workspace

_TIMESTAMP_ON_ENTER = {S.RUNNING: "started_at", S.STOPPED: "stopped_at", S.DELETED: "deleted_at"}


def transition(workspace: Workspace, new: str, *, message: str = "", reason: str = "") -> Workspace:
    """Move `workspace` from its current status to `new`, or raise.

    IllegalTransition when the table forbids it; TransitionConflict when another worker changed the
    row since it was read. The instance is updated in place on success."""
    old = workspace.status
    Workspace.check_transition(workspace.pk, old, new)
    now = timezone.now()
    fields = {"status": new, "status_message": message[:500], "status_changed_at": now}
    if new == S.FAILED:
        fields["failure_reason"] = (reason or message)[:500]
    elif old == S.FAILED:
        fields["failure_reason"] = ""
    if new in _TIMESTAMP_ON_ENTER:
        fields[_TIMESTAMP_ON_ENTER[new]] = now
    moved = Workspace.objects.filter(pk=workspace.pk, status=old).update(**fields)
    if moved != 1:
        raise TransitionConflict(workspace.pk, old, new)
    for name, value in fields.items():
        setattr(workspace, name, value)
    cache.workspace_changed(workspace)
    return workspace


def report_progress(workspace: Workspace, message: str) -> None:
    """Update the status message (e.g. clone progress) without changing status; counts as progress."""
    now = timezone.now()
    Workspace.objects.filter(pk=workspace.pk, status=workspace.status).update(
        status_message=message[:500], status_changed_at=now
    )
    workspace.status_message, workspace.status_changed_at = message[:500], now
    cache.workspace_changed(workspace)
