"""Secrets at rest: encrypted and bound to their row, rotatable, and never shown, logged or copied."""

import logging

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import AuditEvent
from infrastructure import crypto, remote, services
from infrastructure.choices import CredentialKind
from infrastructure.models import Server, ServerCredential
from tests.fixtures.ssh import make_ssh_key
from tests.fixtures.tls import issue, make_ca

pytestmark = [pytest.mark.ssh, pytest.mark.docker]
SENTINEL = "sentinel-Zq81-never-shown"


def test_a_stored_key_decrypts_to_what_was_given(ssh_server, sshd):
    credential = ssh_server.credentials.get(kind=CredentialKind.SSH_KEY)

    stored = credential.get_secret("private_key")

    assert credential.encrypted_private_key.startswith("v1:")
    assert crypto.parse_ssh_private_key(stored).fingerprint == crypto.parse_ssh_private_key(sshd.client_key).fingerprint


def test_a_ciphertext_copied_to_another_row_or_field_does_not_decrypt(ssh_server, operator, tmp_path):
    other, _ = services.register_server(
        actor=operator, fields={"name": "other", "host": "127.0.0.2", "storage_root": str(tmp_path)},
        ssh_key={"private_key": make_ssh_key(tmp_path / "k", passphrase="pw"), "passphrase": "pw"},
    )
    source = ssh_server.credentials.get(kind=CredentialKind.SSH_KEY)
    target = other.credentials.get(kind=CredentialKind.SSH_KEY)
    ServerCredential.objects.filter(pk=target.pk).update(encrypted_private_key=source.encrypted_private_key,
                                                         encrypted_passphrase=source.encrypted_private_key)
    target.refresh_from_db()

    with pytest.raises(crypto.DecryptionError):
        target.get_secret("private_key")
    with pytest.raises(crypto.DecryptionError):
        target.get_secret("passphrase")
    with pytest.raises(remote.AuthenticationError, match="cannot be decrypted"):
        remote.run_command(other, ["true"])


def test_after_rotation_the_old_key_can_be_removed(ssh_server, operator, settings, tmp_path):
    services.set_tls_bundle(ssh_server, actor=operator, **_bundle())
    old = list(settings.BERTH_ENCRYPTION_KEYS)
    new = crypto.generate_key()

    settings.BERTH_ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.DecryptionError):
        ssh_server.credentials.get(kind=CredentialKind.SSH_KEY).get_secret("private_key")

    settings.BERTH_ENCRYPTION_KEYS = [new, *old]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))
    settings.BERTH_ENCRYPTION_KEYS = [new]

    for credential in ServerCredential.objects.all():
        for field in ServerCredential.ENCRYPTED_FIELDS:
            if credential.secret_is_set(field):
                assert credential.get_secret(field)
                assert not crypto.needs_rotation(getattr(credential, f"encrypted_{field}"))
    remote.forget_server(ssh_server.pk)
    assert remote.run_command(ssh_server, ["true"]).exit_code == 0
    assert AuditEvent.objects.filter(action="secrets.rotate").exists()


def _bundle(**overrides):
    ca = make_ca("ca")
    client = issue(ca, "client")
    return {"ca_cert": ca[0].cert, "client_cert": client.cert, "client_key": client.key} | overrides


def _texts_in_database() -> str:
    """Every row of every table as text: the sentinel must be in none of them, the credential table
    included (it holds only ciphertext there)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - table names from introspection
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def test_no_secret_appears_in_responses_pages_logs_or_other_tables(
    api_client_for, client, operator, sshd, tmp_path, caplog, django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    protected = make_ssh_key(tmp_path / "sentinel", passphrase=SENTINEL)
    (sshd.directory / "authorized_keys").write_text((tmp_path / "sentinel.pub").read_text())
    key_body = protected.splitlines()[2]
    bundle = _bundle()
    tls_key_body = bundle["client_key"].splitlines()[2]
    api = api_client_for(operator)
    responses = []

    created = api.post("/api/v1/servers/", {
        "name": "secretive", "host": sshd.host, "ssh_port": sshd.port, "storage_root": str(tmp_path),
        "expected_host_key_fingerprint": sshd.ssh_keygen_fingerprint(),
        "credential": {"kind": "ssh_key", "private_key": protected, "passphrase": SENTINEL},
    }, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/servers/{created.json()['id']}/"
    server = Server.objects.get(pk=created.json()["id"])
    services.set_tls_bundle(server, actor=operator, **bundle)
    with django_capture_on_commit_callbacks(execute=True):
        responses.append(api.post(url + "test/", {}, format="json"))
    services.check_server_health(server)
    bad = api.patch(url, {"credential": {"kind": "ssh_key", "private_key": protected, "passphrase": SENTINEL + "x"}},
                    format="json")
    assert bad.status_code == 400
    bad_html = api.post("/api/v1/servers/", {"name": "again", "host": sshd.host, "storage_root": "relative", "credential": {
        "kind": "ssh_key", "private_key": protected, "passphrase": SENTINEL}}, format="json", HTTP_ACCEPT="text/html")
    assert bad_html.status_code == 400 and bad_html["Content-Type"].startswith("text/html")
    responses += [created, bad, bad_html, api.get(url, HTTP_ACCEPT="text/html"), api.get(url), api.get("/api/v1/servers/"), api.get("/api/v1/audit-events/")]
    client.force_login(operator)
    credential = server.credentials.get(kind=CredentialKind.SSH_KEY)
    pages = [client.get(path) for path in (
        "/admin/infrastructure/server/", f"/admin/infrastructure/server/{server.pk}/change/",
        "/admin/infrastructure/servercredential/", f"/admin/infrastructure/servercredential/{credential.pk}/change/",
        "/admin/audit/auditevent/",
    )]

    assert Server.objects.get(pk=server.pk).status == "active", Server.objects.get(pk=server.pk).last_test
    for response in responses + pages:
        assert response.status_code in (200, 201, 202, 400), (response.status_code, getattr(response, "url", ""))
        text = response.content.decode()
        for secret in (SENTINEL, key_body, tls_key_body):
            assert secret not in text
    for secret in (SENTINEL, key_body, tls_key_body):
        assert secret not in caplog.text
        assert secret not in _texts_in_database()
