"""Settings: production passes Django's deployment checklist, and a malformed value stops start-up
with a message naming the variable (never a half-configured Berth)."""

import re
import secrets
from pathlib import Path

import pytest

from infrastructure.crypto import generate_key
from tests.test_boot import clean_env, manage


def production_env(tmp_path, **overrides):
    production = {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "berth.example.com",
        "BERTH_ENCRYPTION_KEYS": generate_key(),
    }
    return clean_env(tmp_path / "var", **{**production, **overrides})


@pytest.mark.parametrize("behind_proxy", ["false", "true"])
def test_production_passes_the_deployment_checklist(tmp_path, behind_proxy):
    result = manage(production_env(tmp_path, BERTH_BEHIND_TLS_PROXY=behind_proxy), "check", "--deploy", "--fail-level", "WARNING")
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"BERTH_SSL_REDIRECT": "yes please"}, "BERTH_SSL_REDIRECT must be true or false"),
        ({"BERTH_SERVER_CHECK_INTERVAL": "soon"}, "BERTH_SERVER_CHECK_INTERVAL must be a whole number"),
        ({"BERTH_CONNECT_TIMEOUT": "fast"}, "BERTH_CONNECT_TIMEOUT must be a number"),
        ({"BERTH_TRUSTED_PROXIES": "10.0.0.0/8,the-balancer"}, "BERTH_TRUSTED_PROXIES: 'the-balancer' does not appear"),
        ({"BERTH_TASK_MODE": "sometimes"}, "BERTH_TASK_MODE must be celery, thread or eager"),
        ({"BERTH_API_RATE_LIMIT": "-1"}, "BERTH_API_RATE_LIMIT must be 0 (off) or more"),
        ({"BERTH_ENCRYPTION_KEYS": "too-short"}, "BERTH_ENCRYPTION_KEYS entry must be 32 bytes"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is required"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is required"),
        ({"BERTH_IN_PROCESS_BEAT": "true", "BERTH_TASK_MODE": "celery"}, "BERTH_IN_PROCESS_BEAT needs"),
    ],
)
def test_a_malformed_value_stops_start_up(tmp_path, overrides, message):
    result = manage(production_env(tmp_path, **overrides), "check", check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_secrets_and_urls_may_come_from_files(tmp_path):
    (tmp_path / "database_url").write_text("postgres://berth:s3cret@db.internal:5432/berth\n")
    (tmp_path / "secret_key").write_text(secrets.token_urlsafe(64))
    env = production_env(tmp_path, DATABASE_URL_FILE=str(tmp_path / "database_url"),
                         SECRET_KEY_FILE=str(tmp_path / "secret_key"), SECRET_KEY="")
    script = "from django.conf import settings; d = settings.DATABASES['default']; print(d['HOST'], d['PASSWORD'])"
    assert manage(env, "shell", "-c", script).stdout.strip().splitlines()[-1].split() == ["db.internal", "s3cret"]


def test_the_readme_documents_every_variable_the_settings_read():
    """The README's table is the operator's reference: a variable added to settings must be added there."""
    repo = Path(__file__).resolve().parents[1]
    settings_source = (repo / "config" / "settings.py").read_text()
    read = set(re.findall(r'(?:env(?:\.\w+)?|_env_secret)\("([A-Z][A-Z0-9_]+)"', settings_source))
    assert {"DATABASE_URL", "SECRET_KEY", "BERTH_TASK_MODE"} <= read  # the pattern does find them
    readme = (repo / "README.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
