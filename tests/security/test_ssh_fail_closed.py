"""Host-key pinning fails closed on the paths not covered in tests/infrastructure/test_ssh_identity.py:
a fingerprint given at registration that the server does not match, and the files API (the file
agent over SSH) after the server's key changed. Nothing authenticates, nothing is written."""

import pytest

from infrastructure import remote, services
from infrastructure.choices import DockerEndpoint, ServerStatus
from tests.fixtures.workspace_files import folder_of, make_placed_workspace

pytestmark = [pytest.mark.ssh]


def test_a_registration_fingerprint_the_server_does_not_match_pins_nothing(db, operator, sshd, tmp_path):
    server, _ = services.register_server(actor=operator, ssh_key={"private_key": sshd.client_key}, fields={
        "name": "edge", "host": sshd.host, "ssh_port": sshd.port, "ssh_user": "root",
        "docker_endpoint": DockerEndpoint.SSH, "storage_root": str(tmp_path),
        "expected_host_key_fingerprint": "SHA256:" + "A" * 43,
    })
    services.test_connection(server, actor=operator)
    server.refresh_from_db()
    steps = {step["name"]: step for step in server.last_test}
    assert steps["host_key"]["result"] == "fail" and "not the expected" in steps["host_key"]["message"]
    assert "ssh_auth" not in steps
    assert server.host_key == "" and server.status == ServerStatus.UNVERIFIED
    with pytest.raises(remote.HostKeyNotTrusted):
        remote.run_command(server, ["true"])
    assert "publickey" not in sshd.log() and "Accepted" not in sshd.log()


def test_the_files_api_refuses_a_server_whose_host_key_changed(api_client_for, alice, acme, ssh_server, sshd,
                                                               default_image):
    workspace = make_placed_workspace(owner=alice, organization=acme, server=ssh_server, image=default_image)
    sshd.swap_host_key()
    remote.forget_server(ssh_server.pk)
    api = api_client_for(alice)
    response = api.put(f"/api/v1/workspaces/{workspace.pk}/files/content?path=planted.txt", {"content": "x"},
                       format="json")
    assert response.status_code == 503
    assert "host key" in response.json()["detail"]
    assert not (folder_of(workspace) / "planted.txt").exists()
    assert "publickey" not in sshd.log() and "Accepted" not in sshd.log()
