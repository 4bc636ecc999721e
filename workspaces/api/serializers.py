"""Workspace API shapes. Reading shows what a user needs to follow a workspace (server, placement
reason, status message, failure reason); creating takes only the fields a user chooses and hands
them to `services.create_workspace`, which owns every rule."""

from rest_framework import serializers

from config.api import FieldsBuiltOnceMixin, RejectUnknownFieldsMixin
from tenants.models import Organization

from ..models import Workspace, WorkspaceImage


class WorkspaceImageSerializer(FieldsBuiltOnceMixin, serializers.ModelSerializer):
    class Meta:
        model = WorkspaceImage
        fields = ["id", "name", "reference", "description", "default_cpu", "default_memory_mb", "max_cpu",
                  "max_memory_mb", "is_default"]
        read_only_fields = fields


class WorkspaceSerializer(FieldsBuiltOnceMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    image = WorkspaceImageSerializer(read_only=True)
    server = serializers.SerializerMethodField()
    placement_reason = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="workspace-detail")

    class Meta:
        model = Workspace
        fields = ["id", "url", "name", "organization", "owner", "status", "status_message", "failure_reason",
                  "repo_url", "branch", "image", "cpu", "memory_mb", "region", "server", "placement_reason",
                  "created_at", "status_changed_at", "started_at", "stopped_at", "last_activity_at"]
        read_only_fields = fields

    @staticmethod
    def _placement(workspace: Workspace):
        return getattr(workspace, "placement", None)

    def get_server(self, workspace: Workspace) -> str | None:
        placement = self._placement(workspace)
        return placement.server.name if placement is not None else None

    def get_placement_reason(self, workspace: Workspace) -> str:
        placement = self._placement(workspace)
        return placement.reason if placement is not None else ""


class WorkspaceCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The request body of POST /api/v1/workspaces/. `organization` (slug) may be left out by a
    member of exactly one organization."""

    organization = serializers.SlugRelatedField(slug_field="slug", queryset=Organization.objects.none(), required=False)
    name = serializers.CharField(max_length=63, trim_whitespace=False)
    repo_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="", trim_whitespace=False)
    branch = serializers.CharField(max_length=200, required=False, allow_blank=True, default="", trim_whitespace=False)
    image = serializers.PrimaryKeyRelatedField(queryset=WorkspaceImage.objects.filter(is_active=True), required=False)
    cpu = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
    memory_mb = serializers.IntegerField(required=False)
    region = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = self.context["request"].user
        self.fields["organization"].queryset = Organization.objects.visible_to(user)

    def validate(self, attrs):
        if "organization" not in attrs:
            organizations = list(Organization.objects.visible_to(self.context["request"].user)[:2])
            if len(organizations) != 1:
                raise serializers.ValidationError({"organization": ["Say which organization (its slug)."]})
            attrs["organization"] = organizations[0]
        return attrs
