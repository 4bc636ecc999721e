"""Operator console for workspaces: where each runs and why, and bulk lifecycle actions that call
the same services as the API (a refused action is reported per workspace, never half-applied)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.utils.html import format_html

from infrastructure.models import Placement, Server

from . import services
from .models import Workspace, WorkspaceImage


@admin.register(WorkspaceImage)
class WorkspaceImageAdmin(admin.ModelAdmin):
    list_display = ["name", "reference", "default_cpu", "default_memory_mb", "max_cpu", "max_memory_mb",
                    "is_active", "is_default"]
    list_filter = ["is_active", "is_default"]
    search_fields = ["name", "reference"]


class ServerFilter(admin.SimpleListFilter):
    title = "server"
    parameter_name = "server"

    def lookups(self, request, model_admin):
        return [(server.pk, server.name) for server in Server.objects.only("pk", "name")]

    def queryset(self, request, queryset):
        return queryset.filter(placement__server_id=self.value()) if self.value() else queryset


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "status_badge", "owner", "organization", "server", "image", "last_activity_at",
                    "placement_reason"]
    list_filter = ["status", "organization", ServerFilter, "image"]
    search_fields = ["name", "owner__username", "organization__slug", "id"]
    list_select_related = ["owner", "organization", "image"]
    raw_id_fields = ["owner", "organization"]
    readonly_fields = ["id", "organization", "owner", "name", "repo_url", "branch", "image", "cpu", "memory_mb",
                       "disk_mb", "region", "status", "status_message", "failure_reason", "status_changed_at",
                       "created_at", "started_at", "stopped_at", "last_activity_at", "deleted_at",
                       "data_purge_after", "server", "placement_reason"]
    actions = ["stop_selected", "start_selected", "restart_selected", "retry_selected", "delete_selected_workspaces"]

    def get_queryset(self, request):
        placements = Placement.objects.select_related("server")
        return super().get_queryset(request).prefetch_related(Prefetch("placement", queryset=placements))

    def has_add_permission(self, request):
        return False  # workspaces are created by their owners (API, pages), never typed in here

    def has_delete_permission(self, request, obj=None):
        return False  # deleting a row would leave its container behind: use the delete action

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="status", ordering="status")
    def status_badge(self, workspace: Workspace):
        return format_html('<span class="status status-{}" title="{}">{}</span>', workspace.status,
                           workspace.failure_reason or workspace.status_message, workspace.get_status_display())

    @admin.display(description="server")
    def server(self, workspace: Workspace):
        placement = getattr(workspace, "placement", None)
        return placement.server.name if placement else "-"

    @admin.display(description="placement reason")
    def placement_reason(self, workspace: Workspace):
        placement = getattr(workspace, "placement", None)
        return placement.reason if placement else "-"

    def _bulk(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for workspace in queryset:
            try:
                service(workspace, actor=request.user)
                done += 1
            except (services.WorkspaceConflict, PermissionDenied) as exc:
                refused.append(f"{workspace}: {exc}")
        if done:
            self.message_user(request, f"{verb} {done} workspace(s).", messages.SUCCESS)
        for line in refused[:20]:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Stop selected workspaces")
    def stop_selected(self, request, queryset):
        self._bulk(request, queryset, services.stop_workspace, "Stopping")

    @admin.action(description="Start selected workspaces")
    def start_selected(self, request, queryset):
        self._bulk(request, queryset, services.start_workspace, "Starting")

    @admin.action(description="Restart selected workspaces")
    def restart_selected(self, request, queryset):
        self._bulk(request, queryset, services.restart_workspace, "Restarting")

    @admin.action(description="Retry selected failed workspaces")
    def retry_selected(self, request, queryset):
        self._bulk(request, queryset, services.retry_workspace, "Retrying")

    @admin.action(description="Delete selected workspaces (container and data)")
    def delete_selected_workspaces(self, request, queryset):
        self._bulk(request, queryset, services.delete_workspace, "Deleting")
