"""`manage.py bootstrap`: a fresh Berth gets its organization, administrator, defaults and the local
Docker engine (real, on this machine) once; running it again changes nothing."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from infrastructure.choices import DockerEndpoint, PlacementStrategy, ServerStatus
from infrastructure.models import PlacementPolicy, Server
from infrastructure.remote import docker_transport
from tenants.choices import Role
from tenants.models import Membership, Organization, User
from workspaces.models import WorkspaceImage

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def bootstrap(*argv: str) -> str:
    out = StringIO()
    call_command("bootstrap", *argv, stdout=out)
    return out.getvalue()


def test_it_creates_everything_a_fresh_berth_needs(db, var_dir, docker_engine):
    output = bootstrap()
    organization = Organization.objects.get(slug="default")
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert Membership.objects.get(user=admin, organization=organization).role == Role.OWNER
    assert PlacementPolicy.objects.get(is_default=True).strategy == PlacementStrategy.LEAST_LOADED
    assert WorkspaceImage.objects.get(is_default=True).reference == "berth/workspace:bookworm"
    server = Server.objects.get(name="local")
    assert server.docker_endpoint == DockerEndpoint.LOCAL and server.status == ServerStatus.ACTIVE
    assert server.storage_root == str(var_dir.resolve() / "workspaces") and Path(server.storage_root).is_dir()
    password = output.split("password: ", 1)[1].split()[0]
    assert admin.check_password(password)
    assert AuditEvent.objects.filter(action="organization.create", target_id=str(organization.pk)).exists()


def test_running_it_again_changes_nothing(db, docker_engine):
    bootstrap()
    rows = [model.objects.count() for model in (Organization, User, Membership, PlacementPolicy, WorkspaceImage, Server)]
    events = AuditEvent.objects.count()
    output = bootstrap()
    assert "nothing to create" in output and "password" not in output
    assert rows == [model.objects.count() for model in (Organization, User, Membership, PlacementPolicy, WorkspaceImage, Server)]
    assert AuditEvent.objects.count() == events


def test_the_administrator_comes_from_the_environment(db, monkeypatch, docker_engine):
    monkeypatch.setenv("BERTH_ADMIN_USERNAME", "root-admin")
    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", "from-the-environment")
    output = bootstrap()
    assert User.objects.get(username="root-admin").check_password("from-the-environment")
    assert "from-the-environment" not in output


def test_flags_win_and_an_existing_password_is_kept(db, docker_engine):
    bootstrap("--username", "ops", "--password", "first-password")
    bootstrap("--username", "ops", "--password", "second-password")
    assert User.objects.get(username="ops").check_password("first-password")


def test_existing_defaults_are_left_alone(db, default_image, docker_engine):
    PlacementPolicy.objects.create(name="mine", strategy=PlacementStrategy.ROUND_ROBIN, is_default=True)
    bootstrap()
    assert list(PlacementPolicy.objects.values_list("name", flat=True)) == ["mine"]
    assert list(WorkspaceImage.objects.values_list("pk", flat=True)) == [default_image.pk]


def test_without_a_local_engine_it_sets_up_the_rest_and_says_so(db, monkeypatch, tmp_path):
    monkeypatch.setattr(docker_transport, "LOCAL_DOCKER_URL", f"unix://{tmp_path}/no-docker.sock")
    output = bootstrap()
    assert "no Docker engine answers" in output
    assert not Server.objects.exists()
    assert Organization.objects.filter(slug="default").exists()
    assert WorkspaceImage.objects.filter(is_default=True).exists()
