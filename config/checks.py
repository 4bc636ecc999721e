"""Berth's own deployment checks (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def workspace_network(app_configs, **kwargs):
    """On the host's network a workspace reaches everything bound to the server's localhost: Berth's
    database and Redis (often without a password there), the Docker API, other services."""
    if settings.BERTH_WORKSPACE_NETWORK != "host":
        return []
    return [Warning(
        "BERTH_WORKSPACE_NETWORK is 'host': workspace containers share the server's network and reach "
        "every service on its localhost.",
        hint="Leave it at the default (berth-workspaces, a bridge without traffic between containers).",
        id="berth.W001",
    )]
