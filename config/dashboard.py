"""The operator console's front page: what needs attention, in a handful of aggregate queries."""

from datetime import timedelta

from django.db.models import Count, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit.models import AuditEvent
from infrastructure.choices import ServerStatus
from infrastructure.models import Server, ServerCredential
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace

CREDENTIAL_WARNING = timedelta(days=30)


def dashboard_context() -> dict:
    """Servers by status with capacity used/total, workspaces by status, credentials expiring within
    30 days (expired ones included) and the latest audit events."""
    servers_by_status = (
        Server.objects.values("status")
        .annotate(
            servers=Count("id"),
            workspaces_used=Sum("reserved_workspaces"),
            workspaces_total=Sum("max_workspaces"),
            cpu_used=Sum("reserved_cpu"),
            cpu_total=Sum("cpu_cores"),
            memory_used_mb=Sum("reserved_memory_mb"),
            memory_total_mb=Sum("memory_mb"),
        )
        .order_by("status")
    )
    workspaces_by_status = Workspace.objects.values("status").annotate(count=Count("id")).order_by("status")
    expiring = (
        ServerCredential.objects.filter(expires_at__lt=timezone.now() + CREDENTIAL_WARNING)
        .select_related("server")
        .order_by("expires_at")
    )
    return {
        "servers_by_status": [{**row, "label": _label(ServerStatus, row["status"])} for row in servers_by_status],
        "workspaces_by_status": [
            {**row, "label": _label(WorkspaceStatus, row["status"])} for row in workspaces_by_status
        ],
        "expiring_credentials": list(expiring[:20]),
        "latest_audit_events": list(AuditEvent.objects.select_related("organization")[:10]),
        "now": timezone.now(),
        "server_list_url": _admin_url("admin:infrastructure_server_changelist"),
    }


def _admin_url(name: str) -> str:
    """The page's URL, or "" while its admin is not registered (each area registers its own)."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


def _label(choices, value: str) -> str:
    return choices(value).label if value in choices.values else value
