"""The Celery app. On the embedded default (BERTH_TASK_MODE=thread) there is no broker: a task sent
with delay()/apply_async() runs on a small thread pool inside the Berth process, so a page never
waits for a long task and no worker process is needed."""

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from celery import Celery
from celery.contrib.django.task import DjangoTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None


def _in_process_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        from django.conf import settings

        _pool = ThreadPoolExecutor(max_workers=settings.BERTH_TASK_THREADS, thread_name_prefix="berth-task")
    return _pool


def _run_in_thread(task: "BerthTask", args, kwargs, retries: int = 0):
    from django.db import close_old_connections

    close_old_connections()
    try:
        task.apply(args=args, kwargs=kwargs, retries=retries)
    finally:
        close_old_connections()


def run_again_later(task: "BerthTask", *, countdown: float) -> None:
    """Retry a task that runs without a broker (thread or eager mode), where Celery cannot hold a
    retry back. Thread mode: a timer puts it back on the pool after `countdown` s, so no pool thread
    sleeps through the backoff while other tasks wait; a retry still waiting when the process stops
    is lost (the hang detector then fails its workspace). Eager mode (tests): wait, then run it inline."""
    from django.conf import settings

    args, kwargs, retries = task.request.args, task.request.kwargs, task.request.retries + 1

    def resubmit():
        try:
            _in_process_pool().submit(_run_in_thread, task, args, kwargs, retries)
        except RuntimeError:  # the pool is shut down: the process is stopping
            logger.warning("Dropped retry %d of %s%r: the process is stopping.", retries, task.name, tuple(args))

    if settings.BERTH_TASK_MODE == "thread":
        timer = threading.Timer(countdown, resubmit)
        timer.daemon = True
        timer.start()
        return
    time.sleep(countdown)
    task.apply(args=args, kwargs=kwargs, retries=retries)


class BerthTask(DjangoTask):
    """DjangoTask gives delay_on_commit(); apply_async picks the execution mode."""

    def apply_async(self, args=None, kwargs=None, **options):
        from django.conf import settings

        if getattr(settings, "BERTH_TASK_MODE", "celery") == "thread":
            _in_process_pool().submit(_run_in_thread, self, args or (), kwargs or {})
            return None
        return super().apply_async(args=args, kwargs=kwargs, **options)


app = Celery("berth", task_cls=BerthTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
