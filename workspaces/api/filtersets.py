import django_filters

from ..choices import WorkspaceStatus
from ..models import Workspace


class WorkspaceFilterSet(django_filters.FilterSet):
    organization = django_filters.CharFilter(field_name="organization__slug", help_text="Organization slug.")
    status = django_filters.MultipleChoiceFilter(choices=WorkspaceStatus.choices)
    owner = django_filters.CharFilter(field_name="owner__username")

    class Meta:
        model = Workspace
        fields = ["organization", "status", "owner"]
