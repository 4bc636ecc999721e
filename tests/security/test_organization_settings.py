"""An organization owner's settings reach shared machinery (the idle-stop sweep runs one query over
every organization), so a nonsense value is a 400, never stored: stored, a duration too large for
PostgreSQL's timestamps made the sweep fail for every tenant, and zero or negative stopped all of the
organization's workspaces at once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from infrastructure.models import PlacementPolicy
from tenants.models import Organization
from tests.fixtures.workspace_files import make_placed_workspace
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace
from workspaces.upkeep import stop_idle_workspaces


@pytest.mark.parametrize(("field", "value"), [
    ("idle_timeout", "-1 00:00:00"),
    ("idle_timeout", "00:00:00"),
    ("idle_timeout", "999999999 00:00:00"),
    ("deleted_data_retention", "-5 00:00:00"),
    ("deleted_data_retention", "999999999 00:00:00"),
])
def test_an_out_of_range_duration_is_refused(api_client_for, alice, acme, field, value):
    before = getattr(acme, field)
    response = api_client_for(alice).patch(f"/api/v1/organizations/{acme.pk}/", {field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    acme.refresh_from_db()
    assert getattr(acme, field) == before


@pytest.mark.parametrize(("field", "value"), [("idle_timeout", "00:05:00"), ("deleted_data_retention", "30 00:00:00")])
def test_a_sensible_duration_is_kept(api_client_for, alice, acme, field, value):
    response = api_client_for(alice).patch(f"/api/v1/organizations/{acme.pk}/", {field: value}, format="json")
    assert response.status_code == 200
    assert response.json()[field] == value


@pytest.mark.parametrize(("field", "value"), [
    ("max_workspace_cpu", "64"),
    ("max_workspace_memory_mb", 1_000_000),
    ("max_workspaces_per_user", 1000),
    ("placement_policy", "own"),
])
def test_an_owner_cannot_raise_the_organizations_limits_or_choose_its_policy(api_client_for, alice, acme, field, value):
    """Limits bind the organization, so only operators set them (in the console)."""
    if value == "own":
        value = PlacementPolicy.objects.create(name="reserved", strategy="round_robin").pk
    before = Organization.objects.filter(pk=acme.pk).values(field).get()

    response = api_client_for(alice).patch(f"/api/v1/organizations/{acme.pk}/", {field: value}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][field] == ["Set by Berth's operators in the console."]
    assert Organization.objects.filter(pk=acme.pk).values(field).get() == before


def test_one_organizations_idle_timeout_cannot_stop_the_sweep_for_others(placed_workspace, acme, charlie, globex,
                                                                         local_server, default_image):
    """Even a value stored around the API (console, shell) leaves other tenants' idle stop working."""
    Organization.objects.filter(pk=acme.pk).update(idle_timeout=timedelta(days=999_999_999))
    idle = make_placed_workspace(owner=charlie, organization=globex, server=local_server, image=default_image)
    Workspace.objects.filter(pk=idle.pk).update(last_activity_at=timezone.now() - timedelta(hours=3))
    assert stop_idle_workspaces() == 1
    idle.refresh_from_db()
    assert idle.status == WorkspaceStatus.STOPPING
