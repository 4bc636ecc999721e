"""Checks on what a user asks for when creating a workspace. Pure functions (settings are passed in),
so every rule is unit-tested without services; `create_workspace` turns their messages into a 400
that names the field.

The repository URL is handed to `git clone` inside a throw-away container, so the rules here are the
first of two fences (the second is the git `-c protocol.*` configuration in provisioning): only
https (plus http or ssh where the operator allowed it) to a listed host, nothing git could read as
an option, a remote helper (`ext::`) or a local path.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

MIN_CPU = Decimal("0.1")
MIN_MEMORY_MB = 64
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?\Z")  # \Z: "$" would accept a trailing newline
# git check-ref-format: characters no ref may contain, besides control characters and space.
_REF_FORBIDDEN = set("~^:?*[\\")


@dataclass(frozen=True)
class AllowedHost:
    """One GIT_ALLOWED_HOSTS entry: `host[:port]` allows https (and ssh when enabled);
    `http://host[:port]` additionally allows plain http for that host only. No port: any port."""

    host: str
    port: int | None
    allows_http: bool

    @classmethod
    def parse(cls, entry: str) -> "AllowedHost":
        allows_http = entry.startswith("http://")
        rest = entry.removeprefix("http://").rstrip("/")
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        return cls(host=host.lower(), port=int(port) if port else None, allows_http=allows_http)

    def matches(self, host: str, port: int | None) -> bool:
        return host == self.host and (self.port is None or self.port == port)


def parse_allowed_hosts(entries: list[str]) -> list[AllowedHost]:
    return [AllowedHost.parse(entry.strip()) for entry in entries if entry.strip()]


def validate_repo_url(url: str, *, allowed_hosts: list[str], allow_ssh: bool = False) -> str:
    """Return the URL's scheme ("https", "http" or "ssh") or raise ValidationError with the reason."""
    if _CONTROL_OR_SPACE.search(url):
        raise ValidationError("The repository URL must not contain spaces or control characters.")
    if url.startswith("-"):
        raise ValidationError("The repository URL must not start with '-'.")
    if "::" in url:
        raise ValidationError("Remote helpers such as ext:: are not allowed; use an https:// URL.")
    if "\\" in url:
        raise ValidationError("The repository URL must not contain backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"The repository URL is malformed ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http", "ssh"}:
        raise ValidationError("Use an https:// URL (file://, git:// and local paths are not allowed).")
    if scheme == "ssh" and not allow_ssh:
        raise ValidationError("ssh:// repositories are not enabled on this Berth; use https://.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValidationError("The repository URL must not have a query (?) or fragment (#).")
    if parts.password is not None or (scheme != "ssh" and "@" in parts.netloc):
        raise ValidationError("Credentials in the URL are not allowed.")
    if scheme == "ssh" and parts.username != "git":
        raise ValidationError("ssh:// URLs must use the user git (ssh://git@host/...).")
    host = (parts.hostname or "").lower()
    if not host or host.startswith("-"):
        raise ValidationError("The repository URL has no host.")
    if parts.path in {"", "/"}:
        raise ValidationError("The repository URL has no repository path.")
    matching = [entry for entry in parse_allowed_hosts(allowed_hosts) if entry.matches(host, port)]
    if not matching:
        raise ValidationError(f"The host {host} is not in the allowed git hosts of this Berth.")
    if scheme == "http" and not any(entry.allows_http for entry in matching):
        raise ValidationError(f"Plain http:// is not allowed for {host}; use https://.")
    return scheme


def validate_branch(branch: str) -> None:
    """The rules of `git check-ref-format --branch` (see git-check-ref-format(1)), in Python."""
    if len(branch) > 200:
        raise ValidationError("The branch name is too long (at most 200 characters).")
    if branch.startswith("-"):
        raise ValidationError("A branch name must not start with '-'.")
    if branch in {"@", "HEAD"}:
        raise ValidationError(f"{branch!r} is not a branch name.")
    if _CONTROL_OR_SPACE.search(branch) or _REF_FORBIDDEN.intersection(branch):
        raise ValidationError("A branch name must not contain spaces, control characters or ~ ^ : ? * [ \\.")
    if ".." in branch or "@{" in branch:
        raise ValidationError("A branch name must not contain '..' or '@{'.")
    if branch.startswith("/") or branch.endswith("/") or "//" in branch or branch.endswith("."):
        raise ValidationError("A branch name must not start or end with '/', contain '//' or end with '.'.")
    if any(part.startswith(".") or part.endswith(".lock") for part in branch.split("/")):
        raise ValidationError("No part of a branch name may start with '.' or end with '.lock'.")


def validate_region(region: str) -> None:
    if not _REGION.match(region):
        raise ValidationError("Use lowercase letters, digits and hyphens (at most 50), e.g. eu-west.")


def parse_cpu(value) -> Decimal:
    try:
        cpu = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError("Enter a number of CPUs, e.g. 1 or 0.5.") from exc
    if not cpu.is_finite() or cpu != cpu.quantize(Decimal("0.01")):
        raise ValidationError("Enter a number of CPUs with at most two decimals.")
    return cpu


def parse_memory_mb(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationError("Enter the memory as a whole number of MiB, e.g. 1024.")
    return int(value)


def check_limit(value, *, minimum, image_max, org_max, unit: str) -> None:
    """`value` must be at least `minimum` and within both the image's and the organization's maximum."""
    if value < minimum:
        raise ValidationError(f"At least {minimum}{unit}.")
    if value > image_max:
        raise ValidationError(f"At most {image_max}{unit} for this image.")
    if value > org_max:
        raise ValidationError(f"At most {org_max}{unit} in this organization.")
