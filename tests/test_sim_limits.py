"""Request weight per simulated minute: used-weight headers, 429 with Retry-After, the growing 418 ban."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.binance.client import SignedClient
from bot.binance.errors import IpBanned, RateLimited
from bot.binance.signing import HmacSigner
from simulator.app import Simulator, run_simulator
from simulator.limits import Limiter
from simulator.scenario import LimitsSpec, Scenario, load_scenario
from tests.support import SIM_START_MS, ClientClock, FakeWorld, SimHttp


def limited(**limits: Any) -> Scenario:
    """The calm scenario with other [limits]."""
    base = load_scenario("calm")
    return base.model_copy(update={"limits": LimitsSpec(**limits)})


@pytest.fixture
async def small() -> AsyncIterator[Simulator]:
    """A simulator whose IP budget is 3 weight a minute; bans 120 s doubling, capped at 300 s."""
    async with run_simulator(limited(ip_weight_per_minute=3, max_ban_seconds=300), speed=0,
                             start_ms=SIM_START_MS, world_factory=FakeWorld) as sim:
        yield sim


async def _summary(http: SimHttp) -> tuple[int, str | None, dict[str, str]]:
    reply = await http.call("order_summary")
    return reply.status, reply.headers.get("Retry-After"), reply.headers


async def test_weight_header_counts_up(http_session: aiohttp.ClientSession, small: Simulator) -> None:
    http = SimHttp(http_session, small)
    used = [(await http.call("order_summary")).headers["X-SAPI-USED-IP-WEIGHT-1M"] for _ in range(3)]
    assert used == ["1", "2", "3"]


async def test_ignoring_retry_after_gets_429_then_a_growing_418(
    http_session: aiohttp.ClientSession, small: Simulator
) -> None:
    http = SimHttp(http_session, small)
    for _ in range(3):
        assert (await _summary(http))[0] == 200
    status, retry, headers = await _summary(http)
    assert (status, retry) == (429, "60")  # the clock sits at the start of a minute
    assert headers["X-SAPI-USED-IP-WEIGHT-1M"] == "3"
    reply = await http.call("order_summary")
    assert (reply.status, reply.headers["Retry-After"], reply.code) == (418, "120", -1003)
    assert "banned until" in reply.json["msg"]
    small.advance(30)
    assert (await _summary(http))[:2] == (418, "90")  # during the ban: the time left
    small.advance(91)
    for _ in range(3):
        assert (await _summary(http))[0] == 200
    assert (await _summary(http))[0] == 429
    assert (await _summary(http))[:2] == (418, "240")  # second ban: doubled
    small.advance(241)
    for _ in range(3):
        await _summary(http)
    assert (await _summary(http))[0] == 429
    assert (await _summary(http))[:2] == (418, "300")  # third: capped


async def test_honouring_retry_after_avoids_the_ban(
    http_session: aiohttp.ClientSession, small: Simulator
) -> None:
    http = SimHttp(http_session, small)
    small.advance(45)
    for _ in range(3):
        await _summary(http)
    status, retry, _ = await _summary(http)
    assert (status, retry) == (429, "15")
    small.advance(int(retry or 0))
    assert (await _summary(http))[0] == 200


async def test_scenario_weights_override_the_table(http_session: aiohttp.ClientSession) -> None:
    scenario = limited(ip_weight_per_minute=10, weights={"search": 5})
    async with run_simulator(scenario, speed=0, start_ms=SIM_START_MS, world_factory=FakeWorld) as sim:
        http = SimHttp(http_session, sim)
        body = {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}
        first = await http.call("search", body=body)
        assert first.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "5"
        assert (await http.call("search", body=body)).status == 200
        assert (await http.call("search", body=body)).status == 429
        assert [r["weight"] for r in sim.requests("search")] == [5, 5, 5]


async def test_uid_limited_endpoints_use_their_own_counter(http_session: aiohttp.ClientSession) -> None:
    scenario = limited(ip_weight_per_minute=2, uid_weight_per_minute=100, uid_endpoints=["order_summary"])
    async with run_simulator(scenario, speed=0, start_ms=SIM_START_MS, world_factory=FakeWorld) as sim:
        http = SimHttp(http_session, sim)
        for n in range(1, 5):
            reply = await http.call("order_summary")
            assert reply.headers["X-SAPI-USED-UID-WEIGHT-1M"] == str(n)
            assert "X-SAPI-USED-IP-WEIGHT-1M" not in reply.headers


async def test_bot_client_sees_rate_limited_then_banned(small: Simulator) -> None:
    async with SignedClient(small.base_url, api_key=SecretStr(small.api_key),
                            signer=HmacSigner(SecretStr(small.api_secret or "")),
                            max_rate_limit_retries=0, clock=ClientClock(small.clock)) as client:
        for _ in range(3):
            await client.call("order_summary")
        with pytest.raises(RateLimited) as limited_exc:
            await client.call("order_summary")
        assert limited_exc.value.retry_after == 60
        client.paused_until = 0  # a client that ignores the pause
        with pytest.raises(IpBanned) as banned:
            await client.call("order_summary")
        assert banned.value.retry_after == 120


def test_windows_are_epoch_minutes() -> None:
    limiter = Limiter(LimitsSpec(ip_weight_per_minute=2))
    ticket = limiter.ticket("1.2.3.4", "/sapi/v1/c2c/x", "search", None)
    assert limiter.admit(ticket, 59_000).ok and limiter.admit(ticket, 59_500).ok
    refused = limiter.admit(ticket, 59_900)
    assert (refused.status, refused.retry_after) == (429, 1)
    assert limiter.admit(ticket, 60_000).ok  # a new minute, and not before Retry-After ran out


@pytest.mark.slow
async def test_a_request_in_flight_when_a_429_is_issued_is_not_banned(
    http_session: aiohttp.ClientSession,
) -> None:
    """Arrived before the 429 (held up by a latency fault), admitted after it: not ignoring it.
    A request arriving after the 429, even in the same simulated millisecond, is banned."""
    async with run_simulator(limited(ip_weight_per_minute=100), speed=0, start_ms=SIM_START_MS,
                             world_factory=FakeWorld) as sim:
        http = SimHttp(http_session, sim)
        sim.add_fault("latency", endpoint="categories", latency_ms=300, count=1)
        sim.add_fault("http429", endpoint="order_summary", retry_after=5, count=1)
        arrived = asyncio.Event()
        original = sim.gateway.log.open

        def open_(**fields: Any) -> dict[str, Any]:
            if fields.get("endpoint") == "categories":
                arrived.set()
            return original(**fields)

        sim.gateway.log.open = open_  # type: ignore[method-assign]
        slow = asyncio.create_task(http.call("categories"))
        await asyncio.wait_for(arrived.wait(), 5)  # on the wire, waiting out its latency
        assert (await http.call("order_summary")).status == 429
        assert (await asyncio.wait_for(slow, 5)).status == 200  # was in flight: not banned
        assert (await http.call("categories")).status == 418  # sent after the 429: banned
        assert [r["status"] for r in sim.requests()] == [200, 429, 418]  # in arrival order


def test_a_second_429_does_not_spare_those_that_ignored_the_first() -> None:
    limiter = Limiter(LimitsSpec(ip_weight_per_minute=100))
    ticket = limiter.ticket("1.2.3.4", "/sapi/v1/c2c/x", "search", None)
    limiter.note_rate_limited("1.2.3.4", 1_000, 3_000)
    late = limiter.arrive(1_500)  # arrived after the first 429
    limiter.note_rate_limited("1.2.3.4", 1_600, 4_000)  # a second 429 while the first runs
    assert limiter.admit(ticket, 1_700, late).status == 418


async def test_a_request_crossing_the_429_on_another_connection_is_not_banned(
    http_session: aiohttp.ClientSession,
) -> None:
    """In flight together: another connection, the 429's very millisecond. A millisecond later
    it is judged; on the 429's own connection it is judged at once (test above)."""
    async with run_simulator(limited(ip_weight_per_minute=100), speed=0, start_ms=SIM_START_MS,
                             world_factory=FakeWorld) as sim, aiohttp.ClientSession() as other:
        one, two = SimHttp(http_session, sim), SimHttp(other, sim)
        assert (await one.call("categories")).status == (await two.call("categories")).status == 200
        sim.add_fault("http429", endpoint="order_summary", retry_after=5, count=1)
        assert (await one.call("order_summary")).status == 429
        assert (await two.call("categories")).status == 200  # crossed it on the way
        sim.advance(0.001)
        assert (await two.call("categories")).status == 418  # sent after it could be read
