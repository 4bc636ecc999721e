from django.contrib.admin import AdminSite

import audit.services as audit

from .dashboard import dashboard_context


class BerthAdminSite(AdminSite):
    """The operator console: the Django admin with a dashboard on its index page."""

    site_header = "Berth operator console"
    site_title = "Berth console"
    index_title = "Dashboard"

    def index(self, request, extra_context=None):
        return super().index(request, extra_context={"dashboard": dashboard_context(), **(extra_context or {})})


class ReadOnlyAdminMixin:
    """Console pages (and inlines) that list and show but never add, edit or delete, superusers included. Rows
    such as audit events and token digests are written only by their services."""

    def has_add_permission(self, request, obj=None) -> bool:  # obj: inlines pass the parent
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditedAdminMixin:
    """Console edits land in the audit log like any other change: one event per saved or deleted
    row (inline rows included), in the admin's own transaction. Only the names of the changed
    fields are hashed into the event, never their values (a password form is a form too)."""

    def _audit(self, request, obj, verb: str, fields=()) -> None:
        audit.record(actor=request.user, action=f"{obj._meta.model_name}.{verb}", target=obj,
                     message="in the operator console", change={"fields": sorted(fields)})

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self._audit(request, obj, "change" if change else "create", form.changed_data)

    def delete_model(self, request, obj):
        self._audit(request, obj, "delete")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "delete")
        super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._audit(request, obj, "create")
        for obj, fields in formset.changed_objects:
            self._audit(request, obj, "change", fields)
        for obj in formset.deleted_objects:
            self._audit(request, obj, "delete")
