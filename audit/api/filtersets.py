import django_filters

from audit.choices import Outcome
from audit.models import AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    action = django_filters.CharFilter(help_text="Exact action, e.g. workspace.create.")
    action_prefix = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", help_text="Actions starting with this, e.g. workspace."
    )
    organization = django_filters.NumberFilter(field_name="organization_id")
    actor = django_filters.NumberFilter(field_name="actor_id")
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "organization", "actor", "outcome", "target_type", "target_id"]
