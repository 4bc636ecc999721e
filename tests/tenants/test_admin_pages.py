"""The operator console: every registered model's pages load for a superuser, audit events are
read-only for everyone, and no secret ever reaches a page."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import NoReverseMatch, get_resolver, reverse
from django.utils import timezone

import audit.services as audit
from audit.models import AuditEvent
from infrastructure.choices import CredentialKind, DockerEndpoint, ServerStatus
from infrastructure.models import (
    OrphanContainer,
    Placement,
    PlacementPolicy,
    ResourceUsage,
    Server,
    ServerCredential,
)
from tenants.models import Organization
from tenants.services import issue_api_token
from workspaces.models import Workspace

SECRET_SENTINEL = "SENTINEL-PRIVATE-KEY-4f1d"
REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def console_world(operator, alice, acme, default_image):
    """One row of every model, so each change page has something to show. Returns the secrets
    that must never appear on a page."""
    _, raw_token = issue_api_token(alice, name="laptop", expires_in=None)
    Group.objects.create(name="operators")
    server = Server.objects.create(
        name="edge-1", host="127.0.0.1", docker_endpoint=DockerEndpoint.LOCAL, storage_root="/srv/berth",
        status=ServerStatus.ACTIVE, reserved_workspaces=1, max_workspaces=10,
    )
    credential = ServerCredential(server=server, kind=CredentialKind.SSH_KEY, fingerprint="SHA256:abc",
                                  expires_at=timezone.now() + timedelta(days=3))
    credential.set_secret("private_key", SECRET_SENTINEL)
    credential.set_secret("passphrase", SECRET_SENTINEL + "-pass")
    credential.save()
    PlacementPolicy.objects.create(name="eu first", preferred_regions=["eu"])
    workspace = Workspace.objects.create(organization=acme, owner=alice, name="demo", image=default_image, cpu=1, memory_mb=256)
    Placement.objects.create(workspace=workspace, server=server, data_path="/srv/berth/acme/x", reserved_cpu=1, reserved_memory_mb=256)
    ResourceUsage.objects.create(workspace=workspace, server=server, sampled_at=timezone.now(), cpu_percent=1.5, memory_bytes=1024)
    OrphanContainer.objects.create(server=server, container_name="berth-orphan")
    audit.record(actor=alice, action="workspace.create", target=workspace)
    return [SECRET_SENTINEL, raw_token, alice.api_tokens.get().digest, credential.encrypted_private_key]


def page_text(response) -> str:
    assert response.status_code == 200, f"{response.request['PATH_INFO']} answered {response.status_code}"
    return response.content.decode()


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_every_admin_page_loads_and_shows_no_secret(client, operator, console_world, model):
    client.force_login(operator)
    info = model._meta.app_label, model._meta.model_name
    assert_no_secret(page_text(client.get(reverse("admin:%s_%s_changelist" % info))), console_world)
    row = model._default_manager.first()
    assert row is not None, f"add a {model._meta.label} row to console_world"
    assert_no_secret(page_text(client.get(reverse("admin:%s_%s_change" % info, args=[row.pk]))), console_world)
    if admin.site._registry[model].has_add_permission(_request_of(operator)):
        assert_no_secret(page_text(client.get(reverse("admin:%s_%s_add" % info))), console_world)


def _request_of(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_the_dashboard_shows_capacity_workspaces_expiring_credentials_and_events(client, operator, console_world):
    client.force_login(operator)
    response = client.get(reverse("admin:index"))
    text = page_text(response)
    dashboard = response.context["dashboard"]
    assert [(row["status"], row["workspaces_used"], row["workspaces_total"]) for row in dashboard["servers_by_status"]] == [
        ("active", 1, 10)
    ]
    assert [(row["status"], row["count"]) for row in dashboard["workspaces_by_status"]] == [("pending", 1)]
    assert [credential.fingerprint for credential in dashboard["expiring_credentials"]] == ["SHA256:abc"]
    assert "workspace.create" in text and "SHA256:abc" in text and "1 / 10" in text
    assert_no_secret(text, console_world)


def test_the_dashboard_costs_a_fixed_number_of_queries(client, operator, console_world, django_assert_max_num_queries):
    client.force_login(operator)
    with django_assert_max_num_queries(12):
        page_text(client.get(reverse("admin:index")))


def test_audit_events_are_read_only_even_for_superusers(client, operator, console_world):
    client.force_login(operator)
    event = AuditEvent.objects.first()
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_delete", args=[event.pk])).status_code == 403
    response = client.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "nothing.happened"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.action == "workspace.create"
    changelist = page_text(client.get(reverse("admin:audit_auditevent_changelist")))
    assert "delete_selected" not in changelist


def test_operators_revoke_tokens_from_the_console(client, operator, alice, console_world):
    token = alice.api_tokens.get()
    client.force_login(operator)
    response = client.post(
        reverse("admin:tenants_apitoken_changelist"), {"action": "revoke", "_selected_action": [str(token.pk)]}, follow=True
    )
    assert "revoked" in page_text(response)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", actor=operator, target_id=str(token.pk)).exists()


def test_people_who_are_not_staff_are_sent_to_sign_in(client, alice):
    client.force_login(alice)
    assert client.get(reverse("admin:index")).status_code == 302


def api_list_routes() -> list[str]:
    """Every router-generated list URL under /api/v1/ (each app's routes are picked up as they land)."""
    names = {name for name in get_resolver().reverse_dict if isinstance(name, str) and name.endswith("-list")}
    routes = []
    for name in sorted(names):
        try:
            url = reverse(name)
        except NoReverseMatch:  # a list route that needs arguments (nested) is not a top-level collection
            continue
        if url.startswith("/api/v1/"):
            routes.append(url)
    return routes


def test_no_api_list_shows_a_secret(api_client_for, operator, alice, console_world):
    routes = api_list_routes()
    assert "/api/v1/api-tokens/" in routes and "/api/v1/audit-events/" in routes
    for user in (operator, alice):
        client = api_client_for(user)
        for url in routes:
            response = client.get(url)
            assert response.status_code in (200, 403), f"{url}: {response.status_code}"
            assert_no_secret(response.content.decode(), console_world)


def test_an_operator_creates_an_organization_with_its_owner_and_it_is_audited(client, operator, alice):
    client.force_login(operator)
    response = client.post(reverse("admin:tenants_organization_add"), {
        "name": "Initech", "slug": "initech", "idle_timeout": "01:00:00", "max_workspace_cpu": "2",
        "max_workspace_memory_mb": "4096", "max_workspaces_per_user": "5",
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0",
        "memberships-0-user": str(alice.pk), "memberships-0-role": "owner",
    })
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    organization = Organization.objects.get(slug="initech")
    assert alice.memberships.get(organization=organization).role == "owner"
    actions = set(AuditEvent.objects.filter(actor=operator, organization=organization).values_list("action", flat=True))
    assert actions == {"organization.create", "membership.create"}


def test_console_edits_are_audited_by_field_name_never_by_value(client, operator, alice):
    client.force_login(operator)
    response = client.post(reverse("admin:tenants_user_change", args=[alice.pk]), {
        "username": "alice", "email": "sentinel-address@example.test", "is_active": "on",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": str(alice.memberships.get().pk), "memberships-0-user": str(alice.pk),
        "memberships-0-organization": str(alice.memberships.get().organization_id), "memberships-0-role": "owner",
        "memberships-0-DELETE": "on",
    })
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert not alice.memberships.exists()
    events = AuditEvent.objects.filter(actor=operator)
    assert set(events.values_list("action", flat=True)) == {"user.change", "membership.delete"}
    assert "sentinel-address" not in repr(list(events.values()))
