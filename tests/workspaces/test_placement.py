"""Placement: pure scoring on plain values, then the database side (policies, waiting, timeout,
release exactly once) and 200 concurrent placements on PostgreSQL against room for 150."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from infrastructure import placement
from infrastructure import services as infrastructure_services
from infrastructure.choices import PlacementStrategy, ServerStatus
from infrastructure.models import Placement, PlacementPolicy, Server
from infrastructure.placement import Candidate, Request, choose
from workspaces import services, tasks, upkeep
from workspaces.choices import WorkspaceStatus as S
from workspaces.models import Workspace

from ..factories import make_server

SMALL = Request(cpu=Decimal(1), memory_mb=512)


def server(pk, name, **fields):
    return Candidate(pk=pk, name=name, **fields)


# --- pure scoring -------------------------------------------------------------------------------

def test_least_loaded_picks_the_emptiest_by_its_fullest_resource():
    busy_cpu = server(1, "a", reserved_cpu=Decimal(3))  # 75 % CPU
    busy_count = server(2, "b", reserved_workspaces=10)  # 50 % count
    decision = choose([busy_cpu, busy_count], SMALL)
    assert decision.candidate.name == "b"
    assert "least loaded" in decision.reason and "b (cpu" in decision.reason


def test_servers_without_room_are_never_chosen():
    full_memory = server(1, "a", reserved_memory_mb=7900)
    full_count = server(2, "b", max_workspaces=3, reserved_workspaces=3)
    full_cpu = server(3, "c", reserved_cpu=Decimal("3.5"))
    decision = choose([full_memory, full_count, full_cpu], SMALL)
    assert decision.candidate is None
    assert "no active server has room" in decision.reason


def test_round_robin_walks_servers_in_order_from_the_cursor():
    servers = [server(3, "c"), server(1, "a"), server(2, "b")]
    picks = [choose(servers, SMALL, strategy=PlacementStrategy.ROUND_ROBIN, cursor=n).candidate.name for n in range(4)]
    assert picks == ["a", "b", "c", "a"]


def test_region_prefers_the_requested_then_the_policy_regions_then_anything():
    eu, us, asia = server(1, "eu1", region="eu"), server(2, "us1", region="us"), server(3, "ap1", region="ap")
    region = PlacementStrategy.REGION
    assert choose([eu, us, asia], Request(Decimal(1), 512, "ap"), strategy=region, preferred_regions=["us"]).candidate.name == "ap1"
    assert choose([eu, us, asia], SMALL, strategy=region, preferred_regions=["us", "eu"]).candidate.name == "us1"
    full_us = server(2, "us1", region="us", reserved_workspaces=20)
    decision = choose([eu, full_us], SMALL, strategy=region, preferred_regions=["us"])
    assert decision.candidate.name == "eu1" and "any region" in decision.reason


def test_a_label_selector_keeps_only_matching_servers():
    ssd, hdd = server(1, "fast", labels={"disk": "ssd"}), server(2, "slow", labels={"disk": "hdd"})
    assert choose([ssd, hdd], SMALL, label_selector={"disk": "hdd"}).candidate.name == "slow"
    assert "label selector" in choose([ssd], SMALL, label_selector={"gpu": "yes"}).reason


# --- database ------------------------------------------------------------------------------------

def make_workspaces(owner, organization, image, count, **fields):
    return Workspace.objects.bulk_create(
        Workspace(organization=organization, owner=owner, name=f"ws-{n}", image=image, cpu=1, memory_mb=256, **fields)
        for n in range(count)
    )


def test_the_organization_policy_wins_over_the_default(alice, acme, default_image):
    make_server("a", region="eu")
    make_server("b", region="us")
    PlacementPolicy.objects.create(name="eu first", strategy=PlacementStrategy.REGION, preferred_regions=["eu"], is_default=True)
    acme.placement_policy = PlacementPolicy.objects.create(name="us first", strategy=PlacementStrategy.REGION, preferred_regions=["us"])
    acme.save()
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    chosen = services.decide_placement(workspace)
    assert chosen.server.name == "b"
    assert chosen.reason.startswith("policy us first: least loaded in region us")
    assert Workspace.objects.get(pk=workspace.pk).status == S.PROVISIONING


def test_round_robin_advances_the_policy_cursor(alice, acme, default_image):
    for name in "abc":
        make_server(name)
    PlacementPolicy.objects.create(name="rr", strategy=PlacementStrategy.ROUND_ROBIN, is_default=True)
    chosen = [services.decide_placement(ws).server.name for ws in make_workspaces(alice, acme, default_image, 4)]
    assert chosen == ["a", "b", "c", "a"]
    assert PlacementPolicy.objects.get(name="rr").round_robin_cursor == 4


def test_saving_a_policy_keeps_the_round_robin_position_placements_moved_meanwhile(operator):
    policy = PlacementPolicy.objects.create(name="rr", strategy=PlacementStrategy.ROUND_ROBIN)
    PlacementPolicy.objects.filter(pk=policy.pk).update(round_robin_cursor=7)  # placed while the form was open
    infrastructure_services.save_placement_policy(policy, actor=operator, changes={"preferred_regions": ["eu"]})
    saved = PlacementPolicy.objects.get(pk=policy.pk)
    assert (saved.round_robin_cursor, saved.preferred_regions) == (7, ["eu"])


def test_saving_a_policy_unchanged_writes_and_audits_nothing(operator):
    policy = PlacementPolicy.objects.create(name="rr", strategy=PlacementStrategy.ROUND_ROBIN)
    infrastructure_services.save_placement_policy(policy, actor=operator, changes={"strategy": "round_robin"})
    assert not AuditEvent.objects.filter(action="placement_policy.update").exists()
    infrastructure_services.save_placement_policy(policy, actor=operator, changes={"strategy": "least_loaded"})
    assert AuditEvent.objects.get(action="placement_policy.update").target_id == str(policy.pk)


def test_only_active_servers_are_used(alice, acme, default_image):
    make_server("offline", status=ServerStatus.OFFLINE)
    make_server("draining", status=ServerStatus.DRAINING)
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    assert services.decide_placement(workspace) is None
    workspace.refresh_from_db()
    assert workspace.status == S.PENDING
    assert workspace.status_message.startswith("Waiting for capacity: no active server has room")


def test_a_waiting_workspace_is_placed_when_room_frees_and_fails_after_the_timeout(alice, acme, default_image, settings):
    one_slot = make_server("one", max_workspaces=1)
    first, second, third = make_workspaces(alice, acme, default_image, 3)
    assert services.decide_placement(first) is not None
    assert services.decide_placement(second) is None
    Workspace.objects.filter(pk=third.pk).update(status_changed_at=timezone.now() - timedelta(hours=1))
    settings.BERTH_PLACEMENT_TIMEOUT = timedelta(minutes=30)

    Workspace.objects.filter(pk=first.pk).update(status=S.DELETING)
    first.refresh_from_db()
    services.finish_delete(first, keep_data=False)
    assert upkeep.place_pending_workspaces() == 1
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.status == S.PROVISIONING and second.placement.server == one_slot
    assert third.status == S.FAILED and third.failure_reason == "No server had room within 30 minutes."


def test_a_reservation_is_released_exactly_once(alice, acme, default_image):
    host = make_server("a")
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    chosen = services.decide_placement(workspace)
    host.refresh_from_db()
    assert (host.reserved_workspaces, host.reserved_cpu, host.reserved_memory_mb) == (1, Decimal(1), 256)
    assert placement.release(chosen) is True
    assert placement.release(Placement.objects.get(pk=chosen.pk)) is False
    assert services.fail_workspace(workspace, reason="boom") is True
    host.refresh_from_db()
    assert (host.reserved_workspaces, host.reserved_cpu, host.reserved_memory_mb) == (0, Decimal(0), 0)


def test_a_retried_workspace_goes_back_to_the_server_holding_its_data(alice, acme, default_image):
    home = make_server("home")
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    services.decide_placement(workspace)
    services.fail_workspace(workspace, reason="boom")
    make_server("emptier", cpu_cores=64, memory_mb=65536, max_workspaces=100)
    services.retry_workspace(workspace, actor=alice)
    workspace.refresh_from_db()
    chosen = services.decide_placement(workspace)
    assert chosen.server == home and "holds its data" in chosen.reason
    home.refresh_from_db()
    assert home.reserved_workspaces == 1


def test_an_overtaken_task_does_not_record_its_container(alice, acme, default_image):
    """A slow task's workspace failed and was placed again meanwhile, on another server or on the
    same one (the same placement row): the newer task's container stays recorded."""
    old_home = make_server("old-home")
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    overtaken = services.decide_placement(workspace)
    services.fail_workspace(workspace, reason="hung")
    Server.objects.filter(pk=old_home.pk).update(status=ServerStatus.OFFLINE)
    make_server("new-home")
    services.retry_workspace(workspace, actor=alice)
    workspace.refresh_from_db()
    current = services.decide_placement(workspace)

    placement.record_container(overtaken, "c0ffee", workspace_status=S.PROVISIONING)
    assert (Placement.objects.get(workspace=workspace).server.name, current.container_id) == ("new-home", "")

    placement.record_container(current, "beef", workspace_status=S.PROVISIONING)
    Workspace.objects.filter(pk=workspace.pk).update(status=S.RUNNING)  # the newer task finished
    placement.record_container(current, "c0ffee", workspace_status=S.PROVISIONING)  # the same row, late
    assert Placement.objects.get(workspace=workspace).container_id == "beef"


def test_a_placement_decided_on_a_workspace_loaded_before_it_went_around_reads_its_placement_afresh(
    alice, acme, default_image
):
    """A task loaded the workspace (no placement yet); before its turn the workspace was placed,
    failed and retried by others. Its placement must not trust what it loaded."""
    home = make_server("home")
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    loaded_early = tasks._load(str(workspace.pk), S.PENDING)
    meanwhile = Workspace.objects.get(pk=workspace.pk)
    services.decide_placement(meanwhile)
    services.fail_workspace(meanwhile, reason="boom")
    services.retry_workspace(meanwhile, actor=alice)

    chosen = services.decide_placement(loaded_early)

    assert chosen.server == home and "holds its data" in chosen.reason
    home.refresh_from_db()
    assert home.reserved_workspaces == 1


@pytest.mark.django_db(transaction=True)
def test_a_placement_that_loses_the_last_room_is_decided_again_on_fresh_numbers(alice, acme, default_image):
    """With one candidate nothing is locked while deciding. Just before this placement takes its
    room, a second connection commits a reservation that fills that server and a release that
    frees room on the other: the workspace lands there instead, and the first decision leaves
    nothing behind."""
    emptier = make_server("emptier", max_workspaces=1)
    fuller = make_server("fuller", max_workspaces=4, reserved_workspaces=4)
    (workspace,) = make_workspaces(alice, acme, default_image, 1)
    rivals = []

    def room_moves(execute, sql, params, many, context):
        if sql.startswith('UPDATE "infrastructure_server" SET "reserved_workspaces"') and not rivals:
            rivals.append(threading.Thread(target=lambda: (
                Server.objects.filter(pk=emptier.pk).update(reserved_workspaces=1),
                Server.objects.filter(pk=fuller.pk).update(reserved_workspaces=3),
                connection.close())))
            rivals[0].start()
            rivals[0].join(timeout=30)
            assert not rivals[0].is_alive(), "the rival was blocked: the candidate was locked"
        return execute(sql, params, many, context)

    with connection.execute_wrapper(room_moves):
        chosen = services.decide_placement(workspace)
    assert rivals, "the placement never tried to take its room"
    assert chosen.server.name == "fuller"
    assert Placement.objects.get().server.name == "fuller"  # the first decision's row was rolled back
    assert Server.objects.get(name="fuller").reserved_workspaces == 4
    assert Server.objects.get(name="emptier").reserved_workspaces == 1  # the rival's, nothing more
    assert Workspace.objects.get(pk=workspace.pk).status == S.PROVISIONING


@pytest.mark.django_db(transaction=True)
def test_a_placement_made_while_another_is_in_flight_sees_it_and_goes_elsewhere(alice, acme, default_image):
    """Least loaded must count the reservations committed before its decision, or a burst would
    pile onto one server. The second placement starts while the first is about to take its room
    on server a; it must wait for that and choose b, not decide on the old numbers."""
    make_server("a")
    make_server("b")
    first, second = make_workspaces(alice, acme, default_image, 2)
    chosen = {}

    def place_second():
        try:
            chosen["second"] = services.decide_placement(second).server.name
        finally:
            connection.close()

    rival = threading.Thread(target=place_second)

    def second_arrives(execute, sql, params, many, context):
        if sql.startswith('UPDATE "infrastructure_server" SET "reserved_workspaces"') and not rival.is_alive():
            rival.start()
            rival.join(timeout=1)  # it waits for the candidates' locks; without them it would finish now
        return execute(sql, params, many, context)

    with connection.execute_wrapper(second_arrives):
        chosen["first"] = services.decide_placement(first).server.name
    rival.join(timeout=30)
    assert chosen == {"first": "a", "second": "b"}


PLACING_THREADS = 16


@pytest.mark.django_db(transaction=True)
def test_200_concurrent_placements_fill_150_places_and_never_overcommit(alice, acme, default_image):
    """16 threads, each on its own PostgreSQL connection (closed when it finishes), start together and
    place their share of 200 workspaces back to back, so 16 transactions contend for the same server
    rows throughout while the test holds at most 17 of the server's 100 connections (parallel test runs
    share them). Without the row locks in `placement.reserve` this overcommits the servers."""
    assert connection.vendor == "postgresql"
    servers = [make_server(f"s{n}", max_workspaces=50, cpu_cores=1000, memory_mb=10**6) for n in range(3)]
    workspaces = make_workspaces(alice, acme, default_image, 200)
    start = threading.Barrier(PLACING_THREADS)

    def place_share(share):
        try:
            connection.ensure_connection()
            start.wait(timeout=60)
            return sum(services.decide_placement(workspace) is not None for workspace in share)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=PLACING_THREADS) as pool:
        placed = sum(pool.map(place_share, [workspaces[n::PLACING_THREADS] for n in range(PLACING_THREADS)]))

    assert placed == 150
    assert Placement.objects.count() == 150
    for host in Server.objects.filter(pk__in=[s.pk for s in servers]):
        assert host.reserved_workspaces == 50 == host.placements.count()
    assert Workspace.objects.filter(status=S.PROVISIONING).count() == 150
    waiting = Workspace.objects.filter(status=S.PENDING)
    assert waiting.count() == 50
    assert all(message.startswith("Waiting for capacity") for message in waiting.values_list("status_message", flat=True))
