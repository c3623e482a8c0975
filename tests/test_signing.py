"""Signers against Binance's documented vectors and an Ed25519 round trip."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import SecretStr

from bot.binance.client import encode_query
from bot.binance.signing import Ed25519Signer, HmacSigner

SECRET = SecretStr("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j")
ASCII_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)


def test_hmac_documented_vector() -> None:
    assert (
        HmacSigner(SECRET).sign(ASCII_PAYLOAD)
        == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_hmac_percent_encoded_full_width_vector() -> None:
    query = encode_query(
        {"symbol": "１２３４５６", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": 1, "price": "0.1", "recvWindow": 5000, "timestamp": 1499827319559}
    )
    assert query.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY")
    assert (
        HmacSigner(SECRET).sign(query)
        == "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
    )


def test_ed25519_round_trip() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signature = Ed25519Signer(key).sign(ASCII_PAYLOAD)
    key.public_key().verify(base64.b64decode(signature), ASCII_PAYLOAD.encode())
    with pytest.raises(InvalidSignature):
        key.public_key().verify(base64.b64decode(signature), ASCII_PAYLOAD.encode() + b"0")


def test_signers_hide_secrets_in_repr() -> None:
    assert SECRET.get_secret_value() not in repr(HmacSigner(SECRET))
