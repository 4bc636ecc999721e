"""The embedded default boots for real (`make run` without make): a fresh var/ folder, SQLite,
local-memory cache, tasks in-process, no PostgreSQL or Redis in the environment. And the production
web process (gunicorn) answers /healthz with 503, not 500, when its database is down."""

import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests
from django.contrib import admin
from django.urls import reverse

from config.beat import InProcessBeat
from config.celery import app as celery_app
from infrastructure.crypto import generate_key
from tests.fixtures.processes import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def clean_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """A child environment with none of the test settings' variables: only what a newcomer has."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "BERTH_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def manage(env: dict, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [PYTHON, "manage.py", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited:\n{log.read_text()}"
        try:
            return get_json(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException):
            time.sleep(0.3)  # not listening yet, or the worker is still importing Django
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{log.read_text()}")


def serve(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


@pytest.mark.docker  # bootstrap registers the local engine when it answers (it does here)
def test_the_embedded_default_boots_and_answers_healthz(tmp_path):
    env = clean_env(tmp_path / "var", DEBUG="true", BERTH_ADMIN_PASSWORD="a-long-admin-password")
    manage(env, "migrate", "--noinput")
    bootstrapped = manage(env, "bootstrap").stdout
    assert "created organization default" in bootstrapped and "server local" in bootstrapped
    assert (tmp_path / "var" / "berth.sqlite3").exists() and (tmp_path / "var" / "encryption_key").exists()
    assert "nothing to create" in manage(env, "bootstrap").stdout

    port, log = free_port(), tmp_path / "runserver.log"
    server = serve([PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                   {**env, "BERTH_IN_PROCESS_BEAT": "true"}, log)
    try:
        status, body = wait_for(f"http://127.0.0.1:{port}/healthz", server, log)
        assert status == 200
        assert body == {"status": "ok", "database": "ok", "cache": "ok", "broker": "in-process"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as page:
            assert page.status == 200 and b"Sign in" in page.read()
        assert "in-process beat started" in log.read_text()
        assert_every_console_list_loads(f"http://127.0.0.1:{port}", "admin", "a-long-admin-password")
    finally:
        stop_process(server)


def assert_every_console_list_loads(base: str, username: str, password: str) -> None:
    """The embedded default is SQLite while the rest of the suite runs on PostgreSQL: a query only
    PostgreSQL understands (DISTINCT ON, say) would break these pages for newcomers alone."""
    session = requests.Session()
    login = f"{base}/accounts/login/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(login, timeout=10).text).group(1)
    signed_in = session.post(login, data={"csrfmiddlewaretoken": token, "username": username, "password": password},
                             headers={"Referer": login}, timeout=10)
    assert signed_in.status_code == 200 and "Workspaces" in signed_in.text
    pages = ["/admin/"] + [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]
    for page in pages:
        response = session.get(base + page, timeout=30)
        assert response.status_code == 200, f"{page} answered {response.status_code}"


@pytest.mark.parametrize(
    ("database", "expected_status", "expected_database"),
    [("postgres://postgres@127.0.0.1:5432/postgres", 200, "ok"), (None, 503, "unavailable")],
    ids=["database-up", "database-down"],
)
def test_the_production_web_process_reports_its_database(tmp_path, database, expected_status, expected_database):
    port, log = free_port(), tmp_path / "gunicorn.log"
    env = clean_env(
        tmp_path / "var",
        DEBUG="false",
        SECRET_KEY="x" * 60,
        ALLOWED_HOSTS="127.0.0.1",
        BERTH_ENCRYPTION_KEYS=generate_key(),
        DATABASE_URL=database or f"postgres://postgres@127.0.0.1:{free_port()}/berth",  # nothing listens there
        REDIS_URL=os.environ["REDIS_URL"],
    )
    server = serve([PYTHON, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"], env, log)
    try:
        status, body = wait_for(f"http://127.0.0.1:{port}/healthz", server, log)
        assert (status, body["database"]) == (expected_status, expected_database)
        assert body["cache"] == "ok" and body["broker"] == "ok"
    finally:
        stop_process(server)


@celery_app.task(name=f"{__name__}.beat_probe")
def beat_probe():
    BEAT_CALLS.append("probe")


@celery_app.task(name=f"{__name__}.beat_failure")
def beat_failure():
    raise RuntimeError("this task always fails")


BEAT_CALLS: list[str] = []


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_in_process_beat_runs_registered_tasks_on_their_interval(db):
    clock = FakeClock()
    beat = InProcessBeat(
        {
            "probe": {"task": f"{__name__}.beat_probe", "schedule": 10},
            "failing": {"task": f"{__name__}.beat_failure", "schedule": 10},
            "not-written-yet": {"task": "workspaces.tasks.no_such_task", "schedule": 10},
            "no-such-app": {"task": "nosuchapp.tasks.anything", "schedule": 10},
        },
        clock=clock,
    )
    BEAT_CALLS.clear()
    assert beat.tick() == [f"{__name__}.beat_probe"]  # the failing one is logged, the missing ones skipped
    clock.now = 5
    assert beat.tick() == []
    clock.now = 10
    assert beat.tick() == [f"{__name__}.beat_probe"]
    assert BEAT_CALLS == ["probe", "probe"]
