from rest_framework import viewsets

from audit.models import AuditEvent
from config.api import VisibleToUserMixin

from .filtersets import AuditEventFilterSet
from .serializers import AuditEventSerializer


class AuditEventViewSet(VisibleToUserMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log of the organizations where you are owner, admin or auditor (superusers: all).
    Read-only: events are appended by the operations they describe, never through the API."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
