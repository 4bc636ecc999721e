import django_filters

from tenants.choices import Role
from tenants.models import Membership


class MembershipFilterSet(django_filters.FilterSet):
    organization = django_filters.NumberFilter(field_name="organization_id")
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["organization", "role"]
