"""Celery entry points. Each takes a workspace id, reloads it, returns early when the status says the
work is done or belongs to someone else, and is safe to run twice (provisioning finds what a crashed
run left). RemoteError.permanent fails the workspace at once; other errors retry with backoff and
fail it when retries run out. The beat tasks' logic lives in `workspaces.upkeep`."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError

from config.celery import run_again_later
from infrastructure import placement as placement_service
from infrastructure.choices import ServerStatus
from infrastructure.models import Placement
from infrastructure.remote import RemoteError

from . import provisioning, services, upkeep, validation
from .choices import WorkspaceStatus as S
from .models import Workspace
from .state import report_progress, transition

logger = logging.getLogger(__name__)
MAX_RETRIES = 4


def _load(workspace_id: str, expected: str, *, with_placement: bool = True) -> Workspace | None:
    """The workspace in `expected`, with what a task reads of it (organization, image and, unless the
    task is about to decide the placement itself, its placement and server) in one query."""
    related = ["organization", "image"] + (["placement__server"] if with_placement else [])
    workspace = Workspace.objects.select_related(*related).filter(pk=workspace_id).first()
    return workspace if workspace is not None and workspace.status == expected else None


def _retry_or_fail(task, workspace: Workspace, exc: RemoteError) -> None:
    if exc.permanent or task.request.retries >= task.max_retries:
        services.fail_workspace(workspace, reason=str(exc))
        return
    report_progress(workspace, f"Retrying after: {exc}")
    _retry_later(task, exc)


def _retry_later(task, exc: Exception) -> None:
    """Run the task again after an exponential backoff: through the broker, or without one (thread
    or eager mode) in this process."""
    countdown = min(settings.BERTH_TASK_RETRY_DELAY * 2**task.request.retries, 120)
    if task.request.is_eager:
        run_again_later(task, countdown=countdown)
        return
    raise task.retry(exc=exc, countdown=countdown)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def place(self, workspace_id: str) -> None:
    """Place, then provision in the same run: one broker round trip per new workspace, not two.
    A redelivered or retried run finds the workspace already in `provisioning` and carries on;
    a run that lost the placement race to another worker leaves the bring-up to that worker."""
    workspace = _load(workspace_id, S.PENDING, with_placement=False)  # placement reads it in its transaction
    if workspace is None:
        _run_bring_up(self, workspace_id, S.PROVISIONING)
        return
    placement = services.decide_placement(workspace)
    if placement is not None:  # the instance is now `provisioning`, the placement holds its server
        _bring_up_loaded(self, workspace, placement, S.PROVISIONING)


def _bring_up(workspace: Workspace, placement: Placement) -> str:
    """Provision (folder, clone, container) or, for a start, only what is missing."""
    scheme = ""
    if workspace.repo_url and workspace.status == S.PROVISIONING:
        try:  # checked again: the allowed hosts may have changed since the workspace was created
            scheme = validation.validate_repo_url(
                workspace.repo_url, allowed_hosts=settings.GIT_ALLOWED_HOSTS, allow_ssh=settings.GIT_ALLOW_SSH
            )
        except ValidationError as exc:
            raise RemoteError(f"repository refused: {' '.join(exc.messages)}", permanent=True) from exc
    return provisioning.bring_up(
        placement.server, workspace, placement.data_path, new=workspace.status == S.PROVISIONING,
        clone_scheme=scheme, progress=lambda line: report_progress(workspace, line),
    )


def _run_bring_up(task, workspace_id: str, expected: str) -> None:
    workspace = _load(workspace_id, expected)
    if workspace is None:
        return
    placement = placement_service.placement_of(workspace)
    if placement is None:  # only a hand-edited database gets here: say so instead of crashing the task
        services.fail_workspace(workspace, reason="It has no server placement: delete it, or retry to place it again.")
        return
    _bring_up_loaded(task, workspace, placement, expected)


def _bring_up_loaded(task, workspace: Workspace, placement: Placement, expected: str) -> None:
    try:
        container_id = _bring_up(workspace, placement)
    except RemoteError as exc:
        _retry_or_fail(task, workspace, exc)
        return
    # The container id first and on its own: a crash before the move leaves the status for the re-run.
    placement_service.record_container(placement, container_id, workspace_status=expected)
    services.finish(workspace, expected, S.RUNNING, message="Running")


@shared_task(bind=True, max_retries=MAX_RETRIES)
def provision(self, workspace_id: str) -> None:
    _run_bring_up(self, workspace_id, S.PROVISIONING)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def start(self, workspace_id: str) -> None:
    """Start on the server holding the data; the container is recreated if someone removed it."""
    _run_bring_up(self, workspace_id, S.STARTING)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def stop(self, workspace_id: str, restart: bool = False) -> None:
    workspace = _load(workspace_id, S.STOPPING)
    if workspace is None:
        return
    placement = placement_service.placement_of(workspace)
    try:
        if placement is not None:
            provisioning.stop_container(placement.server, workspace.container_name)
    except RemoteError as exc:
        _retry_or_fail(self, workspace, exc)
        return
    if services.finish(workspace, S.STOPPING, S.STOPPED, message="Stopped") and restart:
        transition(workspace, S.STARTING, message="Restarting")
        start.delay(str(workspace.pk))


@shared_task(bind=True, max_retries=MAX_RETRIES)
def delete(self, workspace_id: str) -> None:
    """Remove the container and (without retention) the folder. A server that is offline or keeps
    failing does not block the delete: what stays there is listed as an OrphanContainer."""
    workspace = _load(workspace_id, S.DELETING)
    if workspace is None:
        return
    placement = placement_service.placement_of(workspace)
    keep_data = bool(workspace.organization.deleted_data_retention)
    if placement is not None:
        server = placement.server
        if server.status not in {ServerStatus.ACTIVE, ServerStatus.DRAINING}:
            placement_service.record_leftovers(
                placement, note=f"server was {server.status} when the workspace was deleted", folder=not keep_data
            )
        else:
            try:
                provisioning.remove_containers(
                    server, [provisioning.clone_container_name(workspace), workspace.container_name]
                )
                if not keep_data:
                    provisioning.remove_folder(server, placement.data_path)
            except RemoteError as exc:
                if not exc.permanent and self.request.retries < self.max_retries:
                    _retry_later(self, exc)
                    return
                placement_service.record_leftovers(placement, note=f"cleanup failed: {exc}", folder=not keep_data)
    services.finish_delete(workspace, keep_data=keep_data)


@shared_task
def reconcile_all() -> None:
    for server_id in upkeep.active_server_ids():
        reconcile_server.delay(server_id)


@shared_task
def reconcile_server(server_id: int) -> None:
    upkeep.reconcile_server(server_id)


@shared_task
def fail_hung_workspaces() -> int:
    return upkeep.fail_hung_workspaces()


@shared_task
def stop_idle_workspaces() -> int:
    return upkeep.stop_idle_workspaces()


@shared_task
def place_pending_workspaces() -> int:
    return upkeep.place_pending_workspaces()


@shared_task
def sample_resource_usage() -> int:
    return upkeep.sample_resource_usage()


@shared_task
def purge_expired_data() -> int:
    return upkeep.purge_expired_data()
