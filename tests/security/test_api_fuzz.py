"""Malformed input on every API route is a 4xx, never a 500.

The routes come from the URL resolver, so a route added later is fuzzed too. Each is called by an
authenticated user (alice, owner of acme, and an operator for the operator-only routes) with
malformed ids, query parameters and bodies; every answer must be below 500."""

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tenants.services import issue_api_token

BAD_IDS = ["not-a-uuid", "-1", "0", "9" * 40, "%00", "..", "1.5", "00000000-0000-0000-0000-000000000000"]
BAD_QUERIES = [
    "?limit=-1&offset=-5", "?limit=abc&offset=xyz", "?limit=99999999999999999999&offset=99999999999999999999",
    "?depth=-1", "?depth=999999", "?depth=" + "9" * 5000, "?path=%00", "?path=..%2f..%2fetc", "?path=" + "a/" * 3000,
    "?ordering=digest", "?organization=abc", "?created_after=not-a-date", "?status=nonsense", "?download=1&path=..",
    "?preview=1",
]
DEEP = "[" * 5000 + "]" * 5000
BODIES = [
    (b"\xff\xfe\x00not utf-8", "application/json"),
    (b"{not json", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b'"a string"', "application/json"),
    (b"null", "application/json"),
    (DEEP.encode(), "application/json"),
    (json.dumps({"name": "x" * 100_000, "organization": ["a"], "image": {"id": 1}, "cpu": "NaN",
                 "memory_mb": 1e309, "expires_in_days": -1, "path": None, "from": 1, "to": [],
                 "fingerprint": None, "diff": 5}).encode(), "application/json"),
    (json.dumps({"cpu": "Infinity", "memory_mb": "1e9", "name": "\x00", "repo_url": "\ud800"}).encode(),
     "application/json"),
    (b"\xff\xfe binary", "text/plain"),
    (b"name=x", "application/x-www-form-urlencoded"),
    (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--", "multipart/form-data; boundary=x"),
    (b"<a/>", "application/xml"),
    (b"{}", "application/json; charset=latin-1"),
]


def _routes(wanted) -> list[str]:
    """Regexes of every route whose joined regex `wanted(regex)` accepts, from the resolver tree."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^").rstrip("$").replace("\\Z", "")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
            elif isinstance(pattern, URLPattern) and wanted(regex):
                found.append(regex)

    walk(get_resolver().url_patterns, "")
    return sorted(set(found))


def _fill(route: str, value: str) -> str | None:
    """The route with every named group set to `value` (None for format-suffix variants)."""
    if "format" in route:
        return None
    url = re.sub(r"\(\?P<[^>]+>[^)]*\)", value, route)
    url = url.replace("\\.", ".").replace("/?", "/").replace("\\", "")
    return "/" + url


@pytest.fixture
def clients(alice, operator):
    def client_of(user):
        client = APIClient()
        client.raise_request_exception = False  # collect every 500, do not stop at the first
        _, raw = issue_api_token(user, name="fuzz", expires_in=None)
        client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        return client

    return [client_of(alice), client_of(operator)]


def test_every_api_route_answers_malformed_input_below_500(clients, placed_workspace):
    routes = _routes(lambda regex: regex.startswith("api/"))
    assert any("files" in route for route in routes) and any("servers" in route for route in routes), routes
    ids = [str(placed_workspace.pk), *BAD_IDS]
    failures = []

    def check(client, method, url, **kwargs):
        response = getattr(client, method)(url, **kwargs)
        if response.status_code >= 500:
            body = kwargs.get("data", b"")[:40]
            failures.append(f"{method.upper()} {url} {kwargs.get('content_type', '')} {body!r} -> {response.status_code}")

    for route in routes:
        for value in ids:
            url = _fill(route, value)
            if url is None:
                continue
            for client in clients:
                check(client, "delete", url + "?path=%2e%2e")
                for query in BAD_QUERIES if value in ids[:2] else BAD_QUERIES[:2]:
                    check(client, "get", url + query)
                for body, content_type in BODIES if value in ids[:2] else ():
                    for method in ("post", "put", "patch"):
                        check(client, method, url + "?path=x.txt", data=body, content_type=content_type)
    assert not failures, "\n".join(failures)


PAGE_POSTS = [
    {}, {"organization": "abc", "next": "//evil.example"}, {"organization": "99999999999999999999"},
    {"name": "\x00" * 10, "source": "clone", "repo_url": "ext::sh", "branch": "--upload-pack=x", "image": "abc",
     "size": "huge"},
    {"name": "x" * 5000, "expires_days": "-1"}, {"username": "\x00", "password": "x" * 10_000},
]


def test_every_page_answers_malformed_input_below_500(client, alice, placed_workspace):
    client.raise_request_exception = False
    client.force_login(alice)
    failures = []
    for route in _routes(lambda regex: not regex.startswith(("api/", "admin/"))):
        for value in [str(placed_workspace.pk), "not-a-uuid", "stop", "x" * 300]:
            url = _fill(route, value)
            if url is None:
                continue
            for data in PAGE_POSTS:
                for response in (client.get(url, data), client.post(url, data)):
                    if response.status_code >= 500:
                        failures.append(f"{response.request['REQUEST_METHOD']} {url} {data} -> {response.status_code}")
            client.force_login(alice)  # a POST to the sign-out page ended the session
    assert not failures, "\n".join(failures)
