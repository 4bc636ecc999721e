import hashlib
import json
import secrets

from django.conf import settings
from django.db import models

from .choices import Outcome

GENESIS_HASH = "0" * 64


class AuditEventQuerySet(models.QuerySet):
    def visible_to(self, user) -> "AuditEventQuerySet":
        """Events of the organizations where the user is owner, admin or auditor; superusers see all."""
        from tenants.choices import AUDIT_READING_ROLES

        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(
            organization__memberships__user=user, organization__memberships__role__in=AUDIT_READING_ROLES
        )


class AuditEvent(models.Model):
    """One thing someone (or the system) did. Append-only; each row's hash covers the previous row's,
    so an edit or deletion anywhere breaks the chain (`manage.py verify_audit_chain`). The change
    itself is kept only as a SHA-256 of its canonical JSON, so no secret or file content lands here."""

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, help_text="Copied so the event outlives the user.")
    organization = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True, help_text="Copied so the event outlives the target.")
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    message = models.CharField(max_length=500, blank=True, help_text="A human summary; never secrets or content.")
    change_hash = models.CharField(max_length=64, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "-id"], name="audit_org_recent")]  # the org's log page

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target_label}"

    def chained_fields(self) -> dict:
        return {
            "created_at": self.created_at.isoformat(),
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "organization_id": self.organization_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "target_label": self.target_label,
            "request_id": self.request_id,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "outcome": self.outcome,
            "message": self.message,
            "change_hash": self.change_hash,
            "previous_hash": self.previous_hash,
        }

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.chained_fields()).encode()).hexdigest()

    def hashed_text_around_previous_hash(self) -> tuple[str, str]:
        """The text compute_hash hashes, without previous_hash's value: the text before it and after
        it. Lets the database put in the previous hash it holds and hash the whole, in one statement."""
        placeholder = secrets.token_hex(32)  # 64 random hex digits occur nowhere else in the text
        before, after = canonical_json({**self.chained_fields(), "previous_hash": placeholder}).split(placeholder)
        return before, after


class AuditChainHead(models.Model):
    """A single row locked while an event is appended, so concurrent writers chain in order."""

    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    previous_hash = models.CharField(
        max_length=64, default=GENESIS_HASH, help_text="last_hash before the newest event: one UPDATE returns both links."
    )


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
