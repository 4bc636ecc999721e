import re
import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from . import crypto
from .choices import CredentialKind, DockerEndpoint, PlacementStrategy, ServerStatus
from .validators import validate_labels, validate_storage_root


S = ServerStatus

# Legal server status changes; anything else raises ServerTransitionConflict.
SERVER_TRANSITIONS = {
    S.UNVERIFIED: {S.ACTIVE, S.HOST_KEY_MISMATCH, S.RETIRED},
    S.ACTIVE: {S.DRAINING, S.OFFLINE, S.HOST_KEY_MISMATCH, S.RETIRED},
    S.DRAINING: {S.ACTIVE, S.HOST_KEY_MISMATCH, S.RETIRED},
    S.OFFLINE: {S.ACTIVE, S.DRAINING, S.HOST_KEY_MISMATCH, S.RETIRED},
    # Cleared only by an operator re-trusting a key, which puts the server back through a test.
    S.HOST_KEY_MISMATCH: {S.UNVERIFIED, S.RETIRED},
    S.RETIRED: {S.UNVERIFIED},
}

_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$")
CERT_WARNING_DAYS = 30


class ServerConflict(Exception):
    """The server's state does not allow this operation (an API 409, an admin error message)."""


class ServerTransitionConflict(ServerConflict):
    """The server is not in a status that allows this change (or another worker changed it first)."""

    def __init__(self, server, old: str, new: str):
        super().__init__(
            f"Server {server} is {ServerStatus(old).label.lower()}; it cannot become {ServerStatus(new).label.lower()}."
        )


class Server(models.Model):
    """A machine that runs workspace containers. It takes workspaces only once its identity is proven
    (pinned SSH host key, mTLS for a TCP Docker endpoint) and it is `active`."""

    name = models.SlugField(max_length=63, unique=True)
    host = models.CharField(max_length=253, help_text="DNS name or IP address Berth connects to.")
    ssh_port = models.PositiveIntegerField(default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    ssh_user = models.CharField(max_length=32, default="root")
    docker_endpoint = models.CharField(max_length=8, choices=DockerEndpoint.choices, default=DockerEndpoint.SSH)
    docker_url = models.CharField(
        max_length=200, blank=True, help_text="For TLS: tcp://host:2376. Unused for SSH and local endpoints."
    )
    storage_root = models.CharField(
        max_length=255,
        validators=[validate_storage_root],
        help_text="Absolute folder on this server where workspace folders are created.",
    )
    region = models.CharField(max_length=50, blank=True, db_index=True)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    max_workspaces = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    cpu_cores = models.DecimalField(max_digits=6, decimal_places=2, default=4,
                                    validators=[MinValueValidator(Decimal("0.1"))])
    memory_mb = models.PositiveIntegerField(default=8192, validators=[MinValueValidator(64)])
    status = models.CharField(max_length=20, choices=ServerStatus.choices, default=ServerStatus.UNVERIFIED, db_index=True)
    status_message = models.CharField(max_length=500, blank=True)

    # Identity: the pinned host key (type + base64 blob), as in a known_hosts line.
    host_key_type = models.CharField(max_length=40, blank=True)
    host_key = models.TextField(blank=True)
    host_key_fingerprint = models.CharField(max_length=80, blank=True, help_text="SHA256:… of the pinned host key.")
    expected_host_key_fingerprint = models.CharField(
        max_length=80, blank=True, help_text="Optional: the fingerprint the operator checked out of band."
    )
    offered_host_key_type = models.CharField(max_length=40, blank=True)
    offered_host_key = models.TextField(blank=True, help_text="The key the server last presented, awaiting trust.")
    offered_host_key_fingerprint = models.CharField(max_length=80, blank=True)

    # Reservations, changed only under a row lock by placement (never overcommit).
    reserved_workspaces = models.PositiveIntegerField(default=0)
    reserved_cpu = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    reserved_memory_mb = models.PositiveIntegerField(default=0)

    # Health.
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_test = models.JSONField(default=list, blank=True, help_text="Steps of the last connection test.")
    last_test_at = models.DateTimeField(null=True, blank=True)
    discovered = models.JSONField(default=dict, blank=True, help_text="CPU, memory, disk and Docker version seen.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.host and not _HOST_RE.match(self.host):
            errors["host"] = "Enter a DNS name or an IP address (no scheme, user or path)."
        if self.docker_endpoint == DockerEndpoint.TLS:
            parts = urlsplit(self.docker_url or "")
            if parts.scheme != "tcp" or not parts.hostname or parts.path not in ("", "/") or parts.username:
                errors["docker_url"] = "For TLS give the daemon's mTLS address as tcp://host:2376."
        elif self.docker_url:
            errors["docker_url"] = (
                "Plain tcp:// (or any URL) without TLS is refused: leave docker_url empty for SSH or the local "
                "engine, or choose the tls endpoint with a docker_tls bundle."
            )
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def check_transition(server, old: str, new: str) -> None:
        if new not in SERVER_TRANSITIONS.get(old, ()):
            raise ServerTransitionConflict(server, old, new)

    @property
    def takes_workspaces(self) -> bool:
        return self.status == ServerStatus.ACTIVE

    @property
    def has_pinned_host_key(self) -> bool:
        return bool(self.host_key)

    @property
    def is_local(self) -> bool:
        return self.docker_endpoint == DockerEndpoint.LOCAL


class ServerCredential(models.Model):
    """A server's secret: SSH private key, mTLS bundle or agent API key. Secrets are encrypted with
    the row's UUID as associated data (set before insert, so one save suffices) and never shown."""

    ENCRYPTED_FIELDS = ("private_key", "passphrase", "client_key")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=16, choices=CredentialKind.choices)
    encrypted_private_key = models.TextField(blank=True, editable=False)
    encrypted_passphrase = models.TextField(blank=True, editable=False)
    encrypted_client_key = models.TextField(blank=True, editable=False)
    public_key = models.TextField(blank=True, help_text="The public half (authorized_keys line), safe to show.")
    ca_cert = models.TextField(blank=True, help_text="PEM CA certificate that signs the Docker daemon's certificate.")
    client_cert = models.TextField(blank=True, help_text="PEM client certificate presented to the Docker daemon.")
    api_key_digest = models.CharField(max_length=64, blank=True, editable=False)
    fingerprint = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Certificate expiry, when there is one.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["server", "kind"], name="one_credential_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.server} ({self.fingerprint or 'no fingerprint'})"

    def _aad(self, field: str) -> bytes:
        return crypto.associated_data(self._meta.db_table, self.pk, field)

    def set_secret(self, field: str, value: str) -> None:
        assert field in self.ENCRYPTED_FIELDS
        setattr(self, f"encrypted_{field}", crypto.encrypt(value, aad=self._aad(field)) if value else "")

    def get_secret(self, field: str) -> str:
        assert field in self.ENCRYPTED_FIELDS
        stored = getattr(self, f"encrypted_{field}")
        return crypto.decrypt(stored, aad=self._aad(field)) if stored else ""

    def secret_is_set(self, field: str) -> bool:
        return bool(getattr(self, f"encrypted_{field}"))

    @property
    def expires_soon(self) -> bool:
        """Shown as a warning: the certificate has less than CERT_WARNING_DAYS left."""
        return self.expires_at is not None and self.expires_at - timezone.now() < timedelta(days=CERT_WARNING_DAYS)


class PlacementPolicy(models.Model):
    """How a server is chosen for a new workspace. One policy is the global default."""

    name = models.CharField(max_length=100, unique=True)
    strategy = models.CharField(max_length=16, choices=PlacementStrategy.choices, default=PlacementStrategy.LEAST_LOADED)
    preferred_regions = models.JSONField(default=list, blank=True, help_text='Regions tried first, in order: ["eu", "us"].')
    label_selector = models.JSONField(default=dict, blank=True, validators=[validate_labels],
                                      help_text="Only servers whose labels include all of these.")
    is_default = models.BooleanField(default=False, help_text="Used by organizations without a policy of their own.")
    round_robin_cursor = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "placement policies"
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_policy")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_strategy_display()})"


class Placement(models.Model):
    """Where a workspace lives: its server, its container and its data folder, with the decision's reason."""

    workspace = models.OneToOneField("workspaces.Workspace", on_delete=models.CASCADE, related_name="placement")
    server = models.ForeignKey(Server, on_delete=models.PROTECT, related_name="placements")
    container_id = models.CharField(max_length=80, blank=True)
    data_path = models.CharField(max_length=400)
    reason = models.CharField(max_length=300, blank=True)
    reserved_cpu = models.DecimalField(max_digits=6, decimal_places=2)
    reserved_memory_mb = models.PositiveIntegerField()
    released = models.BooleanField(default=False, help_text="Reservation returned to the server.")
    placed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.workspace_id} on {self.server}"


class ResourceUsage(models.Model):
    """One sample of a running workspace's CPU, memory and disk use."""

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="usage_samples")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="usage_samples")
    sampled_at = models.DateTimeField(db_index=True)
    cpu_percent = models.FloatField()
    memory_bytes = models.PositiveBigIntegerField()
    disk_bytes = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-sampled_at"]
        # serves "latest samples per server" on the load page
        indexes = [models.Index(fields=["server", "-sampled_at"], name="usage_server_recent")]


class OrphanContainer(models.Model):
    """A container with Berth labels that no live workspace claims, or a leftover data folder,
    found by the reconciler or left by a forced delete, for an operator to clean up."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="orphans")
    container_id = models.CharField(max_length=80, blank=True)
    container_name = models.CharField(max_length=200, blank=True)
    data_path = models.CharField(max_length=400, blank=True)
    workspace_id = models.UUIDField(null=True, blank=True)
    found_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.container_name or self.data_path} on {self.server}"
