"""The workspace API without Docker: create validation (each refusal a 400 naming the field),
tenant isolation, the permission model, 409 on wrong-state actions, pinned list queries.

Permission model: another organization's workspace is a 404 everywhere. Inside the organization, a
member sees only their own workspaces (bob gets 404 on alice's), owners/admins see and manage all,
auditors see all and get 403 on every action."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from audit.models import AuditEvent
from workspaces.api.serializers import WorkspaceSerializer
from workspaces.choices import WorkspaceStatus as S
from workspaces.models import Workspace, WorkspaceImage

from ..api_contract import DestroyContract, ListContract, RetrieveContract, assert_audited
from ..factories import make_workspace, place

URL = "/api/v1/workspaces/"
ACTIONS = ["start", "stop", "restart", "retry"]


@pytest.fixture
def alices_workspace(alice, acme, default_image):
    return make_workspace(alice, acme, default_image)


class TestWorkspaceApiContract(ListContract, RetrieveContract, DestroyContract):
    url = URL
    destroy_action = "workspace.delete"
    list_query_count = 4  # token, count, page, placements with their servers

    @pytest.fixture
    def obj(self, alices_workspace):
        return alices_workspace

    @pytest.fixture
    def foreign_obj(self, charlie, globex, default_image):
        return make_workspace(charlie, globex, default_image)

    @pytest.fixture
    def add_rows(self, alice, acme, default_image, local_server):
        return lambda: [place(make_workspace(alice, acme, default_image, f"w{n}"), local_server, f"/x/{n}") for n in range(7)]


def test_create_answers_202_pending_and_is_audited(api_client_for, alice, default_image):
    response = api_client_for(alice).post(URL, {"name": "demo"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["organization"], body["owner"], body["cpu"], body["memory_mb"]) == (
        S.PENDING, "acme", "alice", "1.00", 256)
    assert body["status_message"] == "Queued for placement"
    assert_audited("workspace.create", actor=alice, target_id=body["id"])
    assert body["url"] == f"http://testserver{URL}{body['id']}/"  # the API resource, not the page
    assert api_client_for(alice).get(body["url"]).json()["id"] == body["id"]


BAD_INPUTS = [
    ({"name": "Bad_Name"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "a" * 64}, "name"),
    ({"name": "-lead"}, "name"),
    ({"repo_url": "https://evil.test/x.git"}, "repo_url"),
    ({"repo_url": "http://github.com/acme/app.git"}, "repo_url"),
    ({"repo_url": "https://u:p@github.com/acme/app.git"}, "repo_url"),
    ({"repo_url": "https://github.com/acme/app.git?a=1"}, "repo_url"),
    ({"repo_url": "ext::sh -c id"}, "repo_url"),
    ({"repo_url": "file:///etc"}, "repo_url"),
    ({"repo_url": "--upload-pack=id"}, "repo_url"),
    ({"repo_url": "https://github.com/acme/app.git", "branch": "a..b"}, "branch"),
    ({"repo_url": "https://github.com/acme/app.git", "branch": "-x"}, "branch"),
    ({"branch": "main"}, "branch"),
    ({"cpu": "3"}, "cpu"),  # image max 2
    ({"cpu": "0.01"}, "cpu"),
    ({"cpu": "many"}, "cpu"),
    ({"memory_mb": 4096}, "memory_mb"),  # image max 2048
    ({"memory_mb": 10}, "memory_mb"),
    ({"memory_mb": "lots"}, "memory_mb"),
    ({"image": 999999}, "image"),
    ({"region": "Not A Region"}, "region"),
    ({"organization": "globex"}, "organization"),
    ({"owner": "bob"}, "owner"),
    ({"status": "running"}, "status"),
]


@pytest.mark.parametrize(("extra", "field"), BAD_INPUTS)
def test_each_bad_create_input_is_a_400_naming_the_field(api_client_for, alice, default_image, extra, field):
    response = api_client_for(alice).post(URL, {"name": "demo", **extra}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Workspace.objects.exists()


def test_the_organization_limit_is_below_the_image_limit(api_client_for, alice, acme, default_image):
    acme.max_workspace_memory_mb = 512
    acme.save()
    response = api_client_for(alice).post(URL, {"name": "demo", "memory_mb": 1024}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["memory_mb"] == ["At most 512 MiB in this organization."]


def test_a_duplicate_name_and_the_per_person_limit_are_refused(api_client_for, alice, acme, default_image):
    client = api_client_for(alice)
    assert client.post(URL, {"name": "demo"}, format="json").status_code == 202
    response = client.post(URL, {"name": "demo"}, format="json")
    assert response.status_code == 400 and "already have a workspace named demo" in str(response.json())
    acme.max_workspaces_per_user = 1
    acme.save()
    response = client.post(URL, {"name": "other"}, format="json")
    assert response.status_code == 400 and "limit of 1 workspaces" in str(response.json()["errors"]["name"])


@pytest.mark.django_db(transaction=True)
def test_a_name_taken_between_the_check_and_the_insert_is_a_400_and_leaves_nothing(
    api_client_for, alice, acme, default_image
):
    """Two creates racing for one name: the loser passes the name check, then meets the unique
    constraint. A second connection commits the same name just before the loser's INSERT runs."""
    client = api_client_for(alice)

    def rival_commits_first(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "workspaces_workspace"'):
            rival = threading.Thread(target=lambda: (make_workspace(alice, acme, default_image, name="demo"),
                                                    connection.close()))
            rival.start()
            rival.join()
        return execute(sql, params, many, context)

    events_before = AuditEvent.objects.count()
    with connection.execute_wrapper(rival_commits_first):
        response = client.post(URL, {"name": "demo"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["name"] == ["You already have a workspace named demo."]
    assert Workspace.objects.filter(name="demo").count() == 1  # the rival's
    assert AuditEvent.objects.count() == events_before  # nothing recorded for the refused create


def test_an_inactive_image_is_refused(api_client_for, alice, default_image):
    old = WorkspaceImage.objects.create(name="old", reference="old:1", is_active=False)
    response = api_client_for(alice).post(URL, {"name": "demo", "image": old.pk}, format="json")
    assert response.status_code == 400 and "image" in response.json()["errors"]


def test_an_auditor_cannot_create(api_client_for, auditor, default_image):
    assert api_client_for(auditor).post(URL, {"name": "demo"}, format="json").status_code == 403


@pytest.mark.parametrize("action", ACTIONS)
def test_another_organization_gets_404_on_every_action(api_client_for, charlie, alices_workspace, action):
    response = api_client_for(charlie).post(f"{URL}{alices_workspace.pk}/{action}/")
    assert response.status_code == 404
    alices_workspace.refresh_from_db()
    assert alices_workspace.status == S.RUNNING


@pytest.mark.parametrize("action", ACTIONS)
def test_a_member_cannot_see_or_act_on_a_colleagues_workspace(api_client_for, bob, alices_workspace, action):
    client = api_client_for(bob)
    assert client.get(f"{URL}{alices_workspace.pk}/").status_code == 404
    assert client.post(f"{URL}{alices_workspace.pk}/{action}/").status_code == 404
    assert client.delete(f"{URL}{alices_workspace.pk}/").status_code == 404
    assert str(alices_workspace.pk) not in str(client.get(URL).json())


@pytest.mark.parametrize("action", ACTIONS)
def test_an_auditor_sees_but_gets_403_on_actions(api_client_for, auditor, alices_workspace, action):
    client = api_client_for(auditor)
    assert client.get(f"{URL}{alices_workspace.pk}/").status_code == 200
    response = client.post(f"{URL}{alices_workspace.pk}/{action}/")
    assert response.status_code == 403 and response.json()["detail"]
    assert client.delete(f"{URL}{alices_workspace.pk}/").status_code == 403


def test_the_org_owner_manages_a_members_workspace(api_client_for, alice, bob, acme, default_image):
    workspace = make_workspace(bob, acme, default_image)
    response = api_client_for(alice).post(f"{URL}{workspace.pk}/stop/")
    assert response.status_code == 202 and response.json()["status"] == S.STOPPING
    assert_audited("workspace.stop", actor=alice, target_id=workspace.pk)


@pytest.mark.parametrize(
    ("status", "action"),
    [(S.RUNNING, "start"), (S.STOPPED, "stop"), (S.STOPPED, "restart"), (S.RUNNING, "retry"),
     (S.PROVISIONING, "stop"), (S.PENDING, "start")],
)
def test_a_wrong_state_action_is_a_409(api_client_for, alice, acme, default_image, status, action):
    workspace = make_workspace(alice, acme, default_image, status=status)
    response = api_client_for(alice).post(f"{URL}{workspace.pk}/{action}/")
    assert response.status_code == 409
    assert status in response.json()["detail"]
    assert not AuditEvent.objects.filter(action=f"workspace.{action}").exists()


def test_an_in_flight_workspace_cannot_be_deleted_until_it_settles(api_client_for, alice, acme, default_image):
    workspace = make_workspace(alice, acme, default_image, status=S.PROVISIONING)
    assert api_client_for(alice).delete(f"{URL}{workspace.pk}/").status_code == 409


def test_a_failed_workspace_can_be_deleted_or_retried(api_client_for, alice, acme, default_image):
    client = api_client_for(alice)
    first = make_workspace(alice, acme, default_image, name="one", status=S.FAILED)
    second = make_workspace(alice, acme, default_image, name="two", status=S.FAILED)
    assert client.delete(f"{URL}{first.pk}/").json()["status"] == S.DELETING
    assert client.post(f"{URL}{second.pk}/retry/").json()["status"] == S.PENDING


def test_detail_shows_server_reason_and_messages(api_client_for, alice, alices_workspace, local_server):
    place(alices_workspace, local_server, reason="least loaded: local")
    Workspace.objects.filter(pk=alices_workspace.pk).update(status_message="Cloning 40%", failure_reason="")
    body = api_client_for(alice).get(f"{URL}{alices_workspace.pk}/").json()
    assert (body["server"], body["placement_reason"], body["status_message"], body["failure_reason"]) == (
        "local", "least loaded: local", "Cloning 40%", "")


def test_responses_built_from_shared_fields_keep_each_workspace_apart(alice, acme, default_image, local_server):
    """The 202 serializer builds its fields once per class: every instance must still get its own."""
    unplaced = make_workspace(alice, acme, default_image, name="one")
    placed = make_workspace(alice, acme, default_image, name="two")
    place(placed, local_server, reason="least loaded: local")
    context = {"request": Request(APIRequestFactory().get(URL))}
    first, second = (WorkspaceSerializer(workspace, context=context) for workspace in (unplaced, placed))
    assert first.fields["server"] is not second.fields["server"]
    assert (first.fields["server"].parent, second.fields["image"].parent) == (first, second)
    assert [(body["name"], body["server"], body["placement_reason"], body["image"]["name"]) for body in
            (first.data, second.data)] == [("one", None, "", "Debian 12 with git"),
                                           ("two", "local", "least loaded: local", "Debian 12 with git")]
    assert second.data["url"].endswith(f"{URL}{placed.pk}/")


def test_list_filters_and_its_query_count_does_not_grow(api_client_for, alice, acme, default_image, local_server):
    client = api_client_for(alice)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL, {"organization": "acme"}).status_code == 200
        return len(queries)

    def add(n):
        place(make_workspace(alice, acme, default_image, name=f"w{n}"), local_server, f"/x/{n}")

    add(0)
    count_queries()  # the first request also marks the token used
    assert count_queries() == 4  # token, count, page, placements with their servers
    for n in range(1, 8):
        add(n)
    assert count_queries() == 4
    make_workspace(alice, acme, default_image, name="off", status=S.STOPPED)
    stopped = client.get(URL, {"status": "stopped"}).json()
    assert [item["name"] for item in stopped["results"]] == ["off"]
    assert client.get(URL, {"organization": "globex"}).json()["count"] == 0


def test_images_are_listed_for_users(api_client_for, bob, default_image):
    WorkspaceImage.objects.create(name="retired", reference="old:1", is_active=False)
    body = api_client_for(bob).get("/api/v1/workspace-images/").json()
    assert [image["name"] for image in body["results"]] == ["Debian 12 with git"]
    assert api_client_for(None).get("/api/v1/workspace-images/").status_code == 401


@pytest.mark.parametrize("path", ["not-a-uuid/", "not-a-uuid/stop/", "00000000-0000-0000-0000-000000000000/start/"])
def test_a_malformed_or_unknown_id_is_a_json_404(api_client_for, alice, path):
    client = api_client_for(alice)
    response = client.post(f"{URL}{path}") if path.endswith(("stop/", "start/")) else client.get(f"{URL}{path}")
    assert response.status_code == 404 and response.json()["detail"]
