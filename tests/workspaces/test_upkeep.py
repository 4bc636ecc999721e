"""Crash safety and the beat tasks on the real local Docker engine: a provision task killed midway
and run again, the reconciler against containers changed behind Berth's back, orphans, the hang
detector, idle stop, usage sampling, deleting on an offline server, a missing image."""

import contextlib
import uuid
from datetime import timedelta
from pathlib import Path

import docker
import pytest
from django.db import connection
from django.utils import timezone

from infrastructure.choices import ServerStatus
from infrastructure.models import OrphanContainer, ResourceUsage
from infrastructure.remote import ssh
from workspaces import provisioning, services, tasks
from workspaces.choices import WorkspaceStatus as S
from workspaces.models import Workspace, WorkspaceImage

from ..factories import make_workspace
from .conftest import fresh

pytestmark = pytest.mark.docker


@pytest.fixture
def make(alice, acme, default_image, local_server, workspace_image, server_containers, django_capture_on_commit_callbacks):
    """make(name, **fields) -> a workspace created through the service, its tasks run (eager)."""

    def create(name="demo", **fields):
        with django_capture_on_commit_callbacks(execute=True):
            workspace = services.create_workspace(organization=acme, owner=alice, name=name, memory_mb=256,
                                                  actor=alice, **fields)
        return fresh(workspace.pk)

    return create


class WorkerKilled(Exception):
    pass


def crash_after(monkeypatch, module, name):
    """The real step runs, then the worker 'dies' before the task can record anything."""
    real = getattr(module, name)

    def step_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise WorkerKilled(name)

    monkeypatch.setattr(module, name, step_then_die)


def provision_crashing(monkeypatch, workspace, step, django_capture_on_commit_callbacks):
    with monkeypatch.context() as patch:
        crash_after(patch, provisioning, step)
        with pytest.raises(WorkerKilled), django_capture_on_commit_callbacks(execute=True):
            services.place_workspace(workspace)
    assert fresh(workspace.pk).status == S.PROVISIONING
    tasks.provision.apply(args=[str(workspace.pk)])


@pytest.mark.parametrize("status,task", [(S.PROVISIONING, tasks.provision), (S.STARTING, tasks.start)])
def test_a_workspace_without_a_placement_fails_with_the_way_out_instead_of_crashing_the_task(
    alice, acme, default_image, status, task
):
    workspace = make_workspace(alice, acme, default_image, status=status)
    task.apply(args=[str(workspace.pk)])
    failed = fresh(workspace.pk)
    assert (failed.status, failed.failure_reason) == (
        S.FAILED, "It has no server placement: delete it, or retry to place it again.")


@pytest.mark.parametrize("step", ["ensure_folder", "clone_repository", "create_container"])
def test_a_provision_killed_midway_and_run_again_leaves_one_folder_and_one_container(
    alice, acme, default_image, local_server, workspace_image, server_containers, git_server, monkeypatch,
    django_capture_on_commit_callbacks, step,
):
    workspace = Workspace.objects.create(organization=acme, owner=alice, name="demo", image=default_image, cpu=1,
                                         memory_mb=256, repo_url=f"{git_server}/demo.git")
    provision_crashing(monkeypatch, workspace, step, django_capture_on_commit_callbacks)
    tasks.provision.apply(args=[str(workspace.pk)])  # a duplicate delivery changes nothing either
    done = fresh(workspace.pk)
    assert done.status == S.RUNNING, done.failure_reason
    assert [c.name for c in server_containers()] == [f"berth-{workspace.pk}"]
    assert [p.name for p in Path(local_server.storage_root, "acme").iterdir()] == [str(workspace.pk)]
    assert (Path(done.placement.data_path) / "README.md").exists()
    assert done.placement.container_id == server_containers()[0].id


@pytest.fixture
def squat(docker_engine, workspace_image):
    """squat(name, labels) -> a container someone else created under a workspace's name (removed after)."""
    made = []

    def create(name, labels):
        made.append(docker_engine.containers.create(workspace_image, ["sleep", "infinity"], name=name,
                                                    network_mode="none", labels=labels))
        return made[-1]

    yield create
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


@pytest.mark.parametrize("labels", [{}, "another workspace's"], ids=["unlabelled", "another-workspace"])
def test_a_container_someone_else_made_under_a_new_workspace_s_name_is_never_adopted(
    alice, acme, default_image, local_server, workspace_image, server_containers, squat, labels,
    django_capture_on_commit_callbacks,
):
    workspace = Workspace.objects.create(organization=acme, owner=alice, name="demo", image=default_image, cpu=1,
                                         memory_mb=256)
    if labels:
        other = uuid.uuid4()
        labels = {"berth.managed": "1", "berth.role": "workspace", "berth.workspace": str(other),
                  "berth.data": f"{local_server.storage_root}/acme/{other}"}
    squatter = squat(f"berth-{workspace.pk}", labels)
    with django_capture_on_commit_callbacks(execute=True):
        services.place_workspace(workspace)
    failed = fresh(workspace.pk)
    assert failed.status == S.FAILED
    assert failed.failure_reason.startswith(f"a container named berth-{workspace.pk} on local was not made by Berth")
    squatter.reload()
    assert squatter.status == "created"  # never started as the workspace
    assert [c.id for c in server_containers()] == ([squatter.id] if labels else [])


def test_start_refuses_a_container_that_took_the_place_of_the_workspace_s_own(
    make, alice, server_containers, squat, django_capture_on_commit_callbacks
):
    workspace = make()
    with django_capture_on_commit_callbacks(execute=True):
        services.stop_workspace(workspace, actor=alice)
    server_containers()[0].remove(force=True)
    squatter = squat(f"berth-{workspace.pk}", {"berth.managed": "1"})
    with django_capture_on_commit_callbacks(execute=True):
        services.start_workspace(fresh(workspace.pk), actor=alice)
    failed = fresh(workspace.pk)
    assert (failed.status, failed.failure_reason.split(":")[0]) == (
        S.FAILED, f"a container named berth-{workspace.pk} on local was not made by Berth for this workspace"
    )
    squatter.reload()
    assert squatter.status == "created"


def test_the_reconciler_fails_a_workspace_whose_container_was_removed(make, server_containers):
    workspace = make()
    server_containers()[0].remove(force=True)
    tasks.reconcile_all()
    gone = fresh(workspace.pk)
    assert gone.status == S.FAILED
    assert gone.failure_reason == "Its container disappeared from local."
    gone.placement.refresh_from_db()
    assert gone.placement.released is True


def test_the_reconciler_marks_an_exited_container_stopped_and_start_brings_it_back(make, server_containers, alice,
                                                                                  django_capture_on_commit_callbacks):
    workspace = make()
    server_containers()[0].kill()
    tasks.reconcile_all()
    stopped = fresh(workspace.pk)
    assert stopped.status == S.STOPPED
    assert stopped.status_message.startswith("The container exited (code 137)")
    with django_capture_on_commit_callbacks(execute=True):
        services.start_workspace(stopped, actor=alice)
    assert fresh(workspace.pk).status == S.RUNNING
    assert server_containers()[0].status == "running"


def test_the_reconciler_records_orphans_and_removes_them_only_when_told(
    make, local_server, server_containers, docker_engine, workspace_image, settings
):
    make()
    stray_id = uuid.uuid4()
    docker_engine.containers.run(
        workspace_image, ["sleep", "infinity"], detach=True, name=f"berth-{stray_id}", network_mode="none",
        labels={"berth.managed": "1", "berth.role": "workspace", "berth.workspace": str(stray_id),
                "berth.data": f"{local_server.storage_root}/acme/{stray_id}"},
    )
    tasks.reconcile_all()
    tasks.reconcile_all()  # recorded once, not once per run
    orphan = OrphanContainer.objects.get()
    assert (orphan.workspace_id, orphan.container_name, orphan.resolved_at) == (stray_id, f"berth-{stray_id}", None)
    assert len(server_containers()) == 2

    settings.BERTH_REMOVE_ORPHANS = True
    tasks.reconcile_all()
    assert [c.name for c in server_containers()] != [f"berth-{stray_id}"] and len(server_containers()) == 1
    assert OrphanContainer.objects.get().resolved_at is not None


def test_the_hang_detector_fails_a_workspace_without_progress(alice, acme, default_image, local_server, settings):
    workspace = Workspace.objects.create(organization=acme, owner=alice, name="demo", image=default_image, cpu=1,
                                         memory_mb=256)
    assert services.decide_placement(workspace) is not None
    settings.BERTH_HANG_TIMEOUT = timedelta(minutes=10)
    assert tasks.fail_hung_workspaces() == 0
    Workspace.objects.filter(pk=workspace.pk).update(status_changed_at=timezone.now() - timedelta(minutes=11))
    assert tasks.fail_hung_workspaces() == 1
    hung = fresh(workspace.pk)
    assert (hung.status, hung.failure_reason) == (S.FAILED, "No progress for 10 minutes while provisioning.")
    local_server.refresh_from_db()
    assert local_server.reserved_workspaces == 0


def test_idle_workspaces_are_stopped_after_the_organization_timeout(make, acme, server_containers,
                                                                    django_capture_on_commit_callbacks):
    idle, busy = make("idle"), make("busy")
    acme.idle_timeout = timedelta(hours=1)
    acme.save()
    Workspace.objects.filter(pk=idle.pk).update(last_activity_at=timezone.now() - timedelta(minutes=61))
    Workspace.objects.filter(pk=busy.pk).update(last_activity_at=timezone.now() - timedelta(minutes=59))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.stop_idle_workspaces() == 1
    assert (fresh(idle.pk).status, fresh(busy.pk).status) == (S.STOPPED, S.RUNNING)
    states = {c.name: c.status for c in server_containers()}
    assert states == {f"berth-{idle.pk}": "exited", f"berth-{busy.pk}": "running"}


def test_usage_samples_are_taken_from_the_container(make, local_server):
    workspace = make()
    assert tasks.sample_resource_usage() == 1
    sample = ResourceUsage.objects.get()
    assert (sample.workspace_id, sample.server_id) == (workspace.pk, local_server.pk)
    assert 0 < sample.memory_bytes < 256 * 1024 * 1024


def test_a_workspace_on_an_offline_server_is_still_deleted_and_leftovers_listed(make, local_server, alice,
                                                                                 django_capture_on_commit_callbacks):
    workspace = make()
    type(local_server).objects.filter(pk=local_server.pk).update(status=ServerStatus.OFFLINE)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_workspace(fresh(workspace.pk), actor=alice)
    assert fresh(workspace.pk).status == S.DELETED
    leftover = OrphanContainer.objects.get()
    assert (leftover.container_name, leftover.data_path) == (f"berth-{workspace.pk}", workspace.placement.data_path)
    assert "offline" in leftover.note


def test_a_missing_image_fails_with_a_clear_reason(make):
    image = WorkspaceImage.objects.create(name="ghost", reference="berth/not-loaded:1", max_memory_mb=1024)
    workspace = make(image=image)
    assert workspace.status == S.FAILED
    assert "berth/not-loaded:1 is not on server local" in workspace.failure_reason


@pytest.mark.ssh
def test_a_server_that_stops_answering_is_retried_then_the_workspace_fails_with_the_reason(
    alice, acme, default_image, ssh_server, sshd, workspace_image, docker_engine, django_capture_on_commit_callbacks,
    settings, caplog,
):
    """Transient errors (connection refused) are retried, MAX_RETRIES times, before the workspace fails."""
    settings.BERTH_TASK_RETRY_DELAY = 0
    try:
        with django_capture_on_commit_callbacks(execute=True):
            workspace = services.create_workspace(organization=acme, owner=alice, name="demo", memory_mb=256, actor=alice)
        assert fresh(workspace.pk).status == S.RUNNING
        sshd.stop()  # established sessions outlive the daemon: drop this process's pooled connection too
        ssh.forget_server(ssh_server.pk)
        caplog.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.stop_workspace(fresh(workspace.pk), actor=alice)
        failed = fresh(workspace.pk)
        assert failed.status == S.FAILED
        assert failed.failure_reason == f"Cannot reach 127.0.0.1:{sshd.port}: Connection refused."
        attempts = [r for r in caplog.records if r.name == "celery.app.trace" and "workspaces.tasks.stop[" in r.getMessage()]
        assert len(attempts) == 1 + tasks.MAX_RETRIES
        assert failed.placement.released is True
    finally:
        for container in docker_engine.containers.list(all=True, filters={"label": "berth.managed=1"}):
            if container.labels.get("berth.data", "").startswith(ssh_server.storage_root + "/"):
                container.remove(force=True)


@pytest.mark.ssh
@pytest.mark.django_db(transaction=True)
def test_usage_sampling_over_ssh_hands_back_every_database_connection_its_threads_borrowed(
    alice, acme, default_image, ssh_server, workspace_image, django_capture_on_commit_callbacks,
):
    """Sampling calls Docker from helper threads, and on an SSH server each looks up the server's
    credential. A connection such a thread takes from the pool and keeps would never serve anyone
    again: after enough samples every request would wait for a connection and fail."""
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("one", "two"):
            services.create_workspace(organization=acme, owner=alice, name=name, memory_mb=256, actor=alice)
    pool = connection.pool
    in_use = lambda: pool.get_stats()["pool_size"] - pool.get_stats()["pool_available"]  # noqa: E731
    before = in_use()
    assert tasks.sample_resource_usage() == 2
    assert in_use() == before
