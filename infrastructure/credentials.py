"""Validation of operator-supplied key material, with errors naming the field to fix.

The parsing itself lives in crypto.py (the only module that imports `cryptography`); this module turns
its failures into Django ValidationErrors, which the API shows as 400s and the admin as form errors.
Messages never quote the material.
"""

import hmac
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError

from . import crypto

AGENT_KEY_PREFIX = "berth_agent_"
_FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def _field_error(exc: crypto.KeyMaterialError, prefix: str = "") -> ValidationError:
    return ValidationError({f"{prefix}{exc.field}": exc.message})


def validate_ssh_key(private_key: str, passphrase: str = "") -> crypto.SSHKeyMaterial:
    try:
        return crypto.parse_ssh_private_key(private_key, passphrase)
    except crypto.KeyMaterialError as exc:
        raise _field_error(exc) from None


def validate_tls_bundle(ca_cert: str, client_cert: str, client_key: str) -> crypto.TLSBundleInfo:
    try:
        return crypto.parse_tls_bundle(ca_cert, client_cert, client_key)
    except crypto.KeyMaterialError as exc:
        raise _field_error(exc) from None


def normalize_expected_fingerprint(value: str) -> str:
    """An expected host key given at registration: a `SHA256:...` fingerprint, a known_hosts line or a
    public key line. Returns the fingerprint; ValidationError naming the field otherwise."""
    value = (value or "").strip()
    if not value:
        return ""
    if _FINGERPRINT_RE.match(value):
        return value
    try:
        return crypto.public_line_fingerprint(value)[2]
    except ValueError:
        raise ValidationError({
            "expected_host_key_fingerprint": "Give the fingerprint as SHA256:... (ssh-keygen -lf prints it) or a "
            "known_hosts line."
        }) from None


def new_agent_api_key() -> tuple[str, str]:
    """(raw key, digest). Only the HMAC digest is stored; the raw key is shown once."""
    raw = AGENT_KEY_PREFIX + secrets.token_urlsafe(32)
    return raw, agent_key_digest(raw)


def agent_key_digest(raw: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), raw.encode(), "sha256").hexdigest()
