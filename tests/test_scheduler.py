"""The request scheduler: priorities, the limit, deadlines, shedding (issue 14, item 2); and the
engine's ad updates going out side by side, one refused ad holding none of the others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from aioresponses import CallbackResult

from bot.binance.client import SignedClient
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import NotSent
from bot.binance.models import SearchItem, parse
from bot.binance.p2p import P2PApi
from bot.binance.scheduler import RequestScheduler, within
from bot.capabilities.registry import CapabilityRegistry
from bot.events import MarketSnapshot
from bot.pricing.engine import AdRuntime, PricingEngine
from config.loader import load_config
from strategies.base import OwnAd, Side
from tests.support import NOW_MS, FakeClock, envelope, make_client, mocked, path_re, search_item

SEARCH, UPDATE = ENDPOINTS["search"], ENDPOINTS["update_ad"]
ORDERS, CHAT = ENDPOINTS["list_orders"], ENDPOINTS["chat_messages"]


async def spin(until: Any) -> None:
    """Let the loop run (no time passes) until `until()` holds."""
    for _ in range(2000):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def busy(limit: int = 1, **kw: Any) -> tuple[RequestScheduler, FakeClock]:
    clock = FakeClock(NOW_MS / 1000)
    return RequestScheduler(clock, limit=limit, **kw), clock


async def take(s: RequestScheduler, ep: Any, done: list[str], name: str) -> None:
    trial = await s.enter(ep)
    done.append(name)
    s.leave(trial, 200)


async def test_a_full_queue_sheds_the_lowest_priority_first_and_counts_it() -> None:
    s, _ = busy(limit=1, max_queued=3)
    await s.enter(SEARCH)  # holds the only slot
    done: list[str] = []
    tasks = [asyncio.create_task(take(s, ep, done, name)) for ep, name in
             ((SEARCH, "read1"), (ORDERS, "orders"), (CHAT, "chat"))]
    await spin(lambda: s.waiting == 3)
    write = asyncio.create_task(take(s, UPDATE, done, "write"))  # the queue is full: read1 goes
    await spin(lambda: tasks[0].done())
    with pytest.raises(NotSent) as shed:
        await tasks[0]
    assert shed.value.reason == "shed" and shed.value.status is None
    late = asyncio.create_task(take(s, SEARCH, done, "read2"))  # lowest of all: shed itself
    await spin(late.done)
    with pytest.raises(NotSent):
        await late
    assert s.counts.shed == {"write": 0, "chat": 0, "orders": 0, "read": 2}
    assert s.queued() == {"write": 1, "chat": 1, "orders": 1, "read": 0}
    s.leave(False, 200)
    await asyncio.gather(write, *tasks[1:])
    assert done == ["write", "chat", "orders"]  # by priority


async def test_writes_are_never_shed_even_over_the_limit_of_the_queue() -> None:
    s, _ = busy(limit=1, max_queued=2)
    await s.enter(UPDATE)
    done: list[str] = []
    writes = [asyncio.create_task(take(s, UPDATE, done, f"w{i}")) for i in range(5)]
    await spin(lambda: s.waiting == 5)
    assert s.counts.shed["write"] == 0
    s.leave(False, 200)
    await asyncio.gather(*writes)
    assert done == ["w0", "w1", "w2", "w3", "w4"]  # in the order asked


async def test_a_stale_read_is_dropped_not_sent_late_and_a_write_waits_its_turn() -> None:
    s, clock = busy(limit=1)
    await s.enter(UPDATE)
    done: list[str] = []
    with within(1.0):
        read = asyncio.create_task(take(s, SEARCH, done, "read"))
        write = asyncio.create_task(take(s, UPDATE, done, "write"))  # a deadline never drops it
    await spin(lambda: s.waiting == 2)
    clock.advance(1.5)  # the slot is held past the read's deadline
    s.leave(False, 200)
    with pytest.raises(NotSent) as expired:
        await read
    await write
    assert expired.value.reason == "expired" and done == ["write"]
    assert s.counts.expired["read"] == 1 and s.counts.expired["write"] == 0


async def test_a_read_in_time_is_sent() -> None:
    s, clock = busy(limit=1)
    await s.enter(SEARCH)
    done: list[str] = []
    with within(5.0):
        read = asyncio.create_task(take(s, SEARCH, done, "read"))
    await spin(lambda: s.waiting == 1)
    clock.advance(4.0)
    s.leave(False, 200)
    await read
    assert done == ["read"] and s.counts.expired["read"] == 0


async def test_a_read_that_waits_out_a_pause_past_its_deadline_is_dropped() -> None:
    """The end of a 429 pause is not a burst of reads that were asked before it."""
    async with make_client() as client:
        client.paused_until = client.clock.time() + 5
        with mocked() as m, within(2.0):
            m.post(path_re("/sapi/v1/c2c/ads/search"), payload=envelope([]), repeat=True)
            with pytest.raises(NotSent):
                await client.call("search", {})
        assert client.requests_sent == 0 and client.scheduler.counts.expired["read"] == 1


async def test_a_dropped_read_moves_no_endpoint_state() -> None:
    async with make_client() as client:
        registry = CapabilityRegistry(client)
        client.paused_until = client.clock.time() + 5
        with mocked(), within(1.0), pytest.raises(NotSent):
            await registry.call("search", {})
        assert str(registry.state("search")) == "unknown"


# --- the engine: ad updates side by side ---------------------------------------------------

THREE_ADS = "".join(f"""
[[ads]]
name = "{name}"
adv_no = "{adv}"
strategy = "fixed"
[ads.params]
price = "92.00"
[ads.guards]
floor = "80"
ceiling = "99"
""" for name, adv in (("one", "1" * 20), ("two", "2" * 20), ("three", "3" * 20)))


@pytest.fixture
async def client() -> AsyncIterator[SignedClient]:
    async with make_client() as c:
        yield c


def engine_of(client: SignedClient, tmp_path: Path) -> tuple[PricingEngine, list[AdRuntime]]:
    path = tmp_path / "bot.toml"
    path.write_text(THREE_ADS, encoding="utf-8")
    registry = CapabilityRegistry(client)
    ads = [AdRuntime(ad, own=OwnAd(
        adv_no=ad.config.adv_no or "", side=Side.SELL, asset="USDT", fiat="RUB", price=D("92.50"),
        min_amount=D(500), max_amount=D(10000), available=D(100))) for ad in load_config(path).ads]
    return PricingEngine(ads, api=P2PApi(registry), registry=registry, clock=client.clock), ads


def snapshot(client: SignedClient) -> MarketSnapshot:
    items = tuple(parse(list[SearchItem], [search_item(advNo="9" * 20)], "search"))
    return MarketSnapshot("USDT", "RUB", "BUY", items, 1, client.clock.time())


async def test_a_refused_update_holds_none_of_the_other_ads(client: SignedClient,
                                                              tmp_path: Path) -> None:
    """The first ad's update hangs on the wire and is then refused: the other two are applied
    meanwhile (before the fix they waited behind it, one update at a time)."""
    engine, ads = engine_of(client, tmp_path)
    held = asyncio.Event()
    on_wire: list[str] = []

    async def answer(url: Any, **kw: Any) -> CallbackResult:
        adv = json.loads(kw["data"])["advNo"]
        on_wire.append(adv)
        if adv == "1" * 20:
            await held.wait()
            return CallbackResult(payload={"code": "187999", "message": "ad refused",
                                           "data": None, "success": False})
        return CallbackResult(payload=envelope(True))

    with mocked() as m:
        m.post(path_re("/sapi/v1/c2c/ads/update"), callback=answer, repeat=True)
        decided = asyncio.create_task(engine.on_market(snapshot(client)))
        await spin(lambda: all(a.own is not None and a.own.price == D("92.00") for a in ads[1:]))
        assert ads[0].own is not None and ads[0].own.price == D("92.50")  # still on the wire
        held.set()
        await decided
    assert [a.last.result for a in ads if a.last] == ["failed", "applied", "applied"]
    assert sorted(on_wire) == ["1" * 20, "2" * 20, "3" * 20]


async def test_updates_of_different_ads_overlap_within_the_limit(client: SignedClient,
                                                                 tmp_path: Path) -> None:
    client.max_in_flight = 2
    engine, ads = engine_of(client, tmp_path)
    gate = asyncio.Event()
    active = peak = 0

    async def answer(url: Any, **kw: Any) -> CallbackResult:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await gate.wait()
        active -= 1
        return CallbackResult(payload=envelope(True))

    with mocked() as m:
        m.post(path_re("/sapi/v1/c2c/ads/update"), callback=answer, repeat=True)
        decided = asyncio.create_task(engine.on_market(snapshot(client)))
        await spin(lambda: active == 2 and client.scheduler.waiting == 1)
        gate.set()
        await decided
    assert peak == 2 and [a.last.result for a in ads if a.last] == ["applied"] * 3
