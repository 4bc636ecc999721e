"""Keeping the database true to the servers (Celery beat): reconciler, hang detector, idle stop,
placement queue, usage sampling and purge of retained data. Each function returns how many
workspaces (or containers) it acted on, and one server's failure never stops the others."""

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.db.models.functions import Least, Now
from django.utils import timezone

import audit.services as audit
from infrastructure.choices import ServerStatus
from infrastructure.models import OrphanContainer, Placement, ResourceUsage, Server
from infrastructure.remote import RemoteError
from tenants.models import MAX_IDLE_TIMEOUT

from . import provisioning, services
from .choices import IN_FLIGHT, WorkspaceStatus as S
from .models import IllegalTransition, TransitionConflict, Workspace
from .state import transition

logger = logging.getLogger(__name__)
BATCH = 500
SAMPLING_THREADS = 8


def active_server_ids() -> list[int]:
    return list(Server.objects.filter(status=ServerStatus.ACTIVE).order_by("pk").values_list("pk", flat=True))


def reconcile_server(server_id: int) -> int:
    """Compare the server's Berth containers (by label, under its storage root) with the database.

    A running workspace whose container exited goes to `stopped`, one whose container vanished to
    `failed`; only workspaces that have not changed since the listing are judged, so a workspace
    started a moment ago is not mistaken for a dead one. Containers no live workspace claims are
    recorded as orphans, and removed only when BERTH_REMOVE_ORPHANS is on."""
    server = Server.objects.filter(pk=server_id, status=ServerStatus.ACTIVE).first()
    if server is None:
        return 0
    listed_at = timezone.now()
    try:
        containers = {state.workspace_id: state for state in provisioning.list_containers(server)}
    except RemoteError as exc:
        logger.warning("reconcile %s: %s", server.name, exc)
        return 0
    changed = 0
    running = Workspace.objects.select_related("organization").filter(
        placement__server=server, status=S.RUNNING, status_changed_at__lt=listed_at
    )
    for workspace in running:
        state = containers.get(str(workspace.pk))
        if state is None:
            changed += services.fail_workspace(workspace, reason=f"Its container disappeared from {server.name}.")
        elif not state.running:
            changed += _mark_exited(workspace, state)
    live = {str(pk) for pk in Workspace.objects.live().filter(placement__server=server).values_list("pk", flat=True)}
    for state in containers.values():
        if state.workspace_id not in live:
            changed += _record_orphan(server, state)
    return changed


def _mark_exited(workspace: Workspace, state: provisioning.ContainerState) -> bool:
    message = f"The container exited (code {state.exit_code}) outside Berth."
    try:
        with transaction.atomic():
            transition(workspace, S.STOPPED, message=message)
            audit.record(actor=None, action="workspace.container_exited", target=workspace, message=message)
    except (IllegalTransition, TransitionConflict):
        return False
    return True


def _record_orphan(server: Server, state: provisioning.ContainerState) -> bool:
    orphan, created = OrphanContainer.objects.get_or_create(
        server=server, container_id=state.id, resolved_at=None,
        defaults={"container_name": state.name, "data_path": state.data_path,
                  "workspace_id": _uuid_or_none(state.workspace_id),
                  "note": "container with Berth labels but no live workspace"},
    )
    if settings.BERTH_REMOVE_ORPHANS:
        try:
            provisioning.remove_containers(server, [state.id])
        except RemoteError as exc:
            logger.warning("orphan %s on %s not removed: %s", state.name, server.name, exc)
            return created
        OrphanContainer.objects.filter(pk=orphan.pk).update(resolved_at=timezone.now(), note="removed by the reconciler")
    return created


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def fail_hung_workspaces() -> int:
    """In-flight workspaces without progress for BERTH_HANG_TIMEOUT go to failed, so nothing spins forever."""
    timeout = settings.BERTH_HANG_TIMEOUT
    hung = Workspace.objects.filter(status__in=IN_FLIGHT, status_changed_at__lt=timezone.now() - timeout)
    minutes = int(timeout.total_seconds() // 60)
    return sum(
        services.fail_workspace(workspace, reason=f"No progress for {minutes} minutes while {workspace.status}.")
        for workspace in hung[:BATCH]
    )


def stop_idle_workspaces() -> int:
    """Running workspaces with no activity for their organization's idle timeout are stopped."""
    # Clamped: one organization's out-of-range value (stored before the validators) must not fail the
    # query, and with it the idle stop of every other organization.
    timeout = Least(F("organization__idle_timeout"), Value(MAX_IDLE_TIMEOUT, output_field=DurationField()))
    idle_since = ExpressionWrapper(Now() - timeout, output_field=DateTimeField())
    idle = Workspace.objects.select_related("organization").filter(status=S.RUNNING, last_activity_at__lt=idle_since)
    stopped = 0
    for workspace in idle[:BATCH]:
        try:
            services.stop_workspace(workspace, actor=None, reason=f"Stopped after {workspace.organization.idle_timeout} without activity")
        except services.WorkspaceConflict:
            continue
        stopped += 1
    return stopped


def place_pending_workspaces() -> int:
    """Fail what waited longer than BERTH_PLACEMENT_TIMEOUT, then try to place the rest, oldest first."""
    cutoff = timezone.now() - settings.BERTH_PLACEMENT_TIMEOUT
    minutes = int(settings.BERTH_PLACEMENT_TIMEOUT.total_seconds() // 60)
    for workspace in Workspace.objects.filter(status=S.PENDING, status_changed_at__lt=cutoff)[:BATCH]:
        services.fail_workspace(workspace, reason=f"No server had room within {minutes} minutes.")
    waiting = Workspace.objects.select_related("organization").filter(status=S.PENDING).order_by("status_changed_at")
    return sum(services.place_workspace(workspace) is not None for workspace in waiting[:BATCH])


def sample_resource_usage() -> int:
    """One CPU/memory sample per running workspace; Docker calls run in parallel (each `stats`
    call waits about a second for the engine's second reading)."""
    placements = list(
        Placement.objects.select_related("server")
        .filter(workspace__status=S.RUNNING, server__status=ServerStatus.ACTIVE)
    )

    def sample(placement: Placement):
        try:
            return placement, provisioning.container_usage(placement.server, f"berth-{placement.workspace_id}")
        except RemoteError as exc:
            logger.warning("usage of %s: %s", placement.workspace_id, exc)
            return placement, None
        finally:
            connection.close()  # this thread's credential lookups borrowed one from the pool

    with ThreadPoolExecutor(max_workers=SAMPLING_THREADS) as pool:
        results = list(pool.map(sample, placements))
    now = timezone.now()
    rows = [
        ResourceUsage(workspace_id=placement.workspace_id, server_id=placement.server_id, sampled_at=now,
                      cpu_percent=usage[0], memory_bytes=usage[1])
        for placement, usage in results if usage is not None
    ]
    ResourceUsage.objects.bulk_create(rows)
    return len(rows)


def purge_expired_data() -> int:
    """Remove the data folders of deleted workspaces whose retention ran out (retried next run
    when the server cannot be reached)."""
    expired = Workspace.objects.filter(status=S.DELETED, data_purge_after__lte=timezone.now())
    purged = 0
    for workspace in expired[:BATCH]:
        placement = Placement.objects.select_related("server").filter(workspace=workspace).first()
        if placement is not None:
            try:
                provisioning.remove_folder(placement.server, placement.data_path)
            except RemoteError as exc:
                logger.warning("purge %s: %s", workspace.pk, exc)
                continue
        Workspace.objects.filter(pk=workspace.pk).update(data_purge_after=None)
        purged += 1
    return purged
