"""Every state-changing operation on a workspace. Views, pages, admin actions and tasks call these.

User-facing services (create/start/stop/restart/delete/retry) check permission, move the state
machine by compare-and-set, write the audit event in the same transaction and enqueue the work on
commit. The `*_done` / `fail_workspace` / `place_workspace` functions are the tasks' half: they
record what a server did.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit.services as audit
from infrastructure import placement as placement_service
from infrastructure.models import Placement
from tenants.choices import MANAGING_ROLES, Role
from tenants.models import Membership, Organization

from . import cache as workspace_cache
from . import tasks, validation
from .choices import WorkspaceStatus as S
from .models import IllegalTransition, TransitionConflict, Workspace, WorkspaceImage
from .state import transition

WAITING_FOR_CAPACITY = "Waiting for capacity"
# Rounds one placement may lose to concurrent ones (each loss means a server filled up meanwhile).
PLACEMENT_ATTEMPTS = 10


class WorkspaceConflict(Exception):
    """The workspace is not in a state that allows this action (the API answers 409)."""


def can_manage(user, workspace: Workspace) -> bool:
    """Its owner (while still a non-auditor member) and the organization's owners and admins.
    Auditors only read; superusers operate through the admin, not as tenants."""
    if not user.is_authenticated:
        return False
    role = Membership.objects.filter(user=user, organization_id=workspace.organization_id).values_list("role", flat=True).first()
    if role in MANAGING_ROLES:
        return True
    return role == Role.MEMBER and workspace.owner_id == user.pk


def _require_manage(actor, workspace: Workspace) -> None:
    if actor is not None and not getattr(actor, "is_superuser", False) and not can_manage(actor, workspace):
        raise PermissionDenied("You may view this workspace but not change it.")


def _move(workspace: Workspace, new: str, *, message: str = "") -> None:
    """transition() for user actions: a refused move is a WorkspaceConflict naming the state."""
    try:
        transition(workspace, new, message=message)
    except (IllegalTransition, TransitionConflict) as exc:
        workspace.refresh_from_db(fields=["status"])
        raise WorkspaceConflict(f"The workspace is {workspace.status}; it cannot go to {new} now.") from exc


def _resources(image: WorkspaceImage, organization: Organization, cpu, memory_mb, errors: dict):
    values = {}
    for field, raw, default, parse, minimum, image_max, org_max, unit in (
        ("cpu", cpu, image.default_cpu, validation.parse_cpu, validation.MIN_CPU, image.max_cpu,
         organization.max_workspace_cpu, " CPU"),
        ("memory_mb", memory_mb, image.default_memory_mb, validation.parse_memory_mb, validation.MIN_MEMORY_MB,
         image.max_memory_mb, organization.max_workspace_memory_mb, " MiB"),
    ):
        try:
            value = parse(default if raw is None or raw == "" else raw)
            validation.check_limit(value, minimum=minimum, image_max=image_max, org_max=org_max, unit=unit)
            values[field] = value
        except ValidationError as exc:
            errors[field] = exc.messages
    return values


def _field_errors(*, name, repo_url, branch, region) -> dict:
    errors = {}
    checks = [
        ("name", name, lambda v: Workspace._meta.get_field("name").run_validators(v) if v else _required()),
        ("repo_url", repo_url, lambda v: validation.validate_repo_url(
            v, allowed_hosts=settings.GIT_ALLOWED_HOSTS, allow_ssh=settings.GIT_ALLOW_SSH)),
        ("branch", branch, validation.validate_branch),
        ("region", region, validation.validate_region),
    ]
    for field, value, check in checks:
        if not isinstance(value, str):
            errors[field] = ["Enter text."]
        elif value or field == "name":
            try:
                check(value)
            except ValidationError as exc:
                errors[field] = exc.messages
    if branch and not repo_url and "branch" not in errors:
        errors["branch"] = ["A branch needs a repository URL."]
    return errors


def _required():
    raise ValidationError("This field is required.")


def _image_for(image, errors: dict) -> WorkspaceImage | None:
    chosen = image if image is not None else WorkspaceImage.objects.filter(is_default=True, is_active=True).first()
    if chosen is None:
        errors["image"] = ["Choose an image: this Berth has no default image."]
    elif not chosen.is_active:
        errors["image"] = ["This image is no longer offered."]
    return chosen


@transaction.atomic(durable=True)
def create_workspace(
    *, organization: Organization, owner, name: str, repo_url: str = "", branch: str = "", image=None,
    cpu=None, memory_mb=None, region: str = "", actor,
) -> Workspace:
    """Check everything, create the workspace in `pending` and queue its placement.

    Raises ValidationError with a dict naming each bad field, PermissionDenied when the actor may
    not create workspaces for `owner` in `organization`."""
    owner_role = Membership.objects.filter(user=owner, organization=organization).values_list("role", flat=True).first()
    if owner_role is None or owner_role == Role.AUDITOR:
        raise PermissionDenied("Only members of the organization (not auditors) may own workspaces.")
    if actor != owner and not (actor and actor.is_superuser) and actor.role_in(organization) not in MANAGING_ROLES:
        raise PermissionDenied("Only the organization's owners and admins create workspaces for someone else.")
    errors = _field_errors(name=name, repo_url=repo_url, branch=branch, region=region)
    chosen_image = _image_for(image, errors)
    resources = _resources(chosen_image, organization, cpu, memory_mb, errors) if chosen_image else {}
    live_names = list(Workspace.objects.live().filter(organization=organization, owner=owner).values_list("name", flat=True))
    if "name" not in errors and name in live_names:
        errors["name"] = [f"You already have a workspace named {name}."]
    if len(live_names) >= organization.max_workspaces_per_user:
        errors.setdefault("name", []).append(
            f"The limit of {organization.max_workspaces_per_user} workspaces per person is reached."
        )
    if errors:
        raise ValidationError(errors)
    workspace = Workspace(
        organization=organization, owner=owner, name=name, repo_url=repo_url, branch=branch, image=chosen_image,
        region=region, status_message="Queued for placement", **resources,
    )
    try:  # no savepoint needed: this transaction is durable, and a clash ends it
        workspace.save()
    except IntegrityError as exc:
        raise ValidationError({"name": [f"You already have a workspace named {name}."]}) from exc
    Workspace.placement.related.set_cached_value(workspace, None)  # known to have none yet: no query to ask
    audit.record(actor=actor, action="workspace.create", target=workspace,
                 change={"name": name, "repo_url": repo_url, "branch": branch, "image": chosen_image.reference})
    workspace_cache.workspace_changed(workspace)
    tasks.place.delay_on_commit(str(workspace.pk))
    return workspace


def place_workspace(workspace: Workspace) -> Placement | None:
    """Reserve a server for a pending workspace and queue its provisioning; None while it waits."""
    placement = decide_placement(workspace)
    if placement is not None:
        tasks.provision.delay_on_commit(str(workspace.pk))
    return placement


def decide_placement(workspace: Workspace) -> Placement | None:
    """The concurrency-critical half of placement: pending -> placing -> provisioning with the
    reservation, all in one transaction whose last statement takes the room on the server.

    A second worker placing the same workspace loses the compare-and-set; a placement that loses a
    server's last room to a concurrent one is rolled back and decided again; a workspace that finds
    no room rolls back to `pending` with a "waiting for capacity" message, its status_changed_at
    untouched so that the placement timeout counts from when it started waiting."""
    try:
        for _attempt in range(PLACEMENT_ATTEMPTS):
            try:
                return _place_once(workspace)
            except _RoomTaken:
                workspace.refresh_from_db()  # also forgets the rolled-back Placement it had cached
        raise _NoRoom("the servers chosen filled up while it was being placed")
    except _NoRoom as waiting:
        message = f"{WAITING_FOR_CAPACITY}: {waiting}"[:500]
        Workspace.objects.filter(pk=workspace.pk, status=S.PENDING).update(status_message=message)
        workspace.refresh_from_db()
        return None
    except (TransitionConflict, IllegalTransition):
        return None


@transaction.atomic
def _place_once(workspace: Workspace) -> Placement:
    transition(workspace, S.PLACING, message="Choosing a server")
    reservation, reason = placement_service.reserve(workspace)
    if reservation is None:
        raise _NoRoom(reason)
    placement = reservation.placement
    transition(workspace, S.PROVISIONING, message=f"Placed on {placement.server.name}")
    if not placement_service.take_room(reservation):
        raise _RoomTaken
    return placement


class _RoomTaken(Exception):
    pass


class _NoRoom(Exception):
    pass


def fail_workspace(workspace: Workspace, *, reason: str, actor=None) -> bool:
    """Move to failed with the reason and give the reservation back. False if it already moved on."""
    try:
        with transaction.atomic():
            transition(workspace, S.FAILED, reason=reason, message="Failed")
            _release(workspace)
            audit.record(actor=actor, action="workspace.fail", target=workspace, outcome="failure", message=reason)
    except (TransitionConflict, IllegalTransition):
        return False
    return True


def _release(workspace: Workspace) -> None:
    placement = Placement.objects.filter(workspace=workspace).first()
    if placement is not None:
        placement_service.release(placement)


def finish(workspace: Workspace, expected: str, new: str, *, message: str = "") -> bool:
    """A task's work is done: move expected -> new (False when someone moved it meanwhile)."""
    if workspace.status != expected:
        return False
    try:
        transition(workspace, new, message=message)
    except (TransitionConflict, IllegalTransition):
        return False
    return True


def _perform(workspace: Workspace, *, actor, new: str, message: str, action: str, task, **task_kwargs) -> Workspace:
    """The shape of every user action: permission, compare-and-set move, audit, task on commit."""
    _require_manage(actor, workspace)
    _move(workspace, new, message=message)
    audit.record(actor=actor, action=action, target=workspace, message=message)
    task.delay_on_commit(str(workspace.pk), **task_kwargs)
    return workspace


def _require_status(workspace: Workspace, status: str, what: str) -> None:
    if workspace.status != status:
        raise WorkspaceConflict(f"The workspace is {workspace.status}; only a {status} workspace {what}.")


@transaction.atomic(durable=True)
def start_workspace(workspace: Workspace, *, actor) -> Workspace:
    return _perform(workspace, actor=actor, new=S.STARTING, message="Starting", action="workspace.start",
                    task=tasks.start)


@transaction.atomic(durable=True)
def stop_workspace(workspace: Workspace, *, actor, reason: str = "") -> Workspace:
    return _perform(workspace, actor=actor, new=S.STOPPING, message=reason or "Stopping", action="workspace.stop",
                    task=tasks.stop)


@transaction.atomic(durable=True)
def restart_workspace(workspace: Workspace, *, actor) -> Workspace:
    """Stop, then start again on the same server (one task does both)."""
    _require_manage(actor, workspace)
    _require_status(workspace, S.RUNNING, "restarts")
    return _perform(workspace, actor=actor, new=S.STOPPING, message="Restarting", action="workspace.restart",
                    task=tasks.stop, restart=True)


@transaction.atomic(durable=True)
def delete_workspace(workspace: Workspace, *, actor) -> Workspace:
    """Failed, stopped, running and pending workspaces can always be deleted; in-flight ones wait
    for their step (or the hang detector) first."""
    return _perform(workspace, actor=actor, new=S.DELETING, message="Deleting", action="workspace.delete",
                    task=tasks.delete)


@transaction.atomic(durable=True)
def retry_workspace(workspace: Workspace, *, actor) -> Workspace:
    """A failed workspace goes back to pending: placed again (on its old server when that can
    take it, keeping its data), then provisioned, which reuses whatever already exists."""
    _require_manage(actor, workspace)
    _require_status(workspace, S.FAILED, "can be retried")
    return _perform(workspace, actor=actor, new=S.PENDING, message="Queued for placement", action="workspace.retry",
                    task=tasks.place)


def finish_delete(workspace: Workspace, *, keep_data: bool) -> bool:
    """The container is gone (or listed as leftover): release the reservation, mark deleted."""
    retention = workspace.organization.deleted_data_retention
    with transaction.atomic():
        if not finish(workspace, S.DELETING, S.DELETED, message="Deleted"):
            return False
        _release(workspace)
        if keep_data and retention:
            Workspace.objects.filter(pk=workspace.pk).update(data_purge_after=timezone.now() + retention)
    return True

