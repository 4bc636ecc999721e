from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count

from config.admin_site import AuditedAdminMixin, ReadOnlyAdminMixin

from . import services
from .models import ApiToken, Membership, Organization, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class UserMembershipInline(MembershipInline):
    raw_id_fields = ["organization"]


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_superuser", "organization_count", "last_login"]
    inlines = [UserMembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(organization_count=Count("memberships"))

    def get_readonly_fields(self, request, obj=None):
        """Only superusers grant superuser or staff status and permissions: staff allowed to change
        users would otherwise make themselves superuser, and so reach every server's keys."""
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return [*fields, "is_superuser", "is_staff", "groups", "user_permissions"]

    @admin.display(description="Organizations", ordering="organization_count")
    def organization_count(self, obj) -> int:
        return obj.organization_count


@admin.register(Organization)
class OrganizationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "workspace_count", "idle_timeout", "placement_policy", "created_at"]
    list_select_related = ["placement_policy"]
    list_filter = ["placement_policy"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            member_count=Count("memberships", distinct=True), workspace_count=Count("workspaces", distinct=True)
        )

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj) -> int:
        return obj.member_count

    @admin.display(description="Workspaces", ordering="workspace_count")
    def workspace_count(self, obj) -> int:
        return obj.workspace_count


@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_select_related = ["user", "organization"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name", "organization__slug"]
    raw_id_fields = ["user", "organization"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Tokens are issued by their owner (page, API or `issue_token`), so the console only lists and
    revokes them. The digest is never shown: it would let anyone with console access test guesses."""

    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("tenants.change_apitoken")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke_api_token(token, actor=request.user)
        messages.success(request, "The selected tokens are revoked.")
