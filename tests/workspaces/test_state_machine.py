import itertools

import pytest

from workspaces.choices import IN_FLIGHT, WorkspaceStatus as S
from workspaces.models import TRANSITIONS, IllegalTransition, TransitionConflict, Workspace
from workspaces.state import transition


@pytest.fixture
def workspace(alice, acme, default_image):
    return Workspace.objects.create(organization=acme, owner=alice, name="demo", image=default_image, cpu=1, memory_mb=256)


LEGAL = sorted((old, new) for old, targets in TRANSITIONS.items() for new in targets)  # stable order for xdist
ILLEGAL = [(old, new) for old, new in itertools.product(S.values, S.values) if new not in TRANSITIONS[old]]


@pytest.mark.parametrize(("old", "new"), LEGAL)
def test_every_legal_transition_moves_the_row(workspace, old, new):
    Workspace.objects.filter(pk=workspace.pk).update(status=old)
    workspace.refresh_from_db()
    transition(workspace, new, message="because")
    workspace.refresh_from_db()
    assert workspace.status == new


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_every_illegal_transition_raises_and_leaves_the_row(workspace, old, new):
    Workspace.objects.filter(pk=workspace.pk).update(status=old)
    workspace.refresh_from_db()
    with pytest.raises(IllegalTransition):
        transition(workspace, new)
    workspace.refresh_from_db()
    assert workspace.status == old


def test_failed_is_reachable_from_every_in_flight_state():
    assert all(S.FAILED in TRANSITIONS[state] for state in IN_FLIGHT)


def test_a_stale_copy_loses_the_compare_and_set(workspace):
    stale = Workspace.objects.get(pk=workspace.pk)
    transition(workspace, S.PLACING)
    with pytest.raises(TransitionConflict):
        transition(stale, S.PLACING)
    workspace.refresh_from_db()
    assert workspace.status == S.PLACING


def test_failure_records_the_reason_and_retry_clears_it(workspace):
    transition(workspace, S.PLACING)
    transition(workspace, S.FAILED, reason="no server answered")
    workspace.refresh_from_db()
    assert workspace.failure_reason == "no server answered"
    transition(workspace, S.PENDING)
    workspace.refresh_from_db()
    assert workspace.failure_reason == ""


def test_deleted_is_final(workspace):
    Workspace.objects.filter(pk=workspace.pk).update(status=S.DELETED)
    workspace.refresh_from_db()
    for new in S.values:
        with pytest.raises(IllegalTransition):
            transition(workspace, new)
