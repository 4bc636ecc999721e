"""Container primitives (infrastructure/remote/containers.py) against the real engine: output streamed
line by line, the run timeout, a run's container removed, Docker's refusals as permanent or transient
RemoteErrors, listing by label with exit codes."""

import docker.api.image
import pytest

from infrastructure.remote import ContainerSpec, RemoteError, docker_session

pytestmark = pytest.mark.docker


@pytest.fixture
def spec(workspace_image, test_run_label):
    """spec(command, **fields) -> a small confined container the test run label cleans up."""

    def make(command, **fields):
        values = {"image": workspace_image, "name": f"berth-test-{test_run_label}", "user": "1000:1000",
                  "network": "none", "cpus": 0.5, "memory_mb": 64, "pids_limit": 64, "cap_drop": ("ALL",),
                  "labels": {"berth.test-run": test_run_label}, **fields}
        return ContainerSpec(command=command, **values)

    return make


@pytest.mark.parametrize("server", ["local_server", pytest.param("ssh_server", marks=pytest.mark.ssh)])
def test_output_with_carriage_returns_arrives_one_line_per_update_and_the_container_is_removed(
    request, server, spec, docker_engine, test_run_label
):
    lines = []
    with docker_session(request.getfixturevalue(server)) as docker:
        result = docker.run_to_completion(
            spec(["sh", "-c", r"printf 'Receiving objects:  10%%\rReceiving objects: 100%%\nDone.\n' >&2; exit 3"]),
            timeout=60, on_line=lines.append,
        )
    assert lines == ["Receiving objects:  10%", "Receiving objects: 100%", "Done."]
    assert (result.exit_code, result.timed_out) == (3, False)
    assert docker_engine.containers.list(all=True, filters={"label": f"berth.test-run={test_run_label}"}) == []


def test_a_run_past_its_timeout_is_killed(local_server, spec):
    with docker_session(local_server) as docker:
        result = docker.run_to_completion(spec(["sleep", "60"]), timeout=1, on_line=print)
    assert result.timed_out and result.exit_code != 0


@pytest.fixture
def no_registry_pulls(monkeypatch):
    """Fails the test if anything asks the engine to pull: a server must never reach a registry."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"an image pull was attempted: {args} {kwargs}")

    monkeypatch.setattr(docker.api.image.ImageApiMixin, "pull", refuse)


@pytest.mark.parametrize("step", ["create", "run_to_completion"])
def test_a_missing_image_is_a_permanent_error_naming_image_and_server_and_nothing_is_pulled(
    local_server, spec, no_registry_pulls, step
):
    with docker_session(local_server) as session, pytest.raises(RemoteError) as missing:
        if step == "create":
            session.create(spec(["true"], image="berth/not-loaded:1"))
        else:
            session.run_to_completion(spec(["true"], image="berth/not-loaded:1"), timeout=30, on_line=print)
    assert missing.value.permanent
    assert "the image berth/not-loaded:1 is not on server local" in str(missing.value)


def test_a_name_conflict_is_transient_and_a_missing_container_permanent(local_server, spec):
    with docker_session(local_server) as docker:
        first = docker.create(spec(["true"]))
        with pytest.raises(RemoteError) as conflict:
            docker.create(spec(["true"]))  # 409: the name is taken
        with pytest.raises(RemoteError) as missing:
            docker.start("berth-test-no-such-container")  # 404
        again = docker.create(spec(["true"]), existing_ok=True)  # what a crashed run left is taken as it is
    assert not conflict.value.permanent
    assert missing.value.permanent
    assert (again.id, again.name, again.running) == (first.id, first.name, False)


def test_containers_are_found_by_name_and_listed_by_label_with_their_exit_code(local_server, spec, test_run_label,
                                                                                  docker_engine):
    with docker_session(local_server) as docker:
        created = docker.create(spec(["sh", "-c", "exit 7"]))
        assert not created.running and docker.find("berth-test-no-such-container") is None
        docker.start(created.name)
        docker_engine.containers.get(created.id).wait(timeout=30)
        (listed,) = docker.list_containers([f"berth.test-run={test_run_label}"])
        assert (listed.id, listed.name, listed.running, listed.exit_code) == (created.id, created.name, False, 7)
        assert listed.labels["berth.test-run"] == test_run_label
        assert docker.find(created.name).exit_code == 7
        docker.remove(created.name)
        assert docker.find(created.name) is None
        docker.remove(created.name)  # already gone: nothing to do
