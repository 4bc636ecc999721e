from django.contrib.admin import AdminSite

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
