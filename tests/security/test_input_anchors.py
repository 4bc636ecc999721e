"""Names checked with a regular expression are checked to their very end: Python's `$` also matches
before a trailing newline, so "demo\n" passed as a workspace name (the API keeps whitespace; the
name becomes the container's host name) and looked like "demo" next to a real "demo"."""

import pytest
from django.core.exceptions import ValidationError

from workspaces.validation import validate_region


def test_a_workspace_name_with_a_trailing_newline_is_refused(api_client_for, alice, default_image):
    response = api_client_for(alice).post("/api/v1/workspaces/", {"name": "demo\n"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_a_region_with_a_trailing_newline_is_refused():
    with pytest.raises(ValidationError):
        validate_region("eu\n")
