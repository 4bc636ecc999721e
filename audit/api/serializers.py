from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    """An event as stored: the change itself is only its SHA-256 (`change_hash`)."""

    class Meta:
        model = AuditEvent
        fields = [
            "id", "created_at", "actor", "actor_name", "organization", "action", "target_type", "target_id",
            "target_label", "request_id", "source_ip", "user_agent", "outcome", "message", "change_hash",
            "previous_hash", "hash",
        ]
        read_only_fields = fields
