"""API tokens: only a digest is stored, the raw key works with either keyword until it expires or is revoked."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiToken
from tenants.services import issue_api_token, revoke_api_token


def client_with(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def every_row_as_text() -> str:
    """Every row of every table, as PostgreSQL prints it: where a stored raw token would show."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT t::text FROM {connection.ops.quote_name(table)} AS t")
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def test_the_raw_token_is_nowhere_in_the_database(alice):
    token, raw = issue_api_token(alice, name="laptop", expires_in=timedelta(days=1))
    assert client_with(f"Token {raw}").get("/api/v1/organizations/").status_code == 200  # used, so last_used set
    text = every_row_as_text()
    assert token.digest in text  # the scan does see the token row
    assert raw not in text
    assert raw[12:] not in text  # not even the part after the shown prefix


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token", "BEARER"])
def test_both_keywords_are_accepted(alice, keyword):
    _, raw = issue_api_token(alice, name="laptop", expires_in=None)
    assert client_with(f"{keyword} {raw}").get("/api/v1/organizations/").status_code == 200


@pytest.mark.parametrize(
    "header", ["Token", "Token a b", "Token berth_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer \xe9"]
)
def test_bad_headers_are_refused_with_a_message(db, header):
    response = client_with(header).get("/api/v1/organizations/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_an_expired_token_is_refused(alice):
    token, raw = issue_api_token(alice, name="short", expires_in=timedelta(days=1))
    client = client_with(f"Token {raw}")
    assert client.get("/api/v1/organizations/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/organizations/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_revoked_token_is_refused_and_the_revocation_audited(alice):
    token, raw = issue_api_token(alice, name="laptop", expires_in=None)
    revoke_api_token(token, actor=alice)
    assert client_with(f"Token {raw}").get("/api/v1/organizations/").status_code == 401
    assert token.revoked_at is not None


def test_a_deactivated_users_token_is_refused(alice):
    _, raw = issue_api_token(alice, name="laptop", expires_in=None)
    alice.is_active = False
    alice.save()
    assert client_with(f"Token {raw}").get("/api/v1/organizations/").status_code == 401


def test_issue_token_prints_a_working_token(alice, capsys):
    call_command("issue_token", "alice", "--expires-days", "7", "--name", "deploy")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(name="deploy")
    assert token.user == alice and raw.startswith(token.prefix)
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert client_with(f"Bearer {raw}").get("/api/v1/organizations/").status_code == 200


@pytest.mark.parametrize(("argv", "message"), [(["nobody"], "No active user"), (["alice", "--expires-days", "0"], "at least 1")])
def test_issue_token_refuses_bad_arguments(alice, argv, message):
    with pytest.raises(CommandError, match=message):
        call_command("issue_token", *argv)
    assert not ApiToken.objects.exists()
