"""The operator console for servers: registration form errors, write-only credentials, actions."""

import hashlib

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from audit.models import AuditEvent, canonical_json
from infrastructure.choices import ServerStatus
from infrastructure.models import Server
from tests.fixtures.ssh import make_ssh_key

pytestmark = [pytest.mark.ssh, pytest.mark.docker]
ADD = "/admin/infrastructure/server/add/"
LIST = "/admin/infrastructure/server/"


@pytest.fixture
def console(client, operator):
    client.force_login(operator)
    return client


def _form(sshd, tmp_path, **overrides):
    return {
        "name": "edge-9", "host": sshd.host, "ssh_port": sshd.port, "ssh_user": "root", "docker_endpoint": "ssh",
        "docker_url": "", "storage_root": str(tmp_path), "region": "", "labels": "{}", "max_workspaces": 5,
        "cpu_cores": "2", "memory_mb": 4096, "expected_host_key_fingerprint": "", "private_key": sshd.client_key,
        "passphrase": "", "ca_cert": "", "client_cert": "", "client_key": "",
        "credentials-TOTAL_FORMS": "0", "credentials-INITIAL_FORMS": "0",
    } | overrides


@pytest.mark.parametrize("overrides,field", [
    ({"private_key": "garbage"}, "private_key"),
    ({"private_key": ""}, "private_key"),
    ({"storage_root": "relative/path"}, "storage_root"),
    ({"docker_endpoint": "tls", "docker_url": "tcp://127.0.0.1:2376", "ca_cert": "nope"}, "ca_cert"),
    ({"docker_url": "tcp://127.0.0.1:2375"}, "docker_url"),
    ({"expected_host_key_fingerprint": "xx"}, "expected_host_key_fingerprint"),
])
def test_the_registration_form_names_the_bad_field(console, sshd, tmp_path, overrides, field):
    response = console.post(ADD, _form(sshd, tmp_path, **overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Server.objects.exists()


def test_a_form_returned_with_errors_does_not_echo_the_key(console, sshd, tmp_path):
    response = console.post(ADD, _form(sshd, tmp_path, storage_root="relative", passphrase="typed-secret"))

    assert response.context["adminform"].form.errors
    page = response.content.decode()
    assert sshd.client_key.splitlines()[2] not in page and "typed-secret" not in page


def test_the_weak_key_error_is_shown_on_the_form(console, sshd, tmp_path):
    weak = make_ssh_key(tmp_path / "weak", kind="rsa", bits=2048)

    response = console.post(ADD, _form(sshd, tmp_path, private_key=weak))

    assert "at least 3072 bits" in response.context["adminform"].form.errors["private_key"][0]


def test_registering_in_the_console_is_audited_and_never_echoes_the_key(console, operator, sshd, tmp_path):
    response = console.post(ADD, _form(sshd, tmp_path))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    server = Server.objects.get(name="edge-9")
    assert server.status == ServerStatus.UNVERIFIED
    assert AuditEvent.objects.filter(action="server.register", actor=operator, target_id=str(server.pk)).exists()
    page = console.get(f"{LIST}{server.pk}/change/").content.decode()
    assert sshd.client_key.splitlines()[2] not in page
    assert server.credentials.get().fingerprint in page


def test_console_actions_test_trust_and_drain(console, operator, sshd, tmp_path, django_capture_on_commit_callbacks):
    console.post(ADD, _form(sshd, tmp_path))
    server = Server.objects.get(name="edge-9")
    selected = {ACTION_CHECKBOX_NAME: [server.pk]}

    with django_capture_on_commit_callbacks(execute=True):
        console.post(LIST, {"action": "test_connection", **selected})
    server.refresh_from_db()
    confirm = console.post(LIST, {"action": "trust_offered_host_key", **selected})
    assert sshd.ssh_keygen_fingerprint() in confirm.content.decode()
    server.refresh_from_db()
    assert server.host_key == "", "nothing is trusted before the operator confirms"

    with django_capture_on_commit_callbacks(execute=True):
        console.post(LIST, {"action": "trust_offered_host_key", "confirm": "yes",
                            f"fingerprint-{server.pk}": sshd.ssh_keygen_fingerprint(), **selected})
    server.refresh_from_db()
    assert server.status == ServerStatus.ACTIVE, server.last_test
    page = console.get(f"{LIST}{server.pk}/change/").content.decode()
    assert "Last test steps" in page and "accepts TCP connections" in page

    console.post(LIST, {"action": "drain", **selected})
    server.refresh_from_db()
    assert server.status == ServerStatus.DRAINING
    assert AuditEvent.objects.filter(action="server.drain", actor=operator).exists()
    listing = console.get(LIST).content.decode()
    assert "Draining" in listing and server.host_key_fingerprint in listing


def test_the_other_console_pages_render(console, ssh_server):
    for path in ("/admin/infrastructure/servercredential/", "/admin/infrastructure/placementpolicy/",
                 "/admin/infrastructure/placement/", "/admin/infrastructure/resourceusage/",
                 "/admin/infrastructure/orphancontainer/", "/admin/infrastructure/placementpolicy/add/"):
        assert console.get(path).status_code == 200, path


def test_a_console_edit_audits_the_fields_it_changed(console, operator, sshd, tmp_path):
    console.post(ADD, _form(sshd, tmp_path))
    server = Server.objects.get(name="edge-9")

    response = console.post(f"{LIST}{server.pk}/change/", _form(sshd, tmp_path, region="eu", private_key=""))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    server.refresh_from_db()
    assert server.region == "eu"
    event = AuditEvent.objects.get(action="server.update", actor=operator, target_id=str(server.pk))
    assert event.change_hash == hashlib.sha256(canonical_json({"region": "eu"}).encode()).hexdigest()
