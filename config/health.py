"""GET /healthz for load balancers and monitors: the state of the database, cache and broker.

200 while the database answers (a cache or broker outage degrades Berth but pages still work),
503 when it does not. Every check is bounded and caught: the health page itself never fails."""

import logging
import uuid

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


def _database() -> str:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means "down"; the reason goes to the log only
        log.warning("healthz: database check failed: %s", exc)
        return "unavailable"


def _cache() -> str:
    # django-redis is configured to swallow errors (IGNORE_EXCEPTIONS), so a round trip is the test.
    key, value = f"healthz:{uuid.uuid4().hex}", "1"
    try:
        cache.set(key, value, timeout=10)
        ok = cache.get(key) == value
        cache.delete(key)
        return "ok" if ok else "unavailable"
    except Exception as exc:
        log.warning("healthz: cache check failed: %s", exc)
        return "unavailable"


def _broker() -> str:
    if settings.BERTH_TASK_MODE != "celery":
        return "in-process"
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception as exc:
        log.warning("healthz: broker check failed: %s", exc)
        return "unavailable"


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _database(), "cache": _cache(), "broker": _broker()}
    healthy = checks["database"] == "ok"
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)
