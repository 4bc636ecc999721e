from django.contrib import admin

from config.admin_site import ReadOnlyAdminMixin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included: an edit here would break the hash chain, and the
    log is only worth something if nobody can rewrite it through the console."""

    list_display = ["created_at", "actor_name", "organization", "action", "target_label", "outcome", "source_ip"]
    list_select_related = ["organization"]
    list_filter = ["outcome", "organization", "target_type"]
    search_fields = ["action", "actor_name", "target_label", "target_id", "request_id", "message"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) on a long log is slow; the paginator still works
