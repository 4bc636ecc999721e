"""Berth settings: everything comes from the environment (django-environ) and is checked at start-up.

Two modes share this file:
- the embedded default (no DATABASE_URL / REDIS_URL): SQLite under var/, local-memory cache,
  tasks run on threads inside the Berth process, keys generated into var/ on first run;
- production (DEBUG=False): SECRET_KEY, ALLOWED_HOSTS and BERTH_ENCRYPTION_KEYS are required.
"""

import base64
import binascii
import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("BERTH_VAR_DIR", default=str(BASE_DIR / "var")))


class StrictEnv(environ.Env):
    """django-environ reads any unknown word as False and reports a bad number without its name;
    a typo in the environment must stop start-up with a message naming the variable instead."""

    TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
    FALSE_WORDS = frozenset({"false", "no", "off", "0"})

    def bool(self, var, default=environ.Env.NOTSET):
        if var not in self.ENVIRON:
            return super().bool(var, default=default)
        word = self.ENVIRON[var].strip().lower()
        if word not in self.TRUE_WORDS | self.FALSE_WORDS:
            raise ImproperlyConfigured(f"{var} must be true or false, not {self.ENVIRON[var]!r}.")
        return word in self.TRUE_WORDS

    def int(self, var, default=environ.Env.NOTSET):
        try:
            return super().int(var, default=default)
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be a whole number, not {self.ENVIRON[var]!r}.") from None

    def float(self, var, default=environ.Env.NOTSET):
        try:
            return super().float(var, default=default)
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be a number, not {self.ENVIRON[var]!r}.") from None

    def networks(self, var) -> tuple:
        """Comma-separated IP networks or addresses (10.0.0.0/8, fd00::/8, 192.0.2.10); empty by default."""
        try:
            return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.list(var, default=[]))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{var}: {exc}.") from None


env = StrictEnv()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _read_or_create(path: Path, make) -> str:
    """A generated secret kept in var/ so the embedded default survives restarts (never committed)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _env_secret(name: str, default=None):
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    file_name = env.str(f"{name}_FILE", default="")
    if file_name:
        return Path(file_name).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = _env_secret("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (production mode).")
    SECRET_KEY = _read_or_create(VAR_DIR / "secret_key", lambda: secrets.token_urlsafe(50))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG is off (production mode).")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

_encryption_keys = _env_secret("BERTH_ENCRYPTION_KEYS", default="")
if not _encryption_keys:
    if not DEBUG:
        raise ImproperlyConfigured("BERTH_ENCRYPTION_KEYS is required when DEBUG is off (production mode).")
    from infrastructure.crypto import generate_key

    _encryption_keys = _read_or_create(VAR_DIR / "encryption_key", generate_key)
BERTH_ENCRYPTION_KEYS = [key.strip() for key in _encryption_keys.split(",") if key.strip()]
for _key in BERTH_ENCRYPTION_KEYS:
    try:
        _key_ok = len(base64.urlsafe_b64decode(_key.encode())) == 32
    except (binascii.Error, ValueError):
        _key_ok = False
    if not _key_ok:
        raise ImproperlyConfigured("Each BERTH_ENCRYPTION_KEYS entry must be 32 bytes in urlsafe base64.")

INSTALLED_APPS = [
    "config.apps.BerthAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "config.apps.BerthConfig",
    "tenants",
    "audit",
    "infrastructure",
    "workspaces",
]

MIDDLEWARE = [
    "config.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "tenants.middleware.ActiveOrganizationMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.organizations",
            ],
        },
    },
]

# URLs carry passwords, so they may come from files too (DATABASE_URL_FILE, REDIS_URL_FILE).
DATABASES = {"default": env.db_url_config(_env_secret("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'berth.sqlite3'}"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Threads run tasks in-process on the embedded default: wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool per process instead of a PostgreSQL backend started for every request and task (about
    # 8 ms each). A request or task holds one connection while it runs and returns it when done
    # (Celery's thread pool closes connections around each task: with the pool that is a return,
    # not a reconnect; its prefork pool closes the whole pool instead, so workers run threads).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool hands out no connection that died idle
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_SIZE", default=32),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenants.User"

REDIS_URL = _env_secret("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                # A Redis outage degrades to "no cache", never to a 500.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "berth"}}
# Sessions live in the database so that sign-in survives a cache outage.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Tasks: "celery" sends to the broker (REDIS_URL), "thread" runs them on a pool inside this process
# (the embedded default), "eager" runs them inline (tests).
BERTH_TASK_MODE = env.str("BERTH_TASK_MODE", default="celery" if REDIS_URL else "thread")
if BERTH_TASK_MODE not in {"celery", "thread", "eager"}:
    raise ImproperlyConfigured("BERTH_TASK_MODE must be celery, thread or eager.")
# The embedded default's stand-in for `celery beat`: the periodic tasks below run on a thread of the
# web process (config/beat.py). `make run` turns it on; never with BERTH_TASK_MODE=celery.
BERTH_IN_PROCESS_BEAT = env.bool("BERTH_IN_PROCESS_BEAT", default=False)
if BERTH_IN_PROCESS_BEAT and BERTH_TASK_MODE == "celery":
    raise ImproperlyConfigured("BERTH_IN_PROCESS_BEAT needs BERTH_TASK_MODE=thread or eager; run `celery beat` instead.")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# Size of the in-process pool (thread mode): tasks wait on Docker and SSH, not on the CPU.
BERTH_TASK_THREADS = env.int("BERTH_TASK_THREADS", default=8)
# First delay before a task retries a transient server error; it doubles per retry (at most 120 s).
BERTH_TASK_RETRY_DELAY = env.float("BERTH_TASK_RETRY_DELAY", default=5.0)
CELERY_TASK_ALWAYS_EAGER = BERTH_TASK_MODE == "eager"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("BERTH_TASK_TIME_LIMIT", default=900)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with a size limit and deep nesting refused (config/api.py); forms for the browsable API.
    "DEFAULT_PARSER_CLASSES": [
        "config.api.JSONParser", "rest_framework.parsers.FormParser", "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["config.api.PerUserRateThrottle"],
}
# API requests per clock minute per person (config/api.py PerUserRateThrottle); 0 turns the limit off.
BERTH_API_RATE_LIMIT = env.int("BERTH_API_RATE_LIMIT", default=600)
if BERTH_API_RATE_LIMIT < 0:
    raise ImproperlyConfigured("BERTH_API_RATE_LIMIT must be 0 (off) or more.")
SPECTACULAR_SETTINGS = {
    "TITLE": "Berth API",
    "DESCRIPTION": "Self-hosted container workspaces.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: no CDN, works offline and on private networks.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Production hardening (DEBUG=False). Behind a TLS-terminating proxy set BERTH_BEHIND_TLS_PROXY=true
# so Django trusts X-Forwarded-Proto; BERTH_SSL_REDIRECT=false leaves the redirect to that proxy.
BERTH_BEHIND_TLS_PROXY = env.bool("BERTH_BEHIND_TLS_PROXY", default=False)
# The networks of the proxies in front of Berth that append to X-Forwarded-For: the client's address
# is read from there (config/proxies.py). Empty: Berth faces its clients and ignores the header.
BERTH_TRUSTED_PROXIES = env.networks("BERTH_TRUSTED_PROXIES")
if BERTH_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("BERTH_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("BERTH_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Berth's own knobs.
GIT_ALLOWED_HOSTS = env.list("GIT_ALLOWED_HOSTS", default=["github.com"])
GIT_ALLOW_SSH = env.bool("GIT_ALLOW_SSH", default=False)  # also allow ssh://git@<allowed host>/... clones
BERTH_CLONE_TIMEOUT = env.int("BERTH_CLONE_TIMEOUT", default=600)  # seconds a git clone may take
BERTH_WORKSPACE_PIDS_LIMIT = env.int("BERTH_WORKSPACE_PIDS_LIMIT", default=1024)
BERTH_WORKSPACE_NETWORK = env.str("BERTH_WORKSPACE_NETWORK", default="berth-workspaces")
BERTH_WORKSPACE_UID = env.int("BERTH_WORKSPACE_UID", default=1000)
BERTH_DEFAULT_IMAGE = env.str("BERTH_DEFAULT_IMAGE", default="berth/workspace:bookworm")
BERTH_SERVER_CHECK_INTERVAL = env.int("BERTH_SERVER_CHECK_INTERVAL", default=30)
BERTH_SERVER_FAILURES_BEFORE_OFFLINE = env.int("BERTH_SERVER_FAILURES_BEFORE_OFFLINE", default=3)
BERTH_CONNECT_TIMEOUT = env.float("BERTH_CONNECT_TIMEOUT", default=8.0)
BERTH_HANG_TIMEOUT = timedelta(seconds=env.int("BERTH_HANG_TIMEOUT", default=600))
BERTH_PLACEMENT_TIMEOUT = timedelta(seconds=env.int("BERTH_PLACEMENT_TIMEOUT", default=1800))
BERTH_RECONCILE_INTERVAL = env.int("BERTH_RECONCILE_INTERVAL", default=60)
BERTH_REMOVE_ORPHANS = env.bool("BERTH_REMOVE_ORPHANS", default=False)
BERTH_EDITOR_MAX_BYTES = env.int("BERTH_EDITOR_MAX_BYTES", default=1024 * 1024)
BERTH_UPLOAD_MAX_BYTES = env.int("BERTH_UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = BERTH_UPLOAD_MAX_BYTES + 1024 * 1024

CELERY_BEAT_SCHEDULE = {
    "check-servers": {"task": "infrastructure.tasks.check_all_servers", "schedule": BERTH_SERVER_CHECK_INTERVAL},
    "reconcile": {"task": "workspaces.tasks.reconcile_all", "schedule": BERTH_RECONCILE_INTERVAL},
    "detect-hangs": {"task": "workspaces.tasks.fail_hung_workspaces", "schedule": 60},
    "stop-idle": {"task": "workspaces.tasks.stop_idle_workspaces", "schedule": 60},
    "place-pending": {"task": "workspaces.tasks.place_pending_workspaces", "schedule": 15},
    "sample-usage": {"task": "workspaces.tasks.sample_resource_usage", "schedule": 60},
    "purge-deleted-data": {"task": "workspaces.tasks.purge_expired_data", "schedule": 3600},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "audit.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"paramiko": {"level": "WARNING"}},
}
