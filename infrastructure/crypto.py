"""Encryption at rest for server credentials. The only module that imports `cryptography`.

Ciphertext format: ``v1:<key id>:<urlsafe-b64(nonce || AES-256-GCM ciphertext)>``. The associated
data binds a ciphertext to its row and field (``<table>:<pk>:<field>``), so a value copied into
another row or column does not decrypt. Keys come from BERTH_ENCRYPTION_KEYS (comma-separated
32-byte urlsafe-base64 keys, the first is used to encrypt), never from SECRET_KEY, so rotating
SECRET_KEY does not touch stored secrets.
"""

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VERSION = "v1"


class DecryptionError(Exception):
    """The ciphertext is not ours, was tampered with, belongs to another row, or its key is gone."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode())
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("BERTH_ENCRYPTION_KEYS holds a value that is not urlsafe base64.") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured("Each BERTH_ENCRYPTION_KEYS entry must decode to exactly 32 bytes.")
    return raw


def key_id(raw_key: bytes) -> str:
    return hashlib.sha256(raw_key).hexdigest()[:8]


def _keys() -> list[bytes]:
    keys = [_decode_key(k) for k in settings.BERTH_ENCRYPTION_KEYS]
    if not keys:
        raise ImproperlyConfigured("BERTH_ENCRYPTION_KEYS is empty.")
    return keys


def associated_data(table: str, pk, field: str) -> bytes:
    return f"{table}:{pk}:{field}".encode()


def encrypt(plaintext: str, *, aad: bytes) -> str:
    """Encrypt under the primary key. Callers owe a stable `aad` naming the row and field."""
    key = _keys()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), aad)
    return f"{VERSION}:{key_id(key)}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, aad: bytes) -> str:
    try:
        version, kid, body = token.split(":", 2)
        blob = base64.urlsafe_b64decode(body.encode())
    except (ValueError, AttributeError) as exc:
        raise DecryptionError("not a Berth ciphertext") from exc
    if version != VERSION:
        raise DecryptionError(f"unknown ciphertext version {version!r}")
    key = next((k for k in _keys() if key_id(k) == kid), None)
    if key is None:
        raise DecryptionError(f"no configured key has id {kid} (was it removed before rotation?)")
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad).decode()
    except InvalidTag as exc:
        raise DecryptionError("ciphertext does not authenticate for this row and field") from exc


def needs_rotation(token: str) -> bool:
    return not token.startswith(f"{VERSION}:{key_id(_keys()[0])}:")
