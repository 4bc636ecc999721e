"""/api/v1/servers/ and /api/v1/placement-policies/: operators only, write-only secrets, clear 400s."""

import hashlib
import subprocess

import pytest

from audit.models import AuditEvent, canonical_json
from infrastructure.choices import ServerStatus
from infrastructure.models import PlacementPolicy, Server
from tests.api_contract import assert_audited
from tests.fixtures.ssh import make_ssh_key
from tests.fixtures.tls import issue, make_ca

pytestmark = [pytest.mark.ssh, pytest.mark.docker]
URL = "/api/v1/servers/"


@pytest.fixture
def payload(sshd, tmp_path):
    return {
        "name": "edge-1", "host": sshd.host, "ssh_port": sshd.port, "ssh_user": "root", "docker_endpoint": "ssh",
        "storage_root": str(tmp_path), "region": "eu", "labels": {"tier": "fast"},
        "max_workspaces": 10, "cpu_cores": "4.00", "memory_mb": 8192,
        "credential": {"kind": "ssh_key", "private_key": sshd.client_key},
    }


@pytest.fixture
def op_client(api_client_for, operator):
    return api_client_for(operator)


@pytest.mark.parametrize("method,path", [("get", ""), ("post", "")])
def test_members_of_an_organization_get_403_with_a_message(api_client_for, alice, method, path):
    response = getattr(api_client_for(alice), method)(URL + path, {}, format="json")
    assert response.status_code == 403
    assert "operators" in response.json()["detail"]


def test_anonymous_gets_401(api_client_for, db):
    assert api_client_for(None).get(URL).status_code == 401


def test_an_operator_registers_tests_and_trusts_a_server(op_client, operator, payload, sshd,
                                                         django_capture_on_commit_callbacks):
    created = op_client.post(URL, payload, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "unverified"
    assert "credential" not in body and "private_key" not in created.content.decode()
    assert body["credentials"][0]["kind"] == "ssh_key"
    assert body["credentials"][0]["fingerprint"].startswith("SHA256:")
    assert_audited("server.register", actor=operator, target_id=body["id"])
    detail = f"{URL}{body['id']}/"

    with django_capture_on_commit_callbacks(execute=True):
        assert op_client.post(detail + "test/", {}, format="json").status_code == 202
    server = op_client.get(detail).json()
    assert server["offered_host_key_fingerprint"] == sshd.ssh_keygen_fingerprint()
    assert any(step["name"] == "host_key" and step["result"] == "new" for step in server["last_test"])

    wrong = op_client.post(detail + "trust-host-key/", {"fingerprint": "SHA256:nope"}, format="json")
    assert wrong.status_code == 400 and "fingerprint" in wrong.json()["errors"]

    with django_capture_on_commit_callbacks(execute=True):
        trusted = op_client.post(detail + "trust-host-key/", {"fingerprint": sshd.ssh_keygen_fingerprint()}, format="json")
    assert trusted.status_code == 200, trusted.content
    server = op_client.get(detail).json()
    assert server["status"] == "active", server["last_test"]
    assert server["host_key_fingerprint"] == sshd.ssh_keygen_fingerprint()
    assert_audited("server.trust_host_key", actor=operator, target_id=body["id"])


def test_a_non_operator_cannot_trust_a_host_key(api_client_for, bob, ssh_server):
    response = api_client_for(bob).post(f"{URL}{ssh_server.pk}/trust-host-key/", {"fingerprint": "x"}, format="json")
    assert response.status_code == 403


def test_drain_retire_and_reactivate_are_audited(op_client, operator, ssh_server, django_capture_on_commit_callbacks):
    detail = f"{URL}{ssh_server.pk}/"

    assert op_client.post(detail + "drain/").json()["status"] == "draining"
    assert_audited("server.drain", actor=operator, target_id=ssh_server.pk)
    assert op_client.post(detail + "activate/").json()["status"] == "active"
    assert_audited("server.activate", actor=operator, target_id=ssh_server.pk)
    assert op_client.post(detail + "retire/").json()["status"] == "retired"
    assert_audited("server.retire", actor=operator, target_id=ssh_server.pk)
    again = op_client.post(detail + "drain/")
    assert again.status_code == 409 and "retired" in again.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        assert op_client.post(detail + "activate/").json()["status"] == "unverified"
    assert op_client.get(detail).json()["status"] == "active", "reactivating re-verifies with a connection test"


def test_there_is_no_delete_only_retire(op_client, ssh_server):
    assert op_client.delete(f"{URL}{ssh_server.pk}/").status_code == 405
    assert Server.objects.filter(pk=ssh_server.pk).exists()


def test_address_and_endpoint_cannot_change_after_registration(op_client, ssh_server):
    response = op_client.patch(f"{URL}{ssh_server.pk}/", {"host": "127.0.0.9"}, format="json")
    assert response.status_code == 400 and "host" in response.json()["errors"]
    assert op_client.patch(f"{URL}{ssh_server.pk}/", {"region": "us"}, format="json").json()["region"] == "us"


def test_an_update_audits_only_what_changed_and_a_no_op_nothing(op_client, operator, ssh_server):
    detail = f"{URL}{ssh_server.pk}/"
    same = {"region": ssh_server.region, "max_workspaces": ssh_server.max_workspaces}
    assert op_client.patch(detail, same, format="json").status_code == 200
    assert not AuditEvent.objects.filter(action="server.update", target_id=str(ssh_server.pk)).exists()

    assert op_client.patch(detail, {**same, "region": "us"}, format="json").status_code == 200

    event = assert_audited("server.update", actor=operator, target_id=ssh_server.pk)
    assert event.change_hash == hashlib.sha256(canonical_json({"region": "us"}).encode()).hexdigest()


def test_generate_key_pair_returns_the_public_line_and_its_ssh_keygen_fingerprint(op_client, operator, ssh_server,
                                                                                    tmp_path):
    response = op_client.post(f"{URL}{ssh_server.pk}/generate-key-pair/")

    assert response.status_code == 200
    line = response.json()["public_key"]
    assert line.startswith("ssh-ed25519 ")
    (tmp_path / "k.pub").write_text(line + "\n")
    keygen = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True)
    credential = op_client.get(f"{URL}{ssh_server.pk}/").json()["credentials"][0]
    assert credential["fingerprint"] == keygen.stdout.split()[1]
    assert_audited("server.credential_set", actor=operator, target_id=ssh_server.pk)


def test_an_agent_api_key_is_shown_once_and_stored_as_a_digest(op_client, ssh_server):
    response = op_client.post(f"{URL}{ssh_server.pk}/api-key/")

    assert response.status_code == 201
    raw = response.json()["api_key"]
    assert raw.startswith("berth_agent_")
    credential = ssh_server.credentials.get(kind="api_key")
    assert raw not in credential.api_key_digest and len(credential.api_key_digest) == 64
    assert raw not in op_client.get(f"{URL}{ssh_server.pk}/").content.decode()


def _key(tmp_path, name, **kwargs):
    return make_ssh_key(tmp_path / name, **kwargs)


def _tls_payload(payload, **bundle):
    ca = make_ca("ca")
    client = issue(ca, "client")
    tls = {"ca_cert": ca[0].cert, "client_cert": client.cert, "client_key": client.key} | bundle
    return payload | {"docker_endpoint": "tls", "docker_url": "tcp://127.0.0.1:2376", "docker_tls": tls}


def _malformed_cases(tmp_path, payload):
    ca = make_ca("ca")
    other = issue(ca, "other")
    expired = issue(ca, "old", days=-1)
    leaf_as_ca = issue(ca, "not-a-ca")
    encrypted = _key(tmp_path, "enc", passphrase="right horse")
    return {
        "garbage key": (payload | {"credential": {"kind": "ssh_key", "private_key": "not a key"}},
                        ["credential", "private_key"]),
        "weak rsa": (payload | {"credential": {"kind": "ssh_key", "private_key": _key(tmp_path, "rsa", kind="rsa", bits=2048)}},
                     ["credential", "private_key"]),
        "missing passphrase": (payload | {"credential": {"kind": "ssh_key", "private_key": encrypted}},
                               ["credential", "passphrase"]),
        "wrong passphrase": (payload | {"credential": {"kind": "ssh_key", "private_key": encrypted, "passphrase": "nope"}},
                             ["credential", "passphrase"]),
        "needless passphrase": (payload | {"credential": {"kind": "ssh_key", "private_key": _key(tmp_path, "plain"),
                                                          "passphrase": "x"}}, ["credential", "passphrase"]),
        "no credential": ({k: v for k, v in payload.items() if k != "credential"}, ["credential"]),
        "unknown kind": (payload | {"credential": {"kind": "password", "private_key": "x"}}, ["credential", "kind"]),
        "tls without bundle": (payload | {"docker_endpoint": "tls", "docker_url": "tcp://127.0.0.1:2376"}, ["docker_tls"]),
        "bad ca": (_tls_payload(payload, ca_cert="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
                   ["docker_tls", "ca_cert"]),
        "ca that is no ca": (_tls_payload(payload, ca_cert=leaf_as_ca.cert), ["docker_tls", "ca_cert"]),
        "cert not matching key": (_tls_payload(payload, client_key=other.key), ["docker_tls", "client_key"]),
        "expired cert": (_tls_payload(payload, client_cert=expired.cert, client_key=expired.key),
                         ["docker_tls", "client_cert"]),
        "bad client key": (_tls_payload(payload, client_key="nope"), ["docker_tls", "client_key"]),
        "plain tcp endpoint": (payload | {"docker_endpoint": "tcp"}, ["docker_endpoint"]),
        "tcp url without tls": (payload | {"docker_url": "tcp://127.0.0.1:2375"}, ["docker_url"]),
        "http url for tls": (_tls_payload(payload) | {"docker_url": "http://127.0.0.1:2375"}, ["docker_url"]),
        "relative storage": (payload | {"storage_root": "srv/berth"}, ["storage_root"]),
        "root storage": (payload | {"storage_root": "/"}, ["storage_root"]),
        "dotdot storage": (payload | {"storage_root": "/srv/../etc"}, ["storage_root"]),
        "bad host": (payload | {"host": "root@127.0.0.1"}, ["host"]),
        "bad port": (payload | {"ssh_port": 70000}, ["ssh_port"]),
        "bad fingerprint": (payload | {"expected_host_key_fingerprint": "MD5:aa:bb"}, ["expected_host_key_fingerprint"]),
        "bad labels": (payload | {"labels": {"gpu": 1}}, ["labels"]),
        "no cpu": (payload | {"cpu_cores": "0"}, ["cpu_cores"]),
        "no workspaces": (payload | {"max_workspaces": 0}, ["max_workspaces"]),
        "negative memory": (payload | {"memory_mb": -5}, ["memory_mb"]),
    }


CASES = ["garbage key", "weak rsa", "missing passphrase", "wrong passphrase", "needless passphrase", "no credential",
         "unknown kind", "tls without bundle", "bad ca", "ca that is no ca", "cert not matching key", "expired cert",
         "bad client key", "plain tcp endpoint", "tcp url without tls", "http url for tls", "relative storage",
         "root storage", "dotdot storage", "bad host", "bad port", "bad fingerprint", "bad labels", "no cpu",
         "no workspaces", "negative memory"]


@pytest.mark.parametrize("case", CASES)
def test_malformed_input_is_a_400_naming_the_field(op_client, payload, tmp_path, case):
    body, path = _malformed_cases(tmp_path, payload)[case]

    response = op_client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    for key in path:
        assert key in errors, (case, errors)
        errors = errors[key]
    assert errors and all(isinstance(message, str) and message for message in errors), errors
    assert not Server.objects.exists()


def test_an_expiring_certificate_is_flagged(op_client, payload):
    ca = make_ca("ca")
    soon = issue(ca, "client", days=10)
    response = op_client.post(URL, _tls_payload(payload, client_cert=soon.cert, client_key=soon.key), format="json")

    assert response.status_code == 201, response.content
    bundle = next(c for c in response.json()["credentials"] if c["kind"] == "tls_bundle")
    assert bundle["expires_soon"] is True and bundle["expires_at"]


def test_list_query_count_does_not_grow_with_servers(op_client, operator, django_assert_max_num_queries, tmp_path):
    for index in range(5):
        Server.objects.create(name=f"s{index}", host="127.0.0.1", storage_root=str(tmp_path))
    with django_assert_max_num_queries(8):
        response = op_client.get(URL)
    assert response.json()["count"] == 5


def test_placement_policies_are_operator_crud(op_client, operator, api_client_for, alice):
    assert api_client_for(alice).get("/api/v1/placement-policies/").status_code == 403
    created = op_client.post("/api/v1/placement-policies/", {"name": "eu-first", "strategy": "region",
                                                              "preferred_regions": ["eu"]}, format="json")
    assert created.status_code == 201, created.content
    policy_url = f"/api/v1/placement-policies/{created.json()['id']}/"
    assert op_client.patch(policy_url, {"preferred_regions": "eu"}, format="json").status_code == 400
    assert op_client.patch(policy_url, {"strategy": "round_robin"}, format="json").status_code == 200
    assert op_client.delete(policy_url).status_code == 204
    assert not PlacementPolicy.objects.exists()
    assert_audited("placement_policy.delete", actor=operator)


def test_a_local_engine_can_be_registered_and_is_active_after_a_ping(op_client, tmp_path):
    response = op_client.post(URL, {"name": "local-1", "host": "localhost", "docker_endpoint": "local",
                                    "storage_root": str(tmp_path)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == ServerStatus.ACTIVE


def test_a_known_hosts_line_given_at_registration_is_stored_as_its_fingerprint(op_client, payload, sshd):
    line = f"[{sshd.host}]:{sshd.port} {sshd.host_key_line()}"

    response = op_client.post(URL, payload | {"expected_host_key_fingerprint": line}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["expected_host_key_fingerprint"] == sshd.ssh_keygen_fingerprint()


def test_a_server_with_live_workspaces_cannot_be_retired(op_client, ssh_server, alice, acme, default_image):
    from infrastructure.models import Placement
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(organization=acme, owner=alice, name="busy", image=default_image,
                                         cpu=1, memory_mb=256)
    Placement.objects.create(workspace=workspace, server=ssh_server, data_path=f"{ssh_server.storage_root}/busy",
                             reserved_cpu=1, reserved_memory_mb=256)

    response = op_client.post(f"{URL}{ssh_server.pk}/retire/")

    assert response.status_code == 409 and "still live" in response.json()["detail"]
    ssh_server.refresh_from_db()
    assert ssh_server.status == ServerStatus.ACTIVE


def test_a_retired_server_is_not_tested(op_client, operator, ssh_server):
    from infrastructure import services

    services.retire_server(ssh_server, actor=operator)

    response = op_client.post(f"{URL}{ssh_server.pk}/test/", {}, format="json")

    assert response.status_code == 409 and "reactivate" in response.json()["detail"]


def test_rotating_the_ssh_key_through_the_api_switches_connections_to_it(op_client, operator, ssh_server, sshd, tmp_path):
    from infrastructure import remote

    new_key = make_ssh_key(tmp_path / "rotated")
    (sshd.directory / "authorized_keys").write_text((tmp_path / "rotated.pub").read_text())  # old key revoked
    old_fingerprint = ssh_server.credentials.get(kind="ssh_key").fingerprint

    response = op_client.patch(f"{URL}{ssh_server.pk}/", {"credential": {"kind": "ssh_key", "private_key": new_key}},
                               format="json")

    assert response.status_code == 200, response.content
    assert response.json()["credentials"][0]["fingerprint"] != old_fingerprint
    assert remote.run_command(ssh_server, ["true"]).exit_code == 0
    assert_audited("server.credential_set", actor=operator, target_id=ssh_server.pk)
