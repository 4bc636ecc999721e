"""GET /healthz in this process, against the real PostgreSQL and Redis (the database-down case runs
a real web server: see tests/test_boot.py)."""

import socket

import pytest
from django.conf import settings


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_reports_database_cache_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "broker": "in-process"}
    assert "no-cache" in response["Cache-Control"]


def test_it_pings_the_broker_in_celery_mode(client, db, settings):
    settings.BERTH_TASK_MODE = "celery"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    assert client.get("/healthz").json()["broker"] == "ok"


def test_a_broker_outage_is_reported_but_not_fatal(client, db, settings):
    settings.BERTH_TASK_MODE = "celery"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == "unavailable"


def test_a_cache_outage_is_reported_but_not_fatal(client, db, settings):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}
    }
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["cache"] == "unavailable"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_only_answers_get(client, db, method):
    assert getattr(client, method)("/healthz").status_code == 405


def test_settings_under_test_use_real_services():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
