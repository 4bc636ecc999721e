"""First-run set-up (`manage.py bootstrap`): everything a fresh Berth needs to be usable at once.

Idempotent: each step creates what is missing and leaves what exists alone (an existing admin keeps
its password), so `make run` can call it on every start."""

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

import audit.services as audit
from infrastructure import remote
from infrastructure.choices import PlacementStrategy
from infrastructure.models import PlacementPolicy, Server
from infrastructure.services import register_local_server
from workspaces.models import WorkspaceImage

from .choices import Role
from .models import Membership, Organization, User

log = logging.getLogger(__name__)

DEFAULT_ORGANIZATION_SLUG = "default"
LOCAL_SERVER_NAME = "local"


@dataclass
class BootstrapReport:
    created: list[str] = field(default_factory=list)
    generated_password: str = ""  # set only when the admin was created with a generated password
    local_server: str = ""  # why the local engine was or was not registered


def bootstrap(*, username: str, password: str = "", email: str = "") -> BootstrapReport:
    report = BootstrapReport()
    admin = _ensure_defaults(report, username=username, password=password, email=email)
    # Outside the transaction above: registration is a durable service of its own and talks to Docker.
    report.local_server = _register_local_engine(actor=admin)
    return report


@transaction.atomic
def _ensure_defaults(report: BootstrapReport, *, username: str, password: str, email: str) -> User:
    organization, created = Organization.objects.get_or_create(
        slug=DEFAULT_ORGANIZATION_SLUG, defaults={"name": "Default"}
    )
    if created:
        audit.record(actor=None, action="organization.create", target=organization, message="bootstrap")
        report.created.append(f"organization {organization.slug}")

    admin = User.objects.filter(username=username).first()
    if admin is None:
        if not password:
            password = report.generated_password = secrets.token_urlsafe(18)
        admin = User.objects.create_superuser(username=username, email=email, password=password)
        audit.record(actor=None, action="user.create", target=admin, message="bootstrap: administrator")
        report.created.append(f"administrator {username}")
    membership, created = Membership.objects.get_or_create(
        user=admin, organization=organization, defaults={"role": Role.OWNER}
    )
    if created:
        audit.record(actor=None, action="membership.create", target=membership, organization=organization)
        report.created.append(f"{username} as owner of {organization.slug}")

    if not PlacementPolicy.objects.filter(is_default=True).exists():
        policy = PlacementPolicy.objects.create(name="default", strategy=PlacementStrategy.LEAST_LOADED, is_default=True)
        audit.record(actor=None, action="placement_policy.create", target=policy, message="bootstrap")
        report.created.append("default placement policy (least loaded)")

    if not WorkspaceImage.objects.filter(is_default=True).exists():
        image = WorkspaceImage.objects.create(
            name="Debian 12 (bookworm)", reference=settings.BERTH_DEFAULT_IMAGE, is_default=True,
            description="Debian bookworm with git, bash and an SSH client; user dev.",
        )
        audit.record(actor=None, action="workspace_image.create", target=image, message="bootstrap")
        report.created.append(f"default image {image.reference}")
    return admin


def _register_local_engine(*, actor: User) -> str:
    if Server.objects.filter(name=LOCAL_SERVER_NAME).exists():
        return f"server {LOCAL_SERVER_NAME} already registered"
    if not remote.local_engine_answers(timeout=5):
        return f"no Docker engine answers on {remote.LOCAL_DOCKER_URL}; register servers in the console"
    storage_root = Path(settings.VAR_DIR).resolve() / "workspaces"
    storage_root.mkdir(parents=True, exist_ok=True)
    server = register_local_server(name=LOCAL_SERVER_NAME, storage_root=str(storage_root), actor=actor)
    return f"registered the local Docker engine as server {server.name} ({server.get_status_display()})"

