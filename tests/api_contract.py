"""One reusable contract for every API endpoint (NetBox's APIViewTestCases, as pytest mixins).

A test class picks the contracts its endpoint offers and provides the fixtures they use:

    class TestThingApi(ListContract, RetrieveContract, UpdateContract):
        url = "/api/v1/things/"
        update_action = "thing.update"          # audit action the write must record

        @pytest.fixture
        def obj(self, ...): ...                            # visible to allowed_user
        @pytest.fixture
        def foreign_obj(self, ...): ...                    # belongs to the outsider's tenant
        @pytest.fixture
        def update_payload(self): return {"field": "value"}
        @pytest.fixture
        def add_rows(self, ...): return lambda: ...      # adds more rows allowed_user sees

`allowed_user` (default: alice, owner of acme) may use `obj`; `outsider` (default: charlie, owner of
globex) is the other tenant, for whom `obj` must be a 404. Override either fixture when the endpoint
needs someone else (an auditor, a superuser).

Checked for each: anonymous 401; the other tenant gets 404 for every id of ours (and the row stays
as it was); listing never shows another tenant's row; the allowed user succeeds, and every write
leaves an audit event naming the actor; an unknown field is a 400; a list costs the same queries
(`list_query_count`) for one row as after `add_rows()`.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent


def assert_audited(action: str, *, actor, target_id=None) -> AuditEvent:
    """The newest event with this action, by this actor (and on this target when given)."""
    events = AuditEvent.objects.filter(action=action, actor=actor)
    if target_id is not None:
        events = events.filter(target_id=str(target_id))
    event = events.order_by("-id").first()
    assert event is not None, f"no audit event {action!r} by {actor} on {target_id}"
    return event


def result_ids(response) -> set[str]:
    """The ids in a paginated list response, as strings (ids may be ints or UUIDs)."""
    assert response.status_code == 200, response.content
    return {str(item["id"]) for item in response.json()["results"]}


def list_queries(client, url: str) -> int:
    """Queries one GET of `url` costs, after a first request that may stamp the token's last use.
    Pin it for a short and a long list: the count must not grow with the page."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


class ApiContract:
    url: str

    @pytest.fixture
    def allowed_user(self, alice):
        return alice

    @pytest.fixture
    def outsider(self, charlie):
        return charlie

    def detail_url(self, obj) -> str:
        return f"{self.url}{obj.pk}/"


class ListContract(ApiContract):
    list_query_count = 3  # token lookup, count, page

    def test_list_costs_the_same_queries_for_one_row_or_many(self, api_client_for, allowed_user, obj, add_rows):
        client = api_client_for(allowed_user)
        one = list_queries(client, self.url)
        rows_before = client.get(self.url).json()["count"]
        add_rows()
        assert client.get(self.url).json()["count"] > rows_before, "add_rows added no row the allowed user sees"
        assert list_queries(client, self.url) == one == self.list_query_count

    def test_list_refuses_anonymous(self, api_client_for):
        assert api_client_for(None).get(self.url).status_code == 401

    def test_list_shows_own_rows_and_never_another_tenants(self, api_client_for, allowed_user, obj, foreign_obj):
        ids = result_ids(api_client_for(allowed_user).get(self.url))
        assert str(obj.pk) in ids
        assert str(foreign_obj.pk) not in ids

    def test_list_to_the_outsider_never_shows_our_rows(self, api_client_for, outsider, obj):
        assert str(obj.pk) not in result_ids(api_client_for(outsider).get(self.url))


class RetrieveContract(ApiContract):
    def test_retrieve_refuses_anonymous(self, api_client_for, obj):
        assert api_client_for(None).get(self.detail_url(obj)).status_code == 401

    def test_retrieve_hides_the_row_from_another_tenant(self, api_client_for, outsider, obj):
        response = api_client_for(outsider).get(self.detail_url(obj))
        assert response.status_code == 404
        assert "detail" in response.json()

    def test_retrieve_of_a_malformed_id_is_a_json_404(self, api_client_for, allowed_user):
        response = api_client_for(allowed_user).get(f"{self.url}not-an-id/")
        assert response.status_code == 404
        assert "detail" in response.json()

    def test_retrieve_succeeds_for_the_allowed_user(self, api_client_for, allowed_user, obj):
        response = api_client_for(allowed_user).get(self.detail_url(obj))
        assert response.status_code == 200, response.content
        assert str(response.json()["id"]) == str(obj.pk)


class CreateContract(ApiContract):
    create_action: str

    def test_create_refuses_anonymous(self, api_client_for, create_payload):
        assert api_client_for(None).post(self.url, create_payload, format="json").status_code == 401

    def test_create_succeeds_and_is_audited(self, api_client_for, allowed_user, create_payload):
        response = api_client_for(allowed_user).post(self.url, create_payload, format="json")
        assert response.status_code == 201, response.content
        assert_audited(self.create_action, actor=allowed_user, target_id=response.json()["id"])

    def test_create_refuses_malformed_json(self, api_client_for, allowed_user):
        response = api_client_for(allowed_user).post(self.url, "{not json", content_type="application/json")
        assert response.status_code == 400
        assert "JSON" in response.json()["detail"]

    def test_create_refuses_an_unknown_field(self, api_client_for, allowed_user, create_payload):
        response = api_client_for(allowed_user).post(self.url, {**create_payload, "no_such_field": 1}, format="json")
        assert response.status_code == 400
        assert "no_such_field" in response.json()["errors"]


class UpdateContract(ApiContract):
    update_action: str

    def test_update_refuses_anonymous(self, api_client_for, obj, update_payload):
        assert api_client_for(None).patch(self.detail_url(obj), update_payload, format="json").status_code == 401

    def test_update_hides_the_row_from_another_tenant(self, api_client_for, outsider, obj, update_payload):
        before = type(obj).objects.filter(pk=obj.pk).values().get()
        assert api_client_for(outsider).patch(self.detail_url(obj), update_payload, format="json").status_code == 404
        assert type(obj).objects.filter(pk=obj.pk).values().get() == before

    def test_update_succeeds_and_is_audited(self, api_client_for, allowed_user, obj, update_payload):
        response = api_client_for(allowed_user).patch(self.detail_url(obj), update_payload, format="json")
        assert response.status_code == 200, response.content
        assert_audited(self.update_action, actor=allowed_user, target_id=obj.pk)

    def test_update_refuses_an_unknown_field(self, api_client_for, allowed_user, obj):
        response = api_client_for(allowed_user).patch(self.detail_url(obj), {"no_such_field": 1}, format="json")
        assert response.status_code == 400
        assert "no_such_field" in response.json()["errors"]


class DestroyContract(ApiContract):
    destroy_action: str

    def test_destroy_refuses_anonymous(self, api_client_for, obj):
        assert api_client_for(None).delete(self.detail_url(obj)).status_code == 401
        assert type(obj).objects.filter(pk=obj.pk).exists()

    def test_destroy_hides_the_row_from_another_tenant(self, api_client_for, outsider, obj):
        before = type(obj).objects.filter(pk=obj.pk).values().get()
        assert api_client_for(outsider).delete(self.detail_url(obj)).status_code == 404
        assert type(obj).objects.filter(pk=obj.pk).values().get() == before

    def test_destroy_succeeds_and_is_audited(self, api_client_for, allowed_user, obj):
        response = api_client_for(allowed_user).delete(self.detail_url(obj))
        assert response.status_code in (202, 204), response.content
        assert_audited(self.destroy_action, actor=allowed_user, target_id=obj.pk)

