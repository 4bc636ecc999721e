"""The periodic tasks of settings.CELERY_BEAT_SCHEDULE, run on one daemon thread inside the Berth
process: the embedded default (`make run`) has no broker and no `celery beat`, yet still needs server
checks, reconciliation, idle stops and the like. Production runs `celery beat` instead.

Tasks run one after another on this thread, so a slow one delays the next instead of piling up
(SQLite has a single writer anyway). A task whose name is not registered yet is skipped, so the
schedule may name tasks of apps that are still being written."""

import importlib
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)

_started: threading.Thread | None = None
_lock = threading.Lock()


def interval_seconds(schedule) -> float | None:
    """Seconds between runs for a number, a timedelta or a celery `schedule(run_every=...)`."""
    if isinstance(schedule, (int, float)):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)
    return run_every.total_seconds() if isinstance(run_every, timedelta) else None


def find_task(name: str):
    """The registered celery task called `name`, or None when its module or the task is missing."""
    from config.celery import app

    module_name = name.rpartition(".")[0]
    try:
        importlib.import_module(module_name)
    except ImportError:
        return None
    return app.tasks.get(name)


class InProcessBeat:
    """Runs every entry when the beat starts, then each time its interval has passed."""

    def __init__(self, schedule: dict, *, clock=time.monotonic):
        self.clock = clock
        self.entries: dict[str, tuple[str, float]] = {}
        for entry_name, entry in schedule.items():
            seconds = interval_seconds(entry["schedule"])
            if seconds is None or seconds <= 0:
                log.warning("in-process beat: %s has a schedule it cannot run (%r); skipped", entry_name, entry["schedule"])
                continue
            self.entries[entry_name] = (entry["task"], seconds)
        self.next_run = {entry_name: 0.0 for entry_name in self.entries}

    def tick(self) -> list[str]:
        """Run the entries that are due; return the names of the tasks that ran."""
        ran = []
        for entry_name, (task_name, seconds) in self.entries.items():
            if self.clock() < self.next_run[entry_name]:
                continue
            self.next_run[entry_name] = self.clock() + seconds
            close_old_connections()
            try:
                task = find_task(task_name)
                if task is not None:
                    task.apply(throw=True)
                    ran.append(task_name)
            except Exception:  # one broken task (or task module) must not stop the others or the beat
                log.exception("in-process beat: %s failed", task_name)
            finally:
                close_old_connections()
        return ran

    def run(self, stop: threading.Event, *, poll: float = 1.0) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(poll)


def start_in_process_beat() -> threading.Thread:
    """Start the beat thread once per process (a second call returns the running thread)."""
    global _started
    with _lock:
        if _started is None:
            beat = InProcessBeat(settings.CELERY_BEAT_SCHEDULE)
            _started = threading.Thread(
                target=beat.run, args=(threading.Event(),), name="berth-beat", daemon=True
            )
            _started.start()
            log.info("in-process beat started: %s", ", ".join(sorted(beat.entries)))
        return _started
