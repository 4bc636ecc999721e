"""One person's runaway script cannot take the API from everyone: past BERTH_API_RATE_LIMIT
requests in a minute, their requests are a 429 that says when to come back."""

import time

import pytest
from django.core.cache import cache


@pytest.fixture
def limit_of_three(settings):
    settings.BERTH_API_RATE_LIMIT = 3
    if 60 - time.time() % 60 < 5:  # all requests of a test fall in one minute's window
        time.sleep(60 - time.time() % 60)
    yield
    cache.delete_pattern("api-rate:*")


def test_past_the_limit_a_person_gets_429_with_retry_after(api_client_for, alice, acme, limit_of_three):
    client = api_client_for(alice)
    assert [client.get("/api/v1/workspaces/").status_code for _ in range(3)] == [200, 200, 200]

    refused = client.get("/api/v1/workspaces/")

    assert refused.status_code == 429
    assert "throttled" in refused.json()["detail"]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert client.post("/api/v1/workspaces/", {"name": "more"}, format="json").status_code == 429


def test_the_limit_counts_each_person_separately(api_client_for, alice, bob, acme, limit_of_three):
    alices = api_client_for(alice)
    for _ in range(4):
        alices.get("/api/v1/workspaces/")

    assert api_client_for(bob).get("/api/v1/workspaces/").status_code == 200


def test_zero_turns_the_limit_off(api_client_for, alice, acme, settings):
    settings.BERTH_API_RATE_LIMIT = 0
    client = api_client_for(alice)
    assert {client.get("/api/v1/organizations/").status_code for _ in range(5)} == {200}
