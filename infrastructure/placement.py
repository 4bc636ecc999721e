"""Choosing a server for a workspace and reserving room on it.

Two layers:
- pure scoring (`Candidate`, `Request`, `choose`): no database, unit-tested on plain values;
- `reserve` / `take_room` / `release`: the only code that changes `Server.reserved_*`. `reserve`
  decides and records the Placement; `take_room` then adds the reservation with one conditional
  UPDATE ("where the server is still active and still has room"), which PostgreSQL re-checks on the
  latest committed row after any concurrent reservation of the same server, so placements can never
  overcommit it. When there is a choice between servers, the candidates are locked (primary-key
  order) while deciding, so least loaded sees every reservation committed before it and a burst
  spreads out. With a single candidate nothing is locked until `take_room`, the caller's last
  statement before its commit: twenty placements on one server queue for twenty commits, not for
  twenty decisions. A placement that loses a server's last room is rolled back and decided again on
  fresh numbers. A round-robin policy row is locked for the whole decision (policy first, then
  servers: one lock order), so its cursor hands out each turn once.
"""

import posixpath
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from .choices import PlacementStrategy, ServerStatus
from .models import OrphanContainer, Placement, PlacementPolicy, Server


@dataclass(frozen=True)
class Request:
    cpu: Decimal
    memory_mb: int
    region: str = ""


@dataclass(frozen=True)
class Candidate:
    """A server as placement sees it: capacity, what is already reserved, where it is."""

    pk: int
    name: str
    region: str = ""
    labels: dict = field(default_factory=dict)
    cpu_cores: Decimal = Decimal(4)
    memory_mb: int = 8192
    max_workspaces: int = 20
    reserved_cpu: Decimal = Decimal(0)
    reserved_memory_mb: int = 0
    reserved_workspaces: int = 0

    @classmethod
    def of(cls, server: Server) -> "Candidate":
        return cls(
            pk=server.pk, name=server.name, region=server.region, labels=server.labels or {},
            cpu_cores=server.cpu_cores, memory_mb=server.memory_mb, max_workspaces=server.max_workspaces,
            reserved_cpu=server.reserved_cpu, reserved_memory_mb=server.reserved_memory_mb,
            reserved_workspaces=server.reserved_workspaces,
        )


@dataclass(frozen=True)
class Decision:
    """The chosen server (None: nowhere to go) and the reason, as stored on Placement.reason."""

    candidate: Candidate | None
    reason: str
    advances_cursor: bool = False


def has_room(server: Candidate, request: Request) -> bool:
    return (
        server.reserved_workspaces + 1 <= server.max_workspaces
        and server.reserved_cpu + request.cpu <= server.cpu_cores
        and server.reserved_memory_mb + request.memory_mb <= server.memory_mb
    )


def load(server: Candidate) -> float:
    """The fullest of CPU, memory and workspace count, as a fraction of capacity (0 = empty)."""
    fractions = [
        float(server.reserved_cpu / server.cpu_cores) if server.cpu_cores else 1.0,
        server.reserved_memory_mb / server.memory_mb if server.memory_mb else 1.0,
        server.reserved_workspaces / server.max_workspaces if server.max_workspaces else 1.0,
    ]
    return max(fractions)


def matches_labels(labels: dict, selector: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def describe(server: Candidate) -> str:
    return (
        f"{server.name} (cpu {server.reserved_cpu}/{server.cpu_cores}, memory {server.reserved_memory_mb}/"
        f"{server.memory_mb} MiB, {server.reserved_workspaces}/{server.max_workspaces} workspaces)"
    )


def choose(
    candidates: list[Candidate],
    request: Request,
    *,
    strategy: str = PlacementStrategy.LEAST_LOADED,
    preferred_regions: list[str] | tuple = (),
    label_selector: dict | None = None,
    cursor: int = 0,
    policy_name: str = "built-in least loaded",
) -> Decision:
    """Pick a server among `candidates` (already active) for `request`.

    Servers in the workspace's requested region come first, then (region strategy) the policy's
    preferred regions in order, then any other server with room. Within that first non-empty tier,
    least loaded and region pick the lowest `load` (ties by name), round robin the next server after
    `cursor` in primary-key order."""
    selector = label_selector or {}
    eligible = [c for c in candidates if matches_labels(c.labels, selector)]
    fitting = [c for c in eligible if has_room(c, request)]
    if not fitting:
        why = "no active server has room"
        if candidates and not eligible:
            why = f"no active server with room matches the label selector {selector}"
        return Decision(None, f"{why} for {request.cpu} CPU / {request.memory_mb} MiB")
    regions = [request.region] if request.region else []
    if strategy == PlacementStrategy.REGION:
        regions += [region for region in preferred_regions if region not in regions]
    tier, where = fitting, "any region"
    for region in regions:
        in_region = [c for c in fitting if c.region == region]
        if in_region:
            tier, where = in_region, f"region {region}"
            break
    if strategy == PlacementStrategy.ROUND_ROBIN:
        ordered = sorted(tier, key=lambda c: c.pk)
        chosen = ordered[cursor % len(ordered)]
        how = f"round robin #{cursor}"
    else:
        chosen = min(tier, key=lambda c: (load(c), c.name))
        how = "least loaded"
    reason = f"{policy_name}: {how} in {where}, {describe(chosen)}, {len(fitting)} server(s) with room"
    return Decision(chosen, reason[:300], advances_cursor=strategy == PlacementStrategy.ROUND_ROBIN)


def effective_policy(organization) -> PlacementPolicy | None:
    """The organization's own policy, else the global default, else None (built-in least loaded)."""
    if organization.placement_policy_id:
        return organization.placement_policy
    return PlacementPolicy.objects.filter(is_default=True).first()


def placement_of(workspace) -> Placement | None:
    """The workspace's placement, None when it has none: no query when the caller loaded it with the
    workspace (`select_related("placement__server")`). Only for a workspace whose status the caller
    holds: placements change only while a workspace is being placed."""
    try:
        return workspace.placement
    except Placement.DoesNotExist:
        return None


def data_path_for(server: Server, workspace) -> str:
    return posixpath.join(server.storage_root, workspace.organization.slug, str(workspace.pk))


def _with_room(servers, request: Request):
    """Active servers that can still take `request` (the same test as `has_room`, in SQL)."""
    return servers.filter(
        status=ServerStatus.ACTIVE,
        reserved_workspaces__lt=F("max_workspaces"),
        reserved_cpu__lte=F("cpu_cores") - request.cpu,
        reserved_memory_mb__lte=F("memory_mb") - request.memory_mb,
    )


def _reservation_change(cpu: Decimal, memory_mb: int, sign: int) -> dict:
    return {
        "reserved_workspaces": F("reserved_workspaces") + sign,
        "reserved_cpu": F("reserved_cpu") + sign * cpu,
        "reserved_memory_mb": F("reserved_memory_mb") + sign * memory_mb,
    }


def _take_room(server_pk: int, request: Request) -> bool:
    """Add the reservation if the server, as committed right now, is active and has room."""
    taken = _with_room(Server.objects.filter(pk=server_pk), request).update(
        **_reservation_change(request.cpu, request.memory_mb, +1)
    )
    return taken == 1


def _keep_on_same_server(placement: Placement, request: Request) -> bool:
    """A re-placed workspace goes back to the server holding its data when that server can take it."""
    if not _take_room(placement.server_id, request):
        return False
    placement.reserved_cpu, placement.reserved_memory_mb = request.cpu, request.memory_mb
    placement.released = False
    placement.reason = f"kept on {placement.server.name}, which holds its data"
    placement.save(update_fields=["reserved_cpu", "reserved_memory_mb", "released", "reason"])
    return True


def record_container(placement: Placement, container_id: str, *, workspace_status: str) -> None:
    """The container a task brought up for this placement, written while the workspace is still in
    the task's step: a task that was overtaken (its workspace failed and was placed again, here or
    elsewhere) leaves the placement to the task that replaced it. A row that already says so is not
    written again."""
    Placement.objects.filter(pk=placement.pk, workspace__status=workspace_status).exclude(
        container_id=container_id
    ).update(container_id=container_id)
    placement.container_id = container_id


def record_leftovers(placement: Placement, *, note: str, container: bool = True, folder: bool = True) -> None:
    """What a placement left on a server Berth could not clean (offline, gone, or given up on),
    listed for an operator."""
    OrphanContainer.objects.create(
        server_id=placement.server_id, workspace_id=placement.workspace_id,
        container_name=f"berth-{placement.workspace_id}" if container else "",
        container_id=placement.container_id if container else "",
        data_path=placement.data_path if folder else "", note=note[:300],
    )


def _abandon(placement: Placement) -> None:
    """The old server cannot take the workspace back: list what is left there for an operator."""
    record_leftovers(placement, note="left behind when the workspace was placed on another server")
    placement.delete()


@dataclass(frozen=True)
class Reservation:
    """A recorded Placement. `holds_room` is False for a new one: its room is added to the server's
    counters by `take_room`, which the caller runs last in its transaction."""

    placement: Placement
    holds_room: bool


def reserve(workspace) -> tuple[Reservation | None, str]:
    """Choose a server for `workspace` and record the Placement, or return (None, why it waits).

    Callers owe: an open transaction, a workspace they own exclusively (its status moved to
    `placing` by compare-and-set), and for a reservation without `holds_room`, a `take_room` call
    as their last statement before the commit (rolling back when it fails). A placement kept from
    before takes its room here: retries are rare, and its server is given, not chosen."""
    assert transaction.get_connection().in_atomic_block, "reserve() must run inside a transaction"
    request = Request(cpu=Decimal(workspace.cpu), memory_mb=workspace.memory_mb, region=workspace.region)
    # Read here, after the caller's compare-and-set, never from what was loaded before it: the
    # workspace may have been placed, failed and retried in between.
    previous = Placement.objects.select_related("server").filter(workspace=workspace).first()
    if previous is not None:
        if previous.released is False or _keep_on_same_server(previous, request):
            return Reservation(previous, holds_room=True), previous.reason
        _abandon(previous)
    policy = effective_policy(workspace.organization)
    if policy is not None and policy.strategy == PlacementStrategy.ROUND_ROBIN:
        policy = PlacementPolicy.objects.select_for_update().get(pk=policy.pk)
    servers = list(_with_room(Server.objects.all(), request).order_by("pk"))
    if len(servers) > 1:
        # A choice between servers must see every reservation committed before it, or a burst of
        # concurrent placements would all pick the same "least loaded" one: lock the candidates
        # (in primary-key order) and read them again. With one candidate there is nothing to
        # choose, and take_room's condition alone keeps the server from being overcommitted.
        servers = list(
            _with_room(Server.objects.select_for_update().filter(pk__in=[s.pk for s in servers]), request).order_by("pk")
        )
    decision = choose(
        [Candidate.of(server) for server in servers],
        request,
        strategy=policy.strategy if policy else PlacementStrategy.LEAST_LOADED,
        preferred_regions=policy.preferred_regions if policy else (),
        label_selector=policy.label_selector if policy else {},
        cursor=policy.round_robin_cursor if policy else 0,
        policy_name=f"policy {policy.name}" if policy else "built-in least loaded",
    )
    if decision.candidate is None:
        return None, decision.reason
    if decision.advances_cursor:
        PlacementPolicy.objects.filter(pk=policy.pk).update(round_robin_cursor=F("round_robin_cursor") + 1)
    server = next(s for s in servers if s.pk == decision.candidate.pk)
    placement = Placement.objects.create(
        workspace=workspace, server=server, data_path=data_path_for(server, workspace), reason=decision.reason,
        reserved_cpu=request.cpu, reserved_memory_mb=request.memory_mb,
    )
    return Reservation(placement, holds_room=False), decision.reason


def take_room(reservation: Reservation) -> bool:
    """Add a new placement's reservation to its server if the server, as committed right now, is
    still active with room. False: a concurrent placement took the last of it, so the caller rolls
    back and decides again on fresh numbers."""
    if reservation.holds_room:
        return True
    placement = reservation.placement
    return _take_room(placement.server_id, Request(cpu=placement.reserved_cpu, memory_mb=placement.reserved_memory_mb))


@transaction.atomic
def release(placement: Placement) -> bool:
    """Give the placement's reservation back to its server, exactly once (False if already done)."""
    if Placement.objects.filter(pk=placement.pk, released=False).update(released=True) != 1:
        return False
    Server.objects.filter(pk=placement.server_id).update(
        **_reservation_change(placement.reserved_cpu, placement.reserved_memory_mb, -1)
    )
    placement.released = True
    return True
