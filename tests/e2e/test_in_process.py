"""The stepped runs' in-process door to the simulator answers as its HTTP door does.

The stepped runs (tests.e2e.support.SteppedClient) hand the bot's requests to the gateway
in-process (`Gateway.exchange`) instead of over a socket. This test sends the same
requests, at the same simulated times, through the bot's own client over HTTP and through
the in-process door, each to its own simulator started from the same seed, with faults of
every kind that answers at once (a dropped connection, 5xx, an HTML 502, a 429, a garbled
body): what the bot gets back and what the exchange logged are the same.
"""

from __future__ import annotations

import random
import tomllib
from typing import Any

from pydantic import SecretStr

from bot.binance.client import SignedClient
from bot.binance.errors import BinanceError
from bot.binance.signing import HmacSigner
from simulator.app import run_simulator
from simulator.clock import SteppedClock
from simulator.scenario import SCENARIO_DIR, Scenario, parse_scenario
from tests.e2e.support import SteppedClient

START_MS = 1_751_796_000_000
SEARCH = {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("server_time", {}), ("search", SEARCH), ("my_ads", {"page": 1, "rows": 10}),
    ("list_orders", {"page": 1, "rows": 20}), ("reference_price", {"assets": ["USDT"],
     "fiatCurrency": "RUB", "tradeType": "SELL"}), ("order_detail", {"adOrderNo": "1"}),
]


def faulty() -> Scenario:
    """`stormy` with the faults that answer at once made frequent (no latency, no hold)."""
    raw = tomllib.loads((SCENARIO_DIR / "stormy.toml").read_text(encoding="utf-8"))
    raw["faults"]["rules"] = [
        {"kind": "drop", "rate": 0.08}, {"kind": "http5xx", "rate": 0.08, "status": 500},
        {"kind": "http5xx", "rate": 0.05, "status": 502, "html": True},
        {"kind": "http429", "rate": 0.04, "retry_after": 2}, {"kind": "malformed", "rate": 0.08},
    ]
    return parse_scenario(raw, "stormy, answering at once")


async def outcomes(in_process: bool) -> tuple[list[Any], list[dict[str, Any]]]:
    """(what the bot's client got for each call, the simulator's request log)."""
    async with run_simulator(faulty(), start_ms=START_MS, stepped=True) as sim:
        clock = SteppedClock(sim.clock)
        kwargs: dict[str, Any] = {
            "api_key": SecretStr(sim.api_key), "signer": HmacSigner(SecretStr(sim.api_secret or "")),
            "clock": clock, "timeout": 10.0, "rng": random.Random(1), "max_rate_limit_retries": 0}
        client = SteppedClient(sim, **kwargs) if in_process else SignedClient(sim.base_url, **kwargs)
        got: list[Any] = []
        async with client:
            for i in range(120):
                name, params = CALLS[i % len(CALLS)]
                got.append(await _call(client, name, params))
                sim.advance(3.0)  # past any 429's Retry-After: no call waits on the clock
        return got, [_comparable(r) for r in sim.requests()]


async def _call(client: SignedClient, name: str, params: dict[str, Any]) -> Any:
    try:
        response = await client.call(name, params)
    except BinanceError as exc:
        return type(exc).__name__, exc.status, exc.code, str(exc).replace(client.base_url, "SIM")
    return response.status, response.data, sorted(
        (k.lower(), v) for k, v in response.headers.items()
        if k.lower().startswith(("x-sapi", "x-mbx", "retry-after")))


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A log record without the signature (each simulator makes its own secret)."""
    query = {k: v for k, v in record["query"].items() if k != "signature"}
    return {**record, "query": query}


async def test_the_in_process_door_answers_as_http_does() -> None:
    over_http, http_log = await outcomes(in_process=False)
    in_process, door_log = await outcomes(in_process=True)
    kinds = {o[0] for o in over_http}
    assert {200, "ExchangeUnavailable", "RateLimited", "BadResponse"} <= kinds, kinds
    assert in_process == over_http
    assert door_log == http_log


