import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from .choices import IN_FLIGHT, WorkspaceStatus as S

# The whole state machine: anything not listed raises IllegalTransition (tested exhaustively).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PLACING, S.DELETING, S.FAILED}),
    S.PLACING: frozenset({S.PROVISIONING, S.PENDING, S.FAILED}),
    S.PROVISIONING: frozenset({S.RUNNING, S.FAILED}),
    S.RUNNING: frozenset({S.STOPPING, S.DELETING, S.STOPPED, S.FAILED}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED}),
    S.STOPPED: frozenset({S.STARTING, S.DELETING}),
    S.STARTING: frozenset({S.RUNNING, S.FAILED}),
    S.DELETING: frozenset({S.DELETED, S.FAILED}),
    S.DELETED: frozenset(),
    S.FAILED: frozenset({S.PENDING, S.STARTING, S.DELETING}),
}
assert all(S.FAILED in TRANSITIONS[state] for state in IN_FLIGHT)

workspace_name_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z",  # \Z: "$" would accept a trailing newline
    "Use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)


class IllegalTransition(Exception):
    def __init__(self, workspace_id, old: str, new: str):
        super().__init__(f"workspace {workspace_id}: {old} -> {new} is not a legal transition")
        self.old, self.new = old, new


class TransitionConflict(Exception):
    """Another worker moved the workspace first (compare-and-set lost)."""

    def __init__(self, workspace_id, expected: str, new: str):
        super().__init__(f"workspace {workspace_id} is no longer {expected}; not moved to {new}")
        self.expected, self.new = expected, new


class WorkspaceImage(models.Model):
    """An image users may choose, curated by operators, with its default and maximum resources."""

    name = models.CharField(max_length=100, unique=True, help_text="What users see, e.g. 'Debian 12 with git'.")
    reference = models.CharField(max_length=200, help_text="Docker image reference on the servers, e.g. berth/workspace:bookworm.")
    description = models.CharField(max_length=300, blank=True)
    default_cpu = models.DecimalField(max_digits=5, decimal_places=2, default=1, validators=[MinValueValidator(0.1)])
    default_memory_mb = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(64)])
    default_disk_mb = models.PositiveIntegerField(default=10240)
    max_cpu = models.DecimalField(max_digits=5, decimal_places=2, default=4, validators=[MinValueValidator(0.1)])
    max_memory_mb = models.PositiveIntegerField(default=8192, validators=[MinValueValidator(64)])
    is_active = models.BooleanField(default=True, help_text="Offered to users for new workspaces.")
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_image")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.default_cpu is not None and self.max_cpu is not None and self.default_cpu > self.max_cpu:
            raise ValidationError({"default_cpu": "The default CPU is above the maximum."})
        if self.default_memory_mb and self.max_memory_mb and self.default_memory_mb > self.max_memory_mb:
            raise ValidationError({"default_memory_mb": "The default memory is above the maximum."})


class WorkspaceQuerySet(models.QuerySet):
    def visible_to(self, user) -> "WorkspaceQuerySet":
        """Owners, admins and auditors see their organization's workspaces; members see their own."""
        from tenants.choices import AUDIT_READING_ROLES

        if not user.is_authenticated:
            return self.none()
        return self.filter(
            models.Q(organization__memberships__user=user, organization__memberships__role__in=AUDIT_READING_ROLES)
            | models.Q(owner=user, organization__memberships__user=user)
        ).distinct()

    def live(self) -> "WorkspaceQuerySet":
        return self.exclude(status=S.DELETED)


class Workspace(models.Model):
    """A developer's container workspace. Its status moves only through `workspaces.services`
    (compare-and-set against TRANSITIONS)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="workspaces")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspaces")
    name = models.CharField(max_length=63, validators=[workspace_name_validator])
    repo_url = models.CharField(max_length=500, blank=True, help_text="Empty for an empty workspace.")
    branch = models.CharField(max_length=200, blank=True)
    image = models.ForeignKey(WorkspaceImage, on_delete=models.PROTECT, related_name="workspaces")
    cpu = models.DecimalField(max_digits=5, decimal_places=2, validators=[MinValueValidator(0.1)])
    memory_mb = models.PositiveIntegerField(validators=[MinValueValidator(64)])
    disk_mb = models.PositiveIntegerField(default=10240)
    region = models.CharField(max_length=50, blank=True, help_text="Preferred region, if any.")
    status = models.CharField(max_length=16, choices=S.choices, default=S.PENDING, db_index=True)
    status_message = models.CharField(max_length=500, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now, help_text="Last progress; the hang detector reads it.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    data_purge_after = models.DateTimeField(
        null=True, blank=True,
        help_text="A deleted workspace's data folder is kept until then (organization retention), then purged.",
    )

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "owner", "name"],
                condition=~models.Q(status="deleted"),
                name="unique_live_workspace_name",
            )
        ]
        indexes = [
            # hang detector and placement queue: in-flight/pending rows by age
            models.Index(fields=["status", "status_changed_at"], name="workspace_status_age"),
        ]

    def __str__(self) -> str:
        return f"{self.owner.get_username()}/{self.name}" if self.owner_id else self.name

    @property
    def container_name(self) -> str:
        return f"berth-{self.id}"

    @staticmethod
    def check_transition(workspace_id, old: str, new: str) -> None:
        if new not in TRANSITIONS.get(old, frozenset()):
            raise IllegalTransition(workspace_id, old, new)
