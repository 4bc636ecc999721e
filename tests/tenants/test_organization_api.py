from datetime import timedelta

import pytest
from tenants.choices import Role
from tenants.models import Membership, Organization, User
from tests.api_contract import ListContract, RetrieveContract, UpdateContract, result_ids


class TestOrganizationApi(ListContract, RetrieveContract, UpdateContract):
    url = "/api/v1/organizations/"
    update_action = "organization.update"

    @pytest.fixture
    def obj(self, acme):
        return acme

    @pytest.fixture
    def foreign_obj(self, globex):
        return globex

    @pytest.fixture
    def update_payload(self):
        return {"idle_timeout": "00:45:00"}

    @pytest.fixture
    def add_rows(self, alice):
        def add():
            for number in range(5):
                organization = Organization.objects.create(name=f"Org {number}", slug=f"org-{number}")
                Membership.objects.create(user=alice, organization=organization, role=Role.MEMBER)
        return add


def test_it_shows_my_role_in_each_organization(api_client_for, alice, acme, globex):
    Membership.objects.create(user=alice, organization=globex, role=Role.AUDITOR)
    body = api_client_for(alice).get("/api/v1/organizations/").json()
    assert {item["slug"]: item["role"] for item in body["results"]} == {"acme": "owner", "globex": "auditor"}


def test_an_admin_changes_the_idle_timeout(api_client_for, alice, acme):
    response = api_client_for(alice).patch(f"/api/v1/organizations/{acme.pk}/", {"idle_timeout": "00:30:00"}, format="json")
    assert response.status_code == 200
    assert response.json()["idle_timeout"] == "00:30:00"
    acme.refresh_from_db()
    assert acme.idle_timeout == timedelta(minutes=30)


def test_a_member_may_read_but_not_change_the_organization(api_client_for, bob, acme):
    client = api_client_for(bob)
    assert client.get(f"/api/v1/organizations/{acme.pk}/").status_code == 200
    response = client.patch(f"/api/v1/organizations/{acme.pk}/", {"idle_timeout": "00:01:00"}, format="json")
    assert response.status_code == 403
    assert client.patch(f"/api/v1/organizations/{acme.pk}/", {"idle_timeout": "bad"}, format="json").status_code == 403
    assert "owners and admins" in response.json()["detail"]
    acme.refresh_from_db()
    assert acme.idle_timeout == timedelta(hours=2)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"idle_timeout": "soon"}, "idle_timeout"),
        ({"max_workspace_cpu": "0.01"}, "max_workspace_cpu"),
        ({"max_workspace_memory_mb": 10}, "max_workspace_memory_mb"),
        ({"placement_policy": 999999}, "placement_policy"),
        ({"slug": "renamed"}, "slug"),
    ],
)
def test_it_refuses_bad_or_read_only_fields(api_client_for, alice, acme, payload, field):
    response = api_client_for(alice).patch(f"/api/v1/organizations/{acme.pk}/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Organization.objects.get(pk=acme.pk).slug == "acme"


def test_a_superuser_without_membership_sees_no_organization(api_client_for, operator, acme):
    assert result_ids(api_client_for(operator).get("/api/v1/organizations/")) == set()


class TestMembershipApi(ListContract, RetrieveContract):
    url = "/api/v1/memberships/"

    @pytest.fixture
    def obj(self, alice, acme):
        return alice.memberships.get(organization=acme)

    @pytest.fixture
    def foreign_obj(self, charlie):
        return charlie.memberships.get()

    @pytest.fixture
    def add_rows(self, acme):
        def add():
            for number in range(5):
                Membership.objects.create(user=User.objects.create_user(username=f"user{number}"), organization=acme)
        return add


def test_members_see_their_colleagues_with_roles(api_client_for, alice, bob, acme):
    body = api_client_for(bob).get("/api/v1/memberships/", {"organization": acme.pk}).json()
    assert {(item["username"], item["role"]) for item in body["results"]} == {("alice", "owner"), ("bob", "member")}


def test_memberships_are_read_only(api_client_for, alice, bob, acme):
    membership = bob.memberships.get()
    response = api_client_for(alice).patch(f"/api/v1/memberships/{membership.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 405
    assert Membership.objects.get(pk=membership.pk).role == Role.MEMBER
