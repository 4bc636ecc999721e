"""Provisioning details: the git argument list, the path fence before rm -rf, the workspace network."""

import uuid

import pytest

from infrastructure.remote import RemoteError, docker_session
from workspaces import provisioning


def test_git_gets_an_argument_list_with_only_the_urls_protocol_and_the_url_after_dashes():
    argv = provisioning.clone_command("http://127.0.0.1:8000/demo.git", "feature", "http")
    assert argv[:5] == ["git", "-c", "protocol.allow=never", "-c", "protocol.https.allow=always"]
    assert "protocol.http.allow=always" in argv and "protocol.ssh.allow=always" not in argv
    assert "http.followRedirects=false" in argv and "--no-recurse-submodules" in argv
    assert argv[-3:] == ["--", "http://127.0.0.1:8000/demo.git", "/workspace"]
    assert argv[argv.index("--branch") + 1] == "feature"
    https = provisioning.clone_command("https://github.com/a/b.git", "", "https")
    assert not any(arg.startswith("protocol.http.") for arg in https) and "--branch" not in https


@pytest.mark.parametrize(
    "path",
    ["/srv/berth", "/srv/berth/acme", "/srv/other/acme/x", "/srv/berth/acme/../../etc", "/srv/berth/acme/x/y",
     "/srv/berth//acme/x", "/etc"],
)
def test_nothing_outside_a_workspace_folder_is_ever_removed(local_server, path):
    local_server.storage_root = "/srv/berth"
    with pytest.raises(RemoteError) as refused:
        provisioning.remove_folder(local_server, path)
    assert refused.value.permanent


@pytest.mark.docker
def test_the_workspace_network_is_a_bridge_without_inter_container_traffic(local_server, docker_engine, settings):
    name = f"berth-test-{uuid.uuid4().hex[:10]}"
    settings.BERTH_WORKSPACE_NETWORK = name
    try:
        with docker_session(local_server) as docker:
            provisioning.ensure_network(docker)
            provisioning.ensure_network(docker)  # found, not created twice
        (network,) = docker_engine.networks.list(names=[name])
        assert network.attrs["Driver"] == "bridge"
        assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    finally:
        for network in docker_engine.networks.list(names=[name]):
            network.remove()
