"""The embedded default (BERTH_TASK_MODE=thread) runs tasks on a pool inside the Berth process."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from celery import shared_task

from config import celery as berth_celery
from workspaces.tasks import _retry_later

runs: list[tuple[str, int, float]] = []


@shared_task(bind=True, max_retries=2)
def fails_once(self):
    runs.append(("fails once", self.request.retries, time.monotonic()))
    if self.request.retries == 0:
        _retry_later(self, RuntimeError("the server did not answer"))


@shared_task
def quick():
    runs.append(("quick", 0, time.monotonic()))


@pytest.fixture
def one_thread_pool(settings, monkeypatch):
    settings.BERTH_TASK_MODE = "thread"
    settings.BERTH_TASK_RETRY_DELAY = 0.5
    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(berth_celery, "_pool", pool)
    runs.clear()
    yield
    pool.shutdown(wait=True)


def test_a_task_waiting_to_retry_leaves_its_pool_thread_to_other_tasks(one_thread_pool):
    fails_once.delay()
    quick.delay()

    deadline = time.monotonic() + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert [(name, retries) for name, retries, _ in runs] == [("fails once", 0), ("quick", 0), ("fails once", 1)]
    assert runs[2][2] - runs[0][2] >= 0.5, "the retry still waits for its backoff"
