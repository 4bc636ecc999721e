"""Test settings: real PostgreSQL and Redis on this machine, tasks run inline (eager)."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 30)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/berth")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("BERTH_TASK_MODE", "eager")
os.environ.setdefault("BERTH_SSL_REDIRECT", "false")
os.environ.setdefault("BERTH_ENCRYPTION_KEYS", "tIJ5cNQ3bYRRJb3kLQJ2hJk2sXr0Jg4Zl6zq5mY4r9A=")
os.environ.setdefault("GIT_ALLOWED_HOSTS", "github.com,http://127.0.0.1")
os.environ.setdefault("BERTH_WORKSPACE_NETWORK", "host")
# Off, because tests of one person share the cache's counters: tests/security/test_api_rate_limit.py sets it.
os.environ.setdefault("BERTH_API_RATE_LIMIT", "0")

from .settings import *  # noqa: E402,F401,F403

# Pages render {% static %} without a collectstatic run (production uses the hashed manifest).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_AUTOREFRESH = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user fixtures
# Parallel test processes (pytest-xdist) share Redis but not their databases, whose primary keys
# repeat: each keeps its cache keys apart.
CACHES["default"]["KEY_PREFIX"] = os.environ.get("PYTEST_XDIST_WORKER", "")  # noqa: F405
