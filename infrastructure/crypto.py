"""Encryption at rest for server credentials. The only module that imports `cryptography`.

Ciphertext format: ``v1:<key id>:<urlsafe-b64(nonce || AES-256-GCM ciphertext)>``. The associated
data binds a ciphertext to its row and field (``<table>:<pk>:<field>``), so a value copied into
another row or column does not decrypt. Keys come from BERTH_ENCRYPTION_KEYS (comma-separated
32-byte urlsafe-base64 keys, the first is used to encrypt), never from SECRET_KEY, so rotating
SECRET_KEY does not touch stored secrets.
"""

import base64
import datetime as _dt
import hashlib
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
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


# --- Key material: parsing and fingerprints (SSH keys, mTLS bundles) -----------------------------------

MIN_RSA_BITS = 3072
_ALLOWED_CURVES = {"secp256r1", "secp384r1", "secp521r1"}


class KeyMaterialError(ValueError):
    """Key material the operator gave is unusable. `field` names the input to fix; the message never
    contains the material itself."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def fingerprint(blob: bytes) -> str:
    """`SHA256:<unpadded base64>` of a key blob, exactly as `ssh-keygen -lf` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_line_fingerprint(line: str) -> tuple[str, str, str]:
    """(key type, base64 blob, fingerprint) of an authorized_keys / known_hosts style line
    (`[host]:port ssh-ed25519 AAAA...` or `ssh-ed25519 AAAA... comment`). ValueError if it is not one."""
    parts = line.split()
    for index, part in enumerate(parts[:-1]):
        if part.startswith(("ssh-", "ecdsa-sha2-")):
            try:
                blob = base64.b64decode(parts[index + 1], validate=True)
            except ValueError as exc:
                raise ValueError("the key's base64 part does not decode") from exc
            return part, parts[index + 1], fingerprint(blob)
    raise ValueError("no ssh-ed25519 / ecdsa-sha2-* / ssh-rsa key found on the line")


@dataclass(frozen=True)
class SSHKeyMaterial:
    """A validated SSH private key, normalised to OpenSSH format (still protected by its passphrase
    when it had one) with its public line and fingerprint."""

    private_key: str
    public_line: str
    key_type: str
    fingerprint: str


def _check_key_strength(key) -> None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyMaterialError(
                "private_key", f"RSA keys must have at least {MIN_RSA_BITS} bits; this one has {key.key_size}."
            )
        return
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _ALLOWED_CURVES:
            raise KeyMaterialError("private_key", f"ECDSA curve {key.curve.name} is not supported (use P-256/384/521).")
        return
    if isinstance(key, dsa.DSAPrivateKey):
        raise KeyMaterialError("private_key", "DSA keys are insecure and not accepted; use ed25519.")
    raise KeyMaterialError("private_key", "Unsupported key type: use ed25519, ECDSA or RSA (3072 bits or more).")


def _ssh_material(key, passphrase: str) -> SSHKeyMaterial:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    key_type, b64 = public.split()[:2]
    return SSHKeyMaterial(private, f"{key_type} {b64}", key_type, fingerprint(base64.b64decode(b64)))


def parse_ssh_private_key(text: str, passphrase: str = "") -> SSHKeyMaterial:
    """Validate an OpenSSH or PEM private key (ed25519, ECDSA P-256/384/521, RSA >= 3072 bits)."""
    data = (text or "").strip().encode()
    if not data:
        raise KeyMaterialError("private_key", "Paste the private key (the file starting with -----BEGIN).")
    password = passphrase.encode() if passphrase else None
    loader = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else serialization.load_pem_private_key
    try:
        key = loader(data, password=password)
    except TypeError as exc:  # cryptography signals a missing / superfluous password with TypeError
        if password is None:
            raise KeyMaterialError("passphrase", "This key is encrypted: enter its passphrase.") from None
        raise KeyMaterialError("passphrase", "This key is not encrypted: leave the passphrase empty.") from exc
    except ValueError:
        if password is not None and (b"ENCRYPTED" in data or b"OPENSSH PRIVATE KEY" in data):
            raise KeyMaterialError("passphrase", "The passphrase does not unlock this key.") from None
        raise KeyMaterialError("private_key", "This is not a readable private key (OpenSSH or PEM format).") from None
    except Exception:  # noqa: BLE001 - any other parser failure is still the operator's malformed input
        raise KeyMaterialError("private_key", "This is not a readable private key (OpenSSH or PEM format).") from None
    _check_key_strength(key)
    return _ssh_material(key, passphrase)


def generate_ssh_key_pair() -> SSHKeyMaterial:
    return _ssh_material(ed25519.Ed25519PrivateKey.generate(), "")


@dataclass(frozen=True)
class TLSBundleInfo:
    """What Berth records about a validated mTLS bundle: the client certificate's fingerprint and expiry."""

    fingerprint: str
    expires_at: _dt.datetime


def _load_cert(field: str, pem: str, now: _dt.datetime) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate((pem or "").strip().encode())
    except Exception:  # noqa: BLE001 - any parser failure is the operator's malformed input
        raise KeyMaterialError(field, "This is not a PEM certificate (-----BEGIN CERTIFICATE-----).") from None
    if cert.not_valid_after_utc <= now:
        raise KeyMaterialError(field, f"This certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC.")
    if cert.not_valid_before_utc > now:
        raise KeyMaterialError(field, f"This certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d} UTC.")
    return cert


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_tls_bundle(ca_cert: str, client_cert: str, client_key: str) -> TLSBundleInfo:
    """Validate a Docker mTLS bundle: both certificates parse and are current, the CA is a CA, and
    the client key is the private half of the client certificate."""
    now = _dt.datetime.now(_dt.timezone.utc)
    ca = _load_cert("ca_cert", ca_cert, now)
    try:
        is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise KeyMaterialError("ca_cert", "This certificate is not a CA certificate (basicConstraints CA:TRUE).")
    cert = _load_cert("client_cert", client_cert, now)
    try:
        key = serialization.load_pem_private_key((client_key or "").strip().encode(), password=None)
    except TypeError:
        raise KeyMaterialError("client_key", "The client key must not be passphrase-protected.") from None
    except Exception:  # noqa: BLE001
        raise KeyMaterialError("client_key", "This is not a readable PEM private key.") from None
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise KeyMaterialError("client_key", "This key does not match the client certificate.")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise KeyMaterialError("client_key", "RSA client keys must have at least 2048 bits.")
    return TLSBundleInfo(fingerprint(cert.public_bytes(serialization.Encoding.DER)), cert.not_valid_after_utc)
