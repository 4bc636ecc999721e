import django_filters

from ..models import Server


class ServerFilterSet(django_filters.FilterSet):
    class Meta:
        model = Server
        fields = ["status", "region", "docker_endpoint"]
