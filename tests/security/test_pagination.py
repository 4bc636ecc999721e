"""A list is paginated whatever `limit` asks for: one request cannot pull a whole table."""

from tenants.models import ApiToken, token_digest

CAP = 500


def test_an_absurd_limit_is_capped_and_the_rest_is_on_the_next_page(api_client_for, alice):
    ApiToken.objects.bulk_create(
        ApiToken(user=alice, name=f"t{i}", prefix="berth_x", digest=token_digest(f"raw-{i}")) for i in range(CAP + 20)
    )
    response = api_client_for(alice).get("/api/v1/api-tokens/?limit=100000000")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == CAP + 21  # and the client's own token
    assert len(body["results"]) == CAP
    assert f"limit={CAP}" in body["next"]
