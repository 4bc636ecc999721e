import pytest
import audit.services as audit
from audit.choices import Outcome
from tests.api_contract import ListContract, RetrieveContract, result_ids


@pytest.fixture
def acme_event(alice, acme):
    return audit.record(actor=alice, action="workspace.create", target=acme)


@pytest.fixture
def globex_event(charlie, globex):
    return audit.record(actor=charlie, action="workspace.create", target=globex)


class TestAuditEventApi(ListContract, RetrieveContract):
    url = "/api/v1/audit-events/"

    @pytest.fixture
    def obj(self, acme_event):
        return acme_event

    @pytest.fixture
    def foreign_obj(self, globex_event):
        return globex_event

    @pytest.fixture
    def add_rows(self, alice, acme):
        return lambda: [audit.record(actor=alice, action=f"test.{number}", target=acme) for number in range(50)]


def test_an_auditor_reads_the_organizations_log(api_client_for, auditor, acme_event, globex_event):
    assert result_ids(api_client_for(auditor).get("/api/v1/audit-events/")) >= {str(acme_event.pk)}
    assert api_client_for(auditor).get(f"/api/v1/audit-events/{globex_event.pk}/").status_code == 404


def test_a_plain_member_sees_no_events(api_client_for, bob, acme_event):
    client = api_client_for(bob)
    assert result_ids(client.get("/api/v1/audit-events/")) == set()
    assert client.get(f"/api/v1/audit-events/{acme_event.pk}/").status_code == 404


def test_a_superuser_sees_every_organizations_events(api_client_for, operator, acme_event, globex_event):
    assert {str(acme_event.pk), str(globex_event.pk)} <= result_ids(api_client_for(operator).get("/api/v1/audit-events/"))


def test_filters_by_action_outcome_and_organization(api_client_for, operator, alice, acme, globex, acme_event, globex_event):
    denied = audit.record(actor=alice, action="workspace.delete", target=acme, outcome=Outcome.DENIED)
    client = api_client_for(operator)
    assert result_ids(client.get("/api/v1/audit-events/", {"action": "workspace.delete"})) == {str(denied.pk)}
    assert result_ids(client.get("/api/v1/audit-events/", {"outcome": "denied"})) == {str(denied.pk)}
    assert result_ids(client.get("/api/v1/audit-events/", {"organization": globex.pk})) == {str(globex_event.pk)}
    assert result_ids(client.get("/api/v1/audit-events/", {"action_prefix": "workspace.", "organization": acme.pk})) == {
        str(acme_event.pk), str(denied.pk),
    }


@pytest.mark.parametrize(("param", "value"), [("outcome", "maybe"), ("organization", "acme"), ("created_after", "yesterday")])
def test_a_bad_filter_value_is_a_400(api_client_for, alice, param, value):
    response = api_client_for(alice).get("/api/v1/audit-events/", {param: value})
    assert response.status_code == 400
    assert param in response.json()["errors"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_log_cannot_be_written_through_the_api(api_client_for, alice, acme_event, method):
    url = "/api/v1/audit-events/" if method == "post" else f"/api/v1/audit-events/{acme_event.pk}/"
    assert getattr(api_client_for(alice), method)(url, {"action": "x"}, format="json").status_code == 405

