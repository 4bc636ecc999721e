import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .choices import MANAGING_ROLES, Role

TOKEN_PREFIX = "berth_"
# Bounds of an organization's durations. Its owners set them, and they feed shared machinery: the
# idle sweep computes now() - idle_timeout for every organization in one query (PostgreSQL fails the
# whole query on a timestamp out of range), and a delete adds the retention to now().
MIN_IDLE_TIMEOUT, MAX_IDLE_TIMEOUT = timedelta(minutes=1), timedelta(days=365)
MAX_DATA_RETENTION = timedelta(days=3650)


class User(AbstractUser):
    """A person who signs in. Organizations come through memberships; `is_superuser` operates servers."""

    class Meta:
        db_table = "tenants_user"

    def role_in(self, organization: "Organization") -> str | None:
        membership = self.memberships.filter(organization=organization).first()
        return membership.role if membership else None


class OrganizationQuerySet(models.QuerySet):
    def visible_to(self, user) -> "OrganizationQuerySet":
        """The organizations a user belongs to. Superusers operate servers, not tenants' data."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user).distinct()


class Organization(models.Model):
    """A tenant: people, workspaces and audit events belong to exactly one organization."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True, help_text="Used in URLs and in workspace folder paths.")
    idle_timeout = models.DurationField(
        default=timedelta(hours=2), help_text="A running workspace with no activity for this long is stopped.",
        validators=[MinValueValidator(MIN_IDLE_TIMEOUT), MaxValueValidator(MAX_IDLE_TIMEOUT)],
    )
    placement_policy = models.ForeignKey(
        "infrastructure.PlacementPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="organizations",
        help_text="Empty: the global default policy.",
    )
    deleted_data_retention = models.DurationField(
        null=True,
        blank=True,
        help_text="Keep a deleted workspace's data folder this long before purging it. Empty: remove at once.",
        validators=[MinValueValidator(timedelta(0)), MaxValueValidator(MAX_DATA_RETENTION)],
    )
    max_workspace_cpu = models.DecimalField(
        max_digits=5, decimal_places=2, default=4, validators=[MinValueValidator(Decimal("0.1"))],
        help_text="Largest CPU request a member may make for one workspace.",
    )
    max_workspace_memory_mb = models.PositiveIntegerField(
        default=8192, validators=[MinValueValidator(64)],
        help_text="Largest memory request (MiB) a member may make for one workspace.",
    )
    max_workspaces_per_user = models.PositiveIntegerField(default=10)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet):
    def visible_to(self, user) -> "MembershipQuerySet":
        """Everyone may see who else belongs to their organizations."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(organization__memberships__user=user)


class Membership(models.Model):
    """A user's role in one organization; a user may belong to several."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")]
        ordering = ["organization__name"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def manages_organization(self) -> bool:
        return self.role in MANAGING_ROLES


def token_digest(raw_token: str) -> str:
    """HMAC-SHA256 of a token: the database never holds the token itself."""
    return hmac.new(settings.SECRET_KEY.encode(), raw_token.encode(), hashlib.sha256).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ApiTokenQuerySet":
        """A person sees only their own tokens, superusers included (operators revoke in the admin)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def usable(self) -> "ApiTokenQuerySet":
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class ApiToken(models.Model):
    """A personal API token. Only its HMAC digest is stored; the raw key is shown once at creation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'CI' or 'laptop'.")
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a token in lists.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate_raw() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
