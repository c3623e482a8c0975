"""Request signers: pure functions from the signed payload to the signature text."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from pydantic import SecretStr


class Signer(Protocol):
    """Signs the exact query bytes that are sent, up to `&signature=`."""

    kind: str

    def sign(self, payload: str) -> str:
        """The signature of `payload`, as it goes into the query (before URL-quoting)."""
        ...


class HmacSigner:
    """HMAC-SHA256, lowercase hex (Binance's HMAC keys; deprecated in favour of Ed25519)."""

    kind = "hmac"

    def __init__(self, secret: SecretStr) -> None:
        self._key = secret.get_secret_value().encode()

    def __repr__(self) -> str:
        return "HmacSigner(secret=**********)"

    def sign(self, payload: str) -> str:
        """Hex HMAC-SHA256 of the payload."""
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


class Ed25519Signer:
    """Ed25519 over the payload, base64."""

    kind = "ed25519"

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Ed25519Signer(private_key=**********)"

    def sign(self, payload: str) -> str:
        """Base64 Ed25519 signature of the payload."""
        return base64.b64encode(self._key.sign(payload.encode())).decode()


class RsaSigner:
    """RSASSA-PKCS1-v1_5 with SHA-256 over the payload, base64."""

    kind = "rsa"

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "RsaSigner(private_key=**********)"

    def sign(self, payload: str) -> str:
        """Base64 RSA-SHA256 signature of the payload."""
        sig = self._key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(sig).decode()


class KeyError_(ValueError):
    """A private key file that cannot be used; the message never holds key material."""


def load_private_key_signer(path: Path, password: SecretStr | None = None) -> Signer:
    """An Ed25519 or RSA signer from a PEM private key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyError_(f"cannot read private key file {path}: {exc.strerror}") from None
    pw = password.get_secret_value().encode() if password else None
    try:
        key = serialization.load_pem_private_key(data, password=pw)
    except (ValueError, TypeError):
        raise KeyError_(
            f"{path} is not a PEM private key (or the password is wrong)"
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaSigner(key)
    raise KeyError_(f"{path} holds a {type(key).__name__}; use an Ed25519 or RSA key")
