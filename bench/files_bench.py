"""Files benchmark (not a test): listing a 20,000-file workspace through the files API, uncached and
cached, file read and write latency, each next to its raw floor, on the local engine and over SSH.

    .venv/bin/python bench/files_bench.py [--files 20000] [--rounds 30] [--json out.json]

Requests go through Django's test client in this process (full middleware, DRF, session auth, JSON
rendering; no socket), so the figures are Berth's own cost. Floors:
- local: os.walk + lstat of every entry (what any listing must do at least), open/read, write/rename;
- SSH: one `find -printf` exec over the same pinned connection (the least one round trip can cost).

Env: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/berth_files_bench, created and migrated),
REDIS_URL (default redis://127.0.0.1:6379/10). Starts a private sshd on 127.0.0.1 (as the tests do)
and removes every folder it created.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/berth_files_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

_db_name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", _db_name], capture_output=True, check=False)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from infrastructure import services as server_services  # noqa: E402
from infrastructure.choices import DockerEndpoint, ServerStatus  # noqa: E402
from infrastructure.models import Server  # noqa: E402
from infrastructure.remote import run_command  # noqa: E402
from tenants.choices import Role  # noqa: E402
from tenants.models import Membership, Organization, User  # noqa: E402
from tests.fixtures.ssh import start_sshd  # noqa: E402
from tests.fixtures.workspace_files import folder_of, make_placed_workspace  # noqa: E402
from workspaces.models import Workspace, WorkspaceImage  # noqa: E402


def timed(action, rounds: int) -> dict:
    """Median and p95 in milliseconds of `rounds` calls (after one warm-up call)."""
    action()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2), "rounds": rounds}


def fill(folder: Path, files: int) -> None:
    """`files` files of 1 KiB in 100-file folders two levels deep, like a mid-sized repository."""
    body = b"x" * 1024
    for n in range(files):
        sub = folder / f"pkg{n // 1000:02d}" / f"mod{(n // 100) % 10}"
        if n % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{n:05d}.py").write_bytes(body)
    (folder / "edit.txt").write_bytes(b"y" * 10240)


def walk_floor(folder: Path) -> int:
    count = 0
    for base, dirs, names in os.walk(folder):
        for name in dirs + names:
            os.lstat(os.path.join(base, name))
            count += 1
    return count


def measure(client: Client, workspace: Workspace, rounds: int, floor_list, floor_read, floor_write) -> dict:
    base = f"/api/v1/workspaces/{workspace.pk}/files/"

    def get(url, cache: str = "miss"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        assert "files/content" in url or response["X-Berth-Cache"] == cache, url
        return response

    listing = get(base + "?depth=all&refresh=1").json()
    payload = 10240 * b"z"
    results = {
        "entries": len(listing["entries"]),
        "tree_uncached": timed(lambda: get(base + "?depth=all&refresh=1"), max(5, rounds // 3)),
        "tree_cached": timed(lambda: get(base + "?depth=all", "hit"), rounds),
        "tree_floor": timed(floor_list, max(5, rounds // 3)),
        "folder_uncached": timed(lambda: get(base + "?path=pkg00/mod0&refresh=1"), rounds),
        "folder_cached": timed(lambda: get(base + "?path=pkg00/mod0", "hit"), rounds),
        "read_10k": timed(lambda: get(base + "content?path=edit.txt"), rounds),
        "read_floor": timed(floor_read, rounds),
        "write_10k": timed(lambda: client.put(base + "content?path=edit.txt", payload,
                                              content_type="application/octet-stream"), rounds),
        "write_floor": timed(floor_write, rounds),
    }
    return results


def local_floors(folder: Path):
    target = folder / "edit.txt"

    def write():
        temp = folder / ".floor.tmp"
        with open(temp, "wb") as handle:
            handle.write(b"z" * 10240)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, target)

    return (lambda: walk_floor(folder)), target.read_bytes, write


def ssh_floors(server: Server, folder: Path):
    root = str(folder)

    def run(argv, stdin=b""):
        result = run_command(server, argv, stdin=stdin)
        assert result.exit_code == 0, result.stderr
        return result

    return (
        lambda: run(["find", root, "-mindepth", "1", "-printf", r"%y %s %T@ %P\n"]),
        lambda: run(["cat", "--", f"{root}/edit.txt"]),
        lambda: run(["dd", f"of={root}/edit.txt", "status=none"], stdin=b"z" * 10240),
    )


def ssh_server(operator, directory: Path, stamp: str) -> tuple[Server, object]:
    sshd = start_sshd(directory / "sshd")
    storage = directory / "ssh-storage"
    storage.mkdir()
    server, _ = server_services.register_server(
        actor=operator, ssh_key={"private_key": sshd.client_key},
        fields={"name": f"bench-ssh-{stamp}", "host": sshd.host, "ssh_port": sshd.port, "ssh_user": "root",
                "docker_endpoint": DockerEndpoint.SSH, "storage_root": str(storage)},
    )
    server_services.test_connection(server, actor=operator)
    server.refresh_from_db()
    server_services.trust_host_key(server, fingerprint=server.offered_host_key_fingerprint, actor=operator, test=False)
    server_services.test_connection(server, actor=operator)
    server.refresh_from_db()
    assert server.status == ServerStatus.ACTIVE, server.last_test
    return server, sshd


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal")))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    scratch = Path(tempfile.mkdtemp(prefix="berth-files-bench-"))
    stamp = str(int(time.time()))
    sshd = None
    try:
        organization = Organization.objects.create(name="Bench", slug=f"bench-{stamp}")
        user = User.objects.create_user(username=f"bench-{stamp}", password="x")
        Membership.objects.create(user=user, organization=organization, role=Role.OWNER)
        operator = User.objects.create_superuser(username=f"bench-op-{stamp}", password="x")
        image, _ = WorkspaceImage.objects.get_or_create(name="bench", defaults={"reference": "berth/workspace:bookworm"})
        client = Client()
        client.force_login(user)
        local_storage = scratch / "local-storage"
        local_storage.mkdir()
        local = Server.objects.create(name=f"bench-local-{stamp}", host="127.0.0.1", storage_root=str(local_storage),
                                      docker_endpoint=DockerEndpoint.LOCAL, status=ServerStatus.ACTIVE)
        results = {"machine": machine(), "files": args.files}
        ssh, sshd = ssh_server(operator, scratch, stamp)
        for label, server, floors in (("local", local, local_floors), ("ssh", ssh, None)):
            workspace = make_placed_workspace(owner=user, organization=organization, server=server, image=image,
                                              name=f"bench-{label}")
            folder = folder_of(workspace)
            fill(folder, args.files)
            floor = floors(folder) if floors else ssh_floors(server, folder)
            results[label] = measure(client, workspace, args.rounds, *floor)
            print(label, json.dumps(results[label], indent=1), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        print(json.dumps(results["machine"]))
    finally:
        if sshd is not None:
            sshd.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
