"""Create-input rules as pure functions (no services): each refusal says why."""

import subprocess
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from workspaces.validation import (
    AllowedHost, check_limit, parse_cpu, parse_memory_mb, validate_branch, validate_region, validate_repo_url,
)

HOSTS = ["github.com", "git.example.test:8443", "http://127.0.0.1"]


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("https://github.com/acme/app.git", "https"),
        ("https://GitHub.com/acme/app", "https"),
        ("https://git.example.test:8443/acme/app.git", "https"),
        ("http://127.0.0.1:8765/demo.git", "http"),
        ("https://127.0.0.1/demo.git", "https"),
    ],
)
def test_it_accepts_urls_on_allowed_hosts(url, scheme):
    assert validate_repo_url(url, allowed_hosts=HOSTS) == scheme


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://github.com/acme/app.git", "Plain http://"),
        ("https://gitlab.com/acme/app.git", "not in the allowed git hosts"),
        ("https://git.example.test/acme/app.git", "not in the allowed git hosts"),  # the entry pins port 8443
        ("https://git.example.test:9000/acme/app.git", "not in the allowed git hosts"),
        ("https://user:secret@github.com/acme/app.git", "Credentials"),
        ("https://token@github.com/acme/app.git", "Credentials"),
        ("https://github.com/acme/app.git?x=1", "query"),
        ("https://github.com/acme/app.git#main", "fragment"),
        ("-uhttps://github.com/acme/app.git", "start with '-'"),
        ("--upload-pack=touch /tmp/x", "spaces"),
        ("ext::sh -c touch% /tmp/pwned", "spaces"),
        ("ext::sh", "Remote helpers"),
        ("file:///etc/passwd", "https://"),
        ("/srv/git/demo.git", "https://"),
        ("git://github.com/acme/app.git", "https://"),
        ("ssh://git@github.com/acme/app.git", "not enabled"),
        ("https://github.com/acme/app.git\n", "control"),
        ("https://github.com/ acme", "spaces"),
        ("https://github.com", "no repository path"),
        ("https://github.com:99999/acme/app", "malformed"),
        ("https://github.com\\@evil.test/x", "backslashes"),
        ("https:///acme/app", "no host"),
    ],
)
def test_it_refuses_dangerous_or_unlisted_urls(url, why):
    with pytest.raises(ValidationError) as refused:
        validate_repo_url(url, allowed_hosts=HOSTS)
    assert why in refused.value.messages[0]


def test_ssh_is_allowed_only_for_git_user_when_enabled():
    assert validate_repo_url("ssh://git@github.com/acme/app.git", allowed_hosts=HOSTS, allow_ssh=True) == "ssh"
    for url in ("ssh://root@github.com/acme/app.git", "ssh://github.com/acme/app.git", "ssh://git:pw@github.com/x"):
        with pytest.raises(ValidationError):
            validate_repo_url(url, allowed_hosts=HOSTS, allow_ssh=True)


def test_an_http_entry_allows_http_only_for_its_own_host():
    assert AllowedHost.parse("http://127.0.0.1") == AllowedHost("127.0.0.1", None, True)
    assert AllowedHost.parse("git.example.test:8443") == AllowedHost("git.example.test", 8443, False)
    with pytest.raises(ValidationError):
        validate_repo_url("http://github.com/acme/app.git", allowed_hosts=["github.com", "http://127.0.0.1"])


GOOD_BRANCHES = ["main", "feature/login", "release-1.2", "v1.0", "a.b/c_d", "UPPER", "x@y"]
BAD_BRANCHES = ["-main", "HEAD", "@", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "/a", "a/",
                "a//b", "a.", ".hidden", "a/.b", "a.lock", "a/b.lock", "a@{1}", "tab\tname", "nul\x00"]


@pytest.mark.parametrize("branch", GOOD_BRANCHES)
def test_it_accepts_what_git_accepts(branch):
    validate_branch(branch)
    assert subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True).returncode == 0


@pytest.mark.parametrize("branch", BAD_BRANCHES)
def test_it_refuses_what_git_refuses(branch):
    with pytest.raises(ValidationError):
        validate_branch(branch)
    # Stricter than git on purpose: "@" and "HEAD" name the current commit, not a branch (git's
    # --branch expands "@"); argv cannot carry NUL.
    if "\x00" not in branch and branch not in {"HEAD", "@"}:
        assert subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True).returncode != 0


def test_region_is_a_slug():
    validate_region("eu-west")
    for bad in ("EU", "eu west", "-eu", "x" * 51):
        with pytest.raises(ValidationError):
            validate_region(bad)


def test_resources_parse_and_stay_within_both_limits():
    assert parse_cpu("0.5") == Decimal("0.5")
    assert parse_memory_mb(512) == 512
    for bad in ("lots", "0.333", "NaN", "Infinity"):
        with pytest.raises(ValidationError):
            parse_cpu(bad)
    for bad in ("1.5", -1, True, None, "12a"):
        with pytest.raises(ValidationError):
            parse_memory_mb(bad)
    check_limit(2, minimum=1, image_max=2, org_max=4, unit=" CPU")
    with pytest.raises(ValidationError, match="for this image"):
        check_limit(3, minimum=1, image_max=2, org_max=4, unit=" CPU")
    with pytest.raises(ValidationError, match="in this organization"):
        check_limit(3, minimum=1, image_max=8, org_max=2, unit=" CPU")
    with pytest.raises(ValidationError, match="At least"):
        check_limit(0, minimum=1, image_max=8, org_max=2, unit=" CPU")
