"""Celery entry points for servers. They take ids, reload the row and call services."""

from celery import shared_task
from django.contrib.auth import get_user_model

from . import services
from .models import Server

# A connection test makes a handful of round trips, each bounded by BERTH_CONNECT_TIMEOUT or a command
# timeout; the hard limit guarantees a worker is never held by a server that stops answering mid-test.
TEST_TIME_LIMIT = 120


@shared_task(name="infrastructure.tasks.test_server_connection", time_limit=TEST_TIME_LIMIT,
             soft_time_limit=TEST_TIME_LIMIT - 10)
def test_server_connection(server_id: int, actor_id: int | None = None, create_storage: bool = False) -> None:
    server = Server.objects.filter(pk=server_id).first()
    if server is None or server.status == "retired":
        return
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    services.test_connection(server, actor=actor, create_storage=create_storage)


@shared_task(name="infrastructure.tasks.check_server", time_limit=60, soft_time_limit=50)
def check_server(server_id: int) -> None:
    server = Server.objects.filter(pk=server_id, status__in=services.CHECKED_STATUSES).first()
    if server is not None:
        services.check_server_health(server)


@shared_task(name="infrastructure.tasks.check_all_servers", time_limit=60)
def check_all_servers() -> None:
    """Beat entry (every BERTH_SERVER_CHECK_INTERVAL s): one check task per server in or near service."""
    for server_id in Server.objects.filter(status__in=services.CHECKED_STATUSES).values_list("pk", flat=True):
        check_server.delay(server_id)
