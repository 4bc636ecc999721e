import pytest
from rest_framework.test import APIClient

from tenants.models import ApiToken
from tenants.services import issue_api_token
from tests.api_contract import CreateContract, DestroyContract, ListContract, RetrieveContract


@pytest.fixture
def alice_token(alice):
    token, _ = issue_api_token(alice, name="laptop", expires_in=None)
    return token


class TestApiTokenApi(ListContract, RetrieveContract, CreateContract, DestroyContract):
    url = "/api/v1/api-tokens/"
    create_action = "token.issue"
    destroy_action = "token.revoke"

    @pytest.fixture
    def obj(self, alice_token):
        return alice_token

    @pytest.fixture
    def foreign_obj(self, charlie):
        token, _ = issue_api_token(charlie, name="ci", expires_in=None)
        return token

    @pytest.fixture
    def create_payload(self):
        return {"name": "ci", "expires_in_days": 30}

    @pytest.fixture
    def add_rows(self, alice):
        return lambda: [issue_api_token(alice, name=f"token {number}", expires_in=None) for number in range(5)]


def test_the_key_is_returned_once_and_works(api_client_for, alice):
    created = api_client_for(alice).post("/api/v1/api-tokens/", {"name": "ci"}, format="json").json()
    assert created["key"].startswith("berth_") and created["prefix"] == created["key"][:12]
    assert created["expires_at"] is None

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created['key']}")
    listed = client.get("/api/v1/api-tokens/")
    assert listed.status_code == 200
    assert created["key"] not in listed.content.decode()
    detail = client.get(f"/api/v1/api-tokens/{created['id']}/").json()
    assert "key" not in detail and "digest" not in detail


def test_a_colleague_cannot_see_or_revoke_my_token(api_client_for, bob, alice_token):
    client = api_client_for(bob)
    assert client.get(f"/api/v1/api-tokens/{alice_token.pk}/").status_code == 404
    assert client.post(f"/api/v1/api-tokens/{alice_token.pk}/revoke/").status_code == 404
    alice_token.refresh_from_db()
    assert alice_token.revoked_at is None


def test_revoke_action_revokes_and_the_token_stays_listed(api_client_for, alice, alice_token):
    client = api_client_for(alice)
    response = client.post(f"/api/v1/api-tokens/{alice_token.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None and response.json()["is_usable"] is False
    listed = {item["id"]: item for item in client.get("/api/v1/api-tokens/").json()["results"]}
    assert listed[str(alice_token.pk)]["revoked_at"] is not None


def test_a_token_revoking_itself_stops_working(alice):
    _, raw = issue_api_token(alice, name="self", expires_in=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    token_id = ApiToken.objects.get(name="self").pk
    assert client.delete(f"/api/v1/api-tokens/{token_id}/").status_code == 204
    assert client.get("/api/v1/api-tokens/").status_code == 401


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "name"), ({"name": "x", "expires_in_days": 0}, "expires_in_days"), ({"name": "x", "digest": "f" * 64}, "digest")],
)
def test_create_refuses_bad_input(api_client_for, alice, payload, field):
    response = api_client_for(alice).post("/api/v1/api-tokens/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]

