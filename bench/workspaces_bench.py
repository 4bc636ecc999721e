"""Workspace benchmark (not a test): POST -> running against the raw `docker run -d` floor, the API's
responsiveness during 50 concurrent creates, and placement decisions per second.

Runs Berth for real: gunicorn (2 processes x 16 threads, HTTP on 127.0.0.1) and, by default, a Celery
worker with a thread pool (`--mode celery`, broker = REDIS_URL); `--mode thread` runs the tasks on the
web process's in-process pool instead (the embedded default). Never eager.

    .venv/bin/python bench/workspaces_bench.py [--mode celery|thread] [--split] [--json out.json]

Env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/berth_bench, created and migrated),
REDIS_URL (default redis://127.0.0.1:6379/9). It uses the local Docker engine and the image
berth/workspace:bookworm, and removes every container and folder it created.
"""

import argparse
import contextlib
import functools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/berth_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
os.environ["BERTH_TASK_MODE"] = "celery"  # this process only enqueues; never eager
os.environ["BERTH_WORKSPACE_NETWORK"] = "none"
IMAGE = "berth/workspace:bookworm"
POLL = 0.02
SETTLE_S = 1.0


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


ensure_database(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
from docker.models.containers import _create_container_args  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from infrastructure.choices import DockerEndpoint, ServerStatus  # noqa: E402
from infrastructure.models import OrphanContainer, Placement, ResourceUsage, Server  # noqa: E402
from tenants.choices import Role  # noqa: E402
from tenants.models import Membership, Organization, User  # noqa: E402
from tenants.services import issue_api_token  # noqa: E402
from workspaces import provisioning, services  # noqa: E402
from workspaces.models import Workspace, WorkspaceImage  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Berth:
    """The web process (and worker) under test, plus an API client with a token."""

    def __init__(self, mode: str, storage: str):
        self.mode, self.port = mode, free_port()
        env = {**os.environ, "BERTH_TASK_MODE": mode, "BERTH_TASK_THREADS": "32", "LOG_LEVEL": "WARNING",
               "BERTH_WORKSPACE_NETWORK": "none",
               # The per-person API limit counts every request, as in production, but never refuses
               # the script's own bursts (one person polling 20 times a second).
               "BERTH_API_RATE_LIMIT": "1000000"}
        web = [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2",
               "--threads", "16", "--backlog", "1024"]
        self.processes = [subprocess.Popen(web, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        if mode == "celery":
            self.processes.append(subprocess.Popen(
                [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-P", "threads", "-c", "32",
                 "--loglevel", "WARNING", "-Q", "celery"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.storage = storage
        self.token = ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                time.sleep(1.0 if self.mode == "celery" else 0)  # let the worker connect to the broker
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the Berth web process did not start")

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=20)


def reset_data(storage: str) -> tuple[User, Server]:
    Workspace.objects.all().delete()
    OrphanContainer.objects.all().delete()
    ResourceUsage.objects.all().delete()
    Placement.objects.all().delete()
    Server.objects.all().delete()
    Organization.objects.filter(slug="bench").delete()
    User.objects.filter(username="bench").delete()
    WorkspaceImage.objects.all().delete()
    organization = Organization.objects.create(name="Bench", slug="bench", max_workspaces_per_user=1000)
    user = User.objects.create_user(username="bench", password="bench-password-1")
    Membership.objects.create(user=user, organization=organization, role=Role.OWNER)
    WorkspaceImage.objects.create(name="Debian", reference=IMAGE, is_default=True, default_cpu="0.5",
                                  default_memory_mb=256)
    server = Server.objects.create(name="local", host="127.0.0.1", docker_endpoint=DockerEndpoint.LOCAL,
                                   storage_root=storage, status=ServerStatus.ACTIVE, max_workspaces=200,
                                   cpu_cores=200, memory_mb=10**6)
    return user, server


def settle() -> None:
    """Before a timed batch: write out what the previous one left dirty (container files, logs) and
    let the engine finish tearing its containers down, so neither side pays for the other's."""
    os.sync()
    time.sleep(SETTLE_S)


def busy_cpu_s() -> float:
    """CPU time the whole machine has spent busy since boot (every process and the kernel: user,
    nice, system, irq, softirq, steal), from the first line of /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def raw_floor(engine, count: int, storage: str) -> dict:
    """`docker run -d` of the same image with the same limits, hardening and bind mount, `count` at
    once from parallel threads: create + start through the API, the two calls the CLI makes (the
    SDK's `containers.run` would add an inspect between them)."""
    settle()
    arguments = {"image": IMAGE, "command": ["sleep", "infinity"], "version": engine.api._version, "detach": True,
                 "labels": {"berth.bench": "raw"}, "working_dir": "/workspace", "user": "1000:1000",
                 "cap_drop": ["ALL"], "cap_add": provisioning.CAP_ADD, "security_opt": ["no-new-privileges"],
                 "init": True, "nano_cpus": 500_000_000, "mem_limit": "256m", "pids_limit": 1024,
                 "network_mode": "none"}

    def run(n):
        folder = Path(storage, "raw", str(n))
        folder.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        created = engine.api.create_container(**_create_container_args(
            {**arguments, "volumes": {str(folder): {"bind": "/workspace", "mode": "rw"}}}))
        engine.api.start(created["Id"])
        return time.monotonic() - start

    cpu, wall = busy_cpu_s(), time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        each = list(pool.map(run, range(count)))
    wall, cpu = time.monotonic() - wall, busy_cpu_s() - cpu
    for container in engine.containers.list(all=True, filters={"label": "berth.bench=raw"}):
        container.remove(force=True)
    return {"count": count, "wall_s": round(wall, 3), "mean_s": round(statistics.mean(each), 3),
            "cpu_ms_per_workspace": round(1000 * cpu / count)}


_POLL_SQL = f"""SELECT id::text, status, failure_reason FROM {Workspace._meta.db_table}
WHERE id = ANY(%s::uuid[]) AND status IN ('running', 'failed')"""


@functools.cache
def poller_connection():
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0)


def wait_running(ids: list[str], timeout: float = 300) -> dict[str, float]:
    """Poll the database until each is running: one prepared query on a connection opened once,
    never the API or the ORM, so that the stopwatch takes as little of the two cores as it can."""
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(ids) and time.monotonic() < deadline:
        rows = poller_connection().execute(_POLL_SQL, [[i for i in ids if i not in done]]).fetchall()
        now = time.monotonic()
        for pk, status, reason in rows:
            if status == "failed":
                raise RuntimeError(f"workspace {pk} failed: {reason}")
            done[pk] = now
        time.sleep(POLL)
    if len(done) < len(ids):
        raise RuntimeError(f"only {len(done)}/{len(ids)} running after {timeout} s")
    return done


def berth_batch(berth: Berth, count: int, tag: str) -> dict:
    """`count` POSTs at once from parallel threads; time from each POST to its workspace running."""
    settle()
    sent: dict[str, float] = {}
    answered: list[float] = []

    def post(n):
        start = time.monotonic()
        status, body = berth.request("POST", "/api/v1/workspaces/", {"name": f"{tag}-{n}", "organization": "bench"})
        assert status == 202, body
        answered.append(time.monotonic() - start)
        sent[body["id"]] = start

    cpu, wall = busy_cpu_s(), time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(post, range(count)))
    running = wait_running(list(sent))
    wall, cpu = max(running.values()) - wall, busy_cpu_s() - cpu
    each = [running[i] - sent[i] for i in sent]
    return {"count": count, "wall_s": round(wall, 3), "mean_s": round(statistics.mean(each), 3),
            "max_s": round(max(each), 3), "mean_post_202_s": round(statistics.mean(answered), 3),
            "cpu_ms_per_workspace": round(1000 * cpu / count), "ids": list(sent)}


def delete_all(berth: Berth, ids: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: berth.request("DELETE", f"/api/v1/workspaces/{i}/"), ids))
    deadline = time.monotonic() + 120
    while Workspace.objects.filter(pk__in=ids).exclude(status="deleted").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def responsiveness(berth: Berth, count: int) -> dict:
    """GET latency of the workspace list alone, then while `count` creates run to completion."""
    def sample(stop: threading.Event, into: list):
        while not stop.is_set():
            start = time.monotonic()
            status, _ = berth.request("GET", "/api/v1/workspaces/?limit=20")
            into.append((time.monotonic() - start, status))
            time.sleep(0.05)

    idle: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(stop, idle))
    sampler.start()
    time.sleep(2)
    stop.set()
    sampler.join()
    busy: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(stop, busy))
    sampler.start()
    batch = berth_batch(berth, count, "load")
    stop.set()
    sampler.join()

    def summary(samples):
        latencies = sorted(latency for latency, _ in samples)
        return {"n": len(latencies), "p50_ms": round(1000 * statistics.median(latencies), 1),
                "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
                "max_ms": round(1000 * latencies[-1], 1), "errors": sum(status != 200 for _, status in samples)}

    return {"creates": count, "batch_wall_s": batch["wall_s"], "idle_get": summary(idle), "busy_get": summary(busy),
            "ids": batch["ids"]}


def placement_rate(user: User, total: int = 500, servers: int = 10) -> dict:
    """Decisions per second with the real locking code (services.decide_placement), sequentially and
    from 8 threads, on PostgreSQL; the servers are rows only (nothing is provisioned)."""
    organization = Organization.objects.get(slug="bench")
    Server.objects.update(status=ServerStatus.DRAINING)
    for n in range(servers):
        Server.objects.create(name=f"p{n}", host="127.0.0.1", docker_endpoint=DockerEndpoint.SSH,
                              storage_root=f"/srv/p{n}", status=ServerStatus.ACTIVE, max_workspaces=100,
                              cpu_cores=100, memory_mb=10**6, region=("eu", "us")[n % 2])
    image = WorkspaceImage.objects.get()
    results = {}
    for label, threads in (("sequential", 1), ("8_threads", 8)):
        Placement.objects.filter(server__name__startswith="p").delete()
        Server.objects.filter(name__startswith="p").update(reserved_workspaces=0, reserved_cpu=0, reserved_memory_mb=0)
        Workspace.objects.filter(name__startswith="pl-").delete()
        workspaces = Workspace.objects.bulk_create(
            Workspace(organization=organization, owner=user, name=f"pl-{n}", image=image, cpu="0.5", memory_mb=256)
            for n in range(total))

        def place(workspace):
            try:
                return services.decide_placement(workspace) is not None
            finally:
                connection.close()

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            placed = sum(pool.map(place, workspaces))
        elapsed = time.monotonic() - start
        results[label] = {"placed": placed, "seconds": round(elapsed, 3), "decisions_per_s": round(placed / elapsed, 1)}
    Workspace.objects.filter(name__startswith="pl-").delete()
    Server.objects.filter(name__startswith="p").delete()
    return results


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = next(int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    engine = docker.from_env().version()
    return (f"{os.cpu_count()} cores ({cpu}), {memory} MiB RAM, {platform.system()} {platform.release()}, "
            f"Docker {engine['Version']}, Python {platform.python_version()}")


ENGINE_PROCESSES = ("dockerd", "containerd", "containerd-shim")  # /proc/PID/comm: 15 characters at most
SERVICE_PROCESSES = ("postgres", "redis-server")


def _pids(names: tuple[str, ...]) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() in names:
                found.append(pid)
        except OSError:
            pass
    return found


def _pin(names: tuple[str, ...], cpus: set[int]) -> None:
    listing = ",".join(map(str, sorted(cpus)))
    for pid in _pids(names):
        subprocess.run(["taskset", "-a", "-p", "-c", listing, pid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)


@contextlib.contextmanager
def split_cores(enabled: bool):
    """--split: the engine (dockerd, containerd, the shims it starts) on the upper half of the CPUs,
    this script, Berth, PostgreSQL and Redis on the lower half, as when the engine runs on its own
    servers; every affinity is put back afterwards. Needs root."""
    if not enabled:
        yield
        return
    everything = os.sched_getaffinity(0)
    cpus = sorted(everything)
    control, engine_side = set(cpus[: len(cpus) // 2]), set(cpus[len(cpus) // 2:])
    _pin(ENGINE_PROCESSES, engine_side)
    _pin(SERVICE_PROCESSES, control)
    os.sched_setaffinity(0, control)
    try:
        yield
    finally:
        _pin(ENGINE_PROCESSES + SERVICE_PROCESSES, everything)
        os.sched_setaffinity(0, everything)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["celery", "thread"], default="celery")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--split", action="store_true", help="engine and the rest on separate CPUs (see split_cores)")
    args = parser.parse_args()
    with split_cores(args.split):
        benchmark(args)


def benchmark(args) -> None:
    call_command("migrate", verbosity=0)
    engine = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41", timeout=120, max_pool_size=64)
    engine.images.get(IMAGE)
    storage = tempfile.mkdtemp(prefix="berth-bench-")
    user, _ = reset_data(storage)
    berth = Berth(args.mode, storage)
    report: dict = {"machine": machine(), "mode": args.mode, "split_cores": args.split}
    try:
        berth.token = issue_api_token(user, name="bench", expires_in=None)[1]
        berth.wait_ready()
        # Steady state: one untimed batch of each kind first (both web processes import their views,
        # every worker thread gets its pooled connection; the engine's first runs are slower too).
        raw_floor(engine, 20, storage)
        delete_all(berth, berth_batch(berth, 20, "warm")["ids"])
        for count, repeats in ((1, 7), (20, 15)):  # 15 pairs of 20: single pairs differ by ±0.05x here
            runs = []
            for run in range(repeats):  # paired and interleaved: both sides see the same background load
                if run % 2:  # and each goes first in every other pair
                    batch = berth_batch(berth, count, f"b{count}-{run}")
                    floor = raw_floor(engine, count, storage)
                else:
                    floor = raw_floor(engine, count, storage)
                    batch = berth_batch(berth, count, f"b{count}-{run}")
                delete_all(berth, batch.pop("ids"))
                runs.append({"raw": floor, "berth": batch,
                             "added_s": round(batch["mean_s"] - floor["mean_s"], 3),
                             "wall_ratio": round(batch["wall_s"] / floor["wall_s"], 2),
                             "cpu_ratio": round(batch["cpu_ms_per_workspace"] / floor["cpu_ms_per_workspace"], 2)})
            report[f"create_{count}"] = {
                "runs": repeats,
                "median_raw_wall_s": statistics.median(r["raw"]["wall_s"] for r in runs),
                "median_berth_wall_s": statistics.median(r["berth"]["wall_s"] for r in runs),
                "median_added_per_workspace_s": statistics.median(r["added_s"] for r in runs),
                "median_wall_ratio": statistics.median(r["wall_ratio"] for r in runs),
                "wall_ratio_quartiles": [round(q, 3) for q in statistics.quantiles((r["wall_ratio"] for r in runs), n=4)],
                "median_cpu_ms_per_workspace": {side: statistics.median(r[side]["cpu_ms_per_workspace"] for r in runs)
                                                for side in ("raw", "berth")},
                "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in runs),
                "each_run": runs,
            }
        load = responsiveness(berth, 50)
        delete_all(berth, load.pop("ids"))
        report["responsiveness_50"] = load
        report["placement_500_on_10"] = placement_rate(user)
    finally:
        berth.stop()
        for container in engine.containers.list(all=True, filters={"label": "berth.managed=1"}):
            if container.labels.get("berth.data", "").startswith(storage):
                container.remove(force=True)
        subprocess.run(["rm", "-rf", "--", storage], check=False)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
