"""The server list in the console shows each server's load: running / placed / max workspaces, the
reservations, and what the latest usage samples of its running workspaces measured, at a query cost
that does not grow with the number of servers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from infrastructure.models import ResourceUsage, Server
from workspaces.choices import WorkspaceStatus as S

from .. import factories
from ..factories import make_workspace, place

LIST = "/admin/infrastructure/server/"


@pytest.fixture
def console(client, operator):
    client.force_login(operator)
    return client


def make_server(name: str, **fields) -> Server:
    return factories.make_server(name, **({"max_workspaces": 10, "cpu_cores": 4, "memory_mb": 8192} | fields))


def sample(workspace, server, minutes_ago: float, cpu: float, memory_mb: int) -> None:
    ResourceUsage.objects.create(workspace=workspace, server=server, cpu_percent=cpu, memory_bytes=memory_mb * 2**20,
                                 sampled_at=timezone.now() - timedelta(minutes=minutes_ago))


def row_of(page: str, server: Server) -> str:
    """The changelist row of `server` (rows start with its checkbox)."""
    start = page.index(f'value="{server.pk}"')
    return page[start:page.index("</tr>", start)]


def test_each_server_shows_running_placed_and_measured_load(console, alice, acme, default_image):
    busy = make_server("busy", reserved_workspaces=4, reserved_cpu=4, reserved_memory_mb=1024)
    idle = make_server("idle")
    first, second, stopped, silent = (
        make_workspace(alice, acme, default_image, name, status)
        for name, status in [("first", S.RUNNING), ("second", S.RUNNING), ("stopped", S.STOPPED), ("silent", S.RUNNING)]
    )
    for workspace in (first, second, stopped, silent):
        place(workspace, busy)
    sample(first, busy, minutes_ago=30, cpu=90, memory_mb=4000)  # too old to count
    sample(first, busy, minutes_ago=2, cpu=10, memory_mb=50)  # superseded by the next one
    sample(first, busy, minutes_ago=1, cpu=20, memory_mb=100)
    sample(second, busy, minutes_ago=1, cpu=30.4, memory_mb=200)
    sample(stopped, busy, minutes_ago=1, cpu=50, memory_mb=1000)  # not running any more
    sample(silent, busy, minutes_ago=20, cpu=70, memory_mb=700)  # no recent sample

    page = console.get(LIST).content.decode()

    busy_row, idle_row = row_of(page, busy), row_of(page, idle)
    assert "3 / 4 / 10" in busy_row  # running / placed / max
    assert "4.00 / 4.00 CPU · 1024 / 8192 MB" in busy_row
    assert "50 % of 400 % CPU · 300 MB of 8192 MB" in busy_row
    assert "0 / 0 / 10" in idle_row and "no recent samples" in idle_row


def test_the_list_costs_as_many_queries_for_ten_servers_as_for_one(
    console, alice, acme, default_image, django_assert_max_num_queries
):
    def add_loaded_server(n: int) -> None:
        server = make_server(f"edge-{n}")
        for k in range(2):
            workspace = make_workspace(alice, acme, default_image, f"ws-{n}-{k}")
            place(workspace, server)
            sample(workspace, server, minutes_ago=2, cpu=5, memory_mb=64)
            sample(workspace, server, minutes_ago=1, cpu=10, memory_mb=128)

    add_loaded_server(0)
    assert console.get(LIST).status_code == 200  # first request: session and permission caches
    with CaptureQueriesContext(connection) as one:
        page = console.get(LIST).content.decode()
    assert "20 % of 400 % CPU · 256 MB of 8192 MB" in page

    for n in range(1, 10):
        add_loaded_server(n)
    with django_assert_max_num_queries(len(one)):
        page = console.get(LIST).content.decode()
    assert page.count("20 % of 400 % CPU · 256 MB of 8192 MB") == 10
