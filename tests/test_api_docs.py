"""The OpenAPI schema and its browsable docs render, from our own static files (no CDN)."""


def test_the_schema_describes_the_api_and_its_token_header(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in ("/api/v1/organizations/", "/api/v1/api-tokens/", "/api/v1/api-tokens/{id}/revoke/", "/api/v1/audit-events/"):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"


def test_the_docs_page_loads_swagger_ui_from_our_static_files(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()
