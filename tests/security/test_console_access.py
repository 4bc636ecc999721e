"""The operator console and the operator API against staff who are not superusers, and the audit log
against a forged bulk delete."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

import audit.services as audit
from audit.models import AuditEvent
from infrastructure import services as infrastructure
from infrastructure.models import ServerCredential
from tenants.models import User


@pytest.fixture
def staff(db):
    """Can sign in to the console, holds no permission and is no superuser."""
    return User.objects.create_user(username="staff", password="staff-password", is_staff=True)


@pytest.fixture
def server_with_key(operator):
    server, _ = infrastructure.register_server(
        actor=operator, generate_key=True,
        fields={"name": "edge", "host": "127.0.0.1", "ssh_port": 22, "ssh_user": "berth", "storage_root": "/srv/berth"},
    )
    return server


def test_staff_without_permissions_reach_no_server_credential_or_audit_page(client, staff, server_with_key):
    client.force_login(staff)
    credential = server_with_key.credentials.get()
    for url in [
        reverse("admin:infrastructure_server_changelist"),
        reverse("admin:infrastructure_server_change", args=[server_with_key.pk]),
        reverse("admin:infrastructure_servercredential_changelist"),
        reverse("admin:infrastructure_servercredential_change", args=[credential.pk]),
        reverse("admin:audit_auditevent_changelist"),
    ]:
        assert client.get(url).status_code == 403, url


def test_staff_get_no_operator_api(api_client_for, staff, server_with_key):
    client = api_client_for(staff)
    assert client.get("/api/v1/servers/").status_code == 403
    assert client.post(f"/api/v1/servers/{server_with_key.pk}/generate-key-pair/").status_code == 403
    assert client.post(f"/api/v1/servers/{server_with_key.pk}/api-key/").status_code == 403


def test_staff_allowed_to_view_credentials_see_no_secret(client, staff, server_with_key):
    staff.user_permissions.add(Permission.objects.get(codename="view_servercredential"))
    client.force_login(staff)
    credential = ServerCredential.objects.get(server=server_with_key)
    change = reverse("admin:infrastructure_servercredential_change", args=[credential.pk])
    for url in [reverse("admin:infrastructure_servercredential_changelist"), change]:
        page = client.get(url).content.decode()
        assert credential.fingerprint in page
        assert "PRIVATE KEY" not in page and credential.encrypted_private_key not in page
    assert client.post(change, {"encrypted_private_key": "x"}).status_code == 403


def test_a_forged_bulk_delete_of_audit_events_deletes_nothing(client, operator, alice):
    event = audit.record(actor=alice, action="workspace.create")
    client.force_login(operator)
    response = client.post(reverse("admin:audit_auditevent_changelist"),
                           {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert response.status_code in (200, 302, 403)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_staff_who_may_change_users_cannot_make_anyone_superuser(client, staff):
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client.force_login(staff)
    response = client.post(reverse("admin:tenants_user_change", args=[staff.pk]), {
        "username": "staff", "is_active": "on", "is_staff": "on", "is_superuser": "on",
        "user_permissions": [p.pk for p in Permission.objects.all()],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
    })
    assert response.status_code in (200, 302)
    staff.refresh_from_db()
    assert not staff.is_superuser
    assert staff.user_permissions.count() == 2
