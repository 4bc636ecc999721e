"""Shared fixtures. Personas: alice owns acme, bob is a member of acme, charlie owns globex, auditor
(dora) audits acme, operator is a superuser.
Each fixture creates exactly one object; related objects come from other fixtures."""

import pytest
from rest_framework.test import APIClient

from tenants.choices import Role
from tenants.models import Membership, Organization, User
from tenants.services import issue_api_token
from workspaces.models import WorkspaceImage

# Fixture modules, one per area (each owned by the part of the code it serves).
pytest_plugins = [
    "tests.fixtures.docker", "tests.fixtures.servers", "tests.fixtures.ssh", "tests.fixtures.tls",
    "tests.fixtures.workspace_files",
]


@pytest.fixture
def acme(db):
    return Organization.objects.create(name="Acme", slug="acme")


@pytest.fixture
def globex(db):
    return Organization.objects.create(name="Globex", slug="globex")


def _person(username: str, organization: Organization, role: str) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-password", email=f"{username}@example.test")
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


@pytest.fixture
def alice(acme):
    return _person("alice", acme, Role.OWNER)


@pytest.fixture
def bob(acme):
    return _person("bob", acme, Role.MEMBER)


@pytest.fixture
def charlie(globex):
    return _person("charlie", globex, Role.OWNER)


@pytest.fixture
def auditor(acme):
    """dora: reads acme's workspaces and audit log, changes nothing."""
    return _person("dora", acme, Role.AUDITOR)


@pytest.fixture
def operator(db):
    """A superuser: operates servers, belongs to no organization."""
    return User.objects.create_superuser(username="operator", password="operator-password", email="op@example.test")


@pytest.fixture
def api_client_for(db):
    """api_client_for(user) -> an APIClient authenticated with a fresh hashed token of that user."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            _, raw = issue_api_token(user, name="tests", expires_in=None)
            client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        return client

    return make


@pytest.fixture
def default_image(db):
    return WorkspaceImage.objects.create(
        name="Debian 12 with git", reference="berth/workspace:bookworm", is_default=True,
        default_cpu=1, default_memory_mb=256, max_cpu=2, max_memory_mb=2048,
    )
