from datetime import timedelta

from rest_framework import serializers

from config.api import RejectUnknownFieldsMixin, StrictModelSerializer
from tenants.models import ApiToken, Membership, Organization


# What an organization may take from the shared servers is the operators' to decide (in the console),
# not its own owners': otherwise a limit would bind only the members.
SET_BY_OPERATORS = ("placement_policy", "max_workspace_cpu", "max_workspace_memory_mb", "max_workspaces_per_user")


class OrganizationSerializer(StrictModelSerializer):
    """Owners and admins change the idle timeout and the retention of deleted workspaces' data."""

    role = serializers.CharField(read_only=True, help_text="Your role in this organization.")
    read_only_reasons = {name: "Set by Berth's operators in the console." for name in SET_BY_OPERATORS}

    class Meta:
        model = Organization
        fields = [
            "id", "name", "slug", "role", "idle_timeout", "placement_policy", "deleted_data_retention",
            "max_workspace_cpu", "max_workspace_memory_mb", "max_workspaces_per_user", "created_at",
        ]
        read_only_fields = ["id", "name", "slug", "created_at", *SET_BY_OPERATORS]


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organization", "user", "username", "role", "created_at"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its key or digest, only the prefix to recognise it by."""

    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "is_usable"]
        read_only_fields = fields


class ApiTokenCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True,
        help_text="Days until the token stops working. Omit or null for a token that does not expire.",
    )

    def expires_in(self) -> timedelta | None:
        days = self.validated_data.get("expires_in_days")
        return timedelta(days=days) if days else None


class IssuedApiTokenSerializer(ApiTokenSerializer):
    """The creation response: the one and only time the raw key is shown."""

    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields
