"""What the client put on the wire, read back inside an `aioresponses` block, and checked."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import aiohttp
from aioresponses import aioresponses
from pydantic import SecretStr
from yarl import URL

from bot.binance.client import SignedClient
from bot.binance.signing import HmacSigner
from tests.fakes import FakeClock

BASE = "https://api.binance.com"
# Binance's documented example key pair (docs/exchange.md §1.1)
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW_MS = 1_700_000_000_000
SAMPLE_ADV_NO = "12345678901234567890"


@dataclass(slots=True)
class Sent:
    """One request exactly as the client handed it to aiohttp."""

    method: str
    url: URL
    headers: dict[str, str]
    body: bytes | None
    timeout: aiohttp.ClientTimeout | None = None

    @property
    def raw_query(self) -> str:
        """The query string as sent, percent-encoding untouched."""
        return self.url.raw_query_string

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The query's (name, raw value) pairs, in order."""
        if not self.raw_query:
            return []
        return [tuple(p.split("=", 1)) for p in self.raw_query.split("&")]  # type: ignore[misc]

    @property
    def keys(self) -> list[str]:
        """The query's parameter names, in order."""
        return [k for k, _ in self.pairs]

    def param(self, name: str) -> str:
        """One query value, decoded once."""
        return unquote(dict(self.pairs)[name])

    def json(self) -> Any:
        """The decoded JSON body."""
        assert self.body is not None
        return json.loads(self.body)


def sent_requests() -> list[Sent]:
    """Every request sent so far in the current `aioresponses` block (it patches `_request`)."""
    mock: Any = aiohttp.client.ClientSession._request
    out = []
    for call in mock.call_args_list:
        _session, method, url = call.args[:3]
        assert isinstance(url, URL), "the client must hand aiohttp a yarl.URL(..., encoded=True)"
        data = call.kwargs.get("data")
        headers = dict(call.kwargs.get("headers") or {})
        out.append(Sent(method, url, headers, data, call.kwargs.get("timeout")))
    return out


def expected_signature(raw_query: str, secret: str = SECRET) -> str:
    """The documented rule: hex HMAC-SHA256 of the query as sent, up to `&signature=`."""
    signed = raw_query.rsplit("&signature=", 1)[0]
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()


def assert_signed(sent: Sent) -> None:
    """recvWindow, timestamp, then signature last; the signature matches the sent bytes."""
    keys = sent.keys
    assert keys[-3:] == ["recvWindow", "timestamp", "signature"], keys
    assert keys.count("signature") == 1
    assert sent.param("timestamp").isdigit()
    assert sent.param("signature") == expected_signature(sent.raw_query)


def path_re(path: str) -> re.Pattern[str]:
    """A URL pattern for `path` with any query."""
    return re.compile(rf"^{re.escape(BASE + path)}(\?.*)?$")


def envelope(data: Any = None, total: int | None = None) -> dict[str, Any]:
    """The success envelope."""
    body: dict[str, Any] = {"code": "000000", "message": "success", "data": data, "success": True}
    if total is not None:
        body["total"] = total
    return body


def ad_json(**overrides: Any) -> dict[str, Any]:
    """An ad as search and listWithPagination give it."""
    ad: dict[str, Any] = {
        "advNo": SAMPLE_ADV_NO, "classify": "mass", "tradeType": "SELL", "asset": "USDT",
        "fiatUnit": "RUB", "fiatSymbol": "₽", "advStatus": 1, "priceType": 1,
        "price": "92.51", "priceFloatingRatio": "0.00000000", "initAmount": "1000.00000000",
        "surplusAmount": "114.00000000", "tradableQuantity": "114.00000000",
        "minSingleTransAmount": "500.00000000", "maxSingleTransAmount": "10546.14000000",
        "dynamicMaxSingleTransAmount": "10546.14000000", "payTimeLimit": 15,
        "tradeMethods": [{"payId": None, "identifier": "TinkoffNew", "tradeMethodName": "Tinkoff",
                          "iconUrlColor": "#FFDD2D"}],
        "remarks": None, "autoReplyMsg": "", "createTime": 1700000000000,
        "advUpdateTime": 1700000100000, "assetScale": 2, "fiatScale": 2, "priceScale": 2,
        "offlineReason": None, "isTradable": True,
    }
    ad.update(overrides)
    return ad


def search_item(**overrides: Any) -> dict[str, Any]:
    """One search row."""
    return {
        "adv": ad_json(**overrides),
        "advertiser": {"userNo": "s0123456789abcdef0123456789abcdef", "nickName": "alpha",
                       "userType": "merchant", "monthOrderCount": 1520,
                       "monthFinishRate": 0.987, "orderCount": 20000, "advConfirmTime": 45,
                       "positiveRate": "0.99", "userGrade": 3, "proMerchant": None},
    }


def make_client(clock: FakeClock | None = None, **kwargs: Any) -> SignedClient:
    """A client with the documented key pair and a fake clock, time already synced (offset 0)."""
    client = SignedClient(
        BASE,
        api_key=SecretStr(KEY),
        signer=HmacSigner(SecretStr(SECRET)),
        clock=clock or FakeClock(NOW_MS / 1000),
        **kwargs,
    )
    client.time_synced = True
    client.synced_at = client.clock.monotonic()
    return client


@contextmanager
def mocked() -> Iterator[aioresponses]:
    """An `aioresponses` block (aiohttp is pinned below 3.14, which aioresponses 0.7.9 cannot mock)."""
    with aioresponses() as m:
        yield m
