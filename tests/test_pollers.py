"""Pollers: intervals stretch to the weight budget; a disabled capability parks its poller."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

from bot.binance.client import Response
from bot.binance.endpoints import ENDPOINTS
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry
from bot.capabilities.table import ProbeConfig
from bot.events import EventBus
from bot.polling import Poller, plan_intervals
from bot.pricing.pollers import MarketPoller, OwnAdsPoller
from bot.ratelimit import RateGovernor
from tests.support import FakeClient, FakeClock, ad_json, envelope


class Search(Poller):
    capability = "market"
    endpoints = ("search",)

    async def fetch(self, source: str) -> Any:
        await self.registry.call("search", {})
        return None


def make(interval: float, governor: RateGovernor | None = None) -> tuple[Search, FakeClient]:
    client = FakeClient(FakeClock())
    reg = CapabilityRegistry(client, rng=random.Random(0),  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0))
    return Search(registry=reg, bus=EventBus(), clock=client.clock, interval=interval,
                  governor=governor), client


def test_intervals_stretch_to_stay_under_the_budget() -> None:
    pollers = [make(1.0)[0] for _ in range(10)]  # 10 pollers x 60 weight a minute = 600
    assert plan_intervals(pollers, budget=1000) == 1.0  # 600 < 80% of 1000
    stretch = plan_intervals(pollers, budget=300)  # needs 600, may use 240
    assert stretch == 2.5 and all(p.next_delay() == 2.5 for p in pollers)


def test_a_hot_budget_stretches_the_next_delay() -> None:
    clock = FakeClock()
    governor = RateGovernor(100, clock=clock)
    poller, _ = make(10.0, governor)
    assert poller.next_delay() == 10.0
    governor.report(160)  # the exchange says 160 of 100 used: twice the 80% mark
    assert poller.next_delay() == 20.0


async def test_a_disabled_capability_parks_the_poller_until_it_changes() -> None:
    from bot.binance.errors import EndpointUnregistered

    poller, client = make(10.0)
    client.fail("search", EndpointUnregistered("Invalid Api-Key ID.", endpoint="search",
                                               status=400, code=-2008))
    task = asyncio.create_task(poller.run())
    for _ in range(50):
        await asyncio.sleep(0)
        if poller.parked:
            break
    assert poller.parked and client.sent("search") == 1  # one call, then parked: no traffic
    client.ok("search", [])
    await poller.registry.probe("search")  # Binance enables it: the probe wakes the poller
    for _ in range(50):
        await asyncio.sleep(0)
        if not poller.parked:
            break
    assert not poller.parked and client.sent("search") >= 3
    task.cancel()


def own_ads_poller(pages: Any) -> tuple[OwnAdsPoller, FakeClient]:
    """An OwnAdsPoller whose my_ads answers `pages(page_no)` -> (adv_nos, total)."""
    client = FakeClient(FakeClock())

    def answer(params: Any) -> Response:
        numbers, total = pages(params["page"])
        return Response(ENDPOINTS["my_ads"], 200, envelope([ad_json(advNo=n) for n in numbers], total))

    client.answers["my_ads"] = answer
    reg = CapabilityRegistry(client)  # type: ignore[arg-type]
    return OwnAdsPoller(P2PApi(reg), registry=reg, bus=EventBus(), clock=client.clock,
                        interval=60), client


def numbers(start: int, count: int) -> list[str]:
    return [str(10**19 + i) for i in range(start, min(start + count, 250))]


async def test_own_ads_are_read_past_ten_pages() -> None:
    poller, client = own_ads_poller(lambda page: (numbers((page - 1) * 20, 20), 250))
    got = await poller.fetch("my_ads")
    assert len(got.ads) == 250 and got.ads[-1].adv_no == str(10**19 + 249)
    assert client.sent("my_ads") == 13


async def test_a_page_with_nothing_new_ends_the_read() -> None:
    # an exchange that ignores `page` and gives no total: the second page repeats the first
    poller, client = own_ads_poller(lambda page: (numbers(0, 20), None))
    got = await poller.fetch("my_ads")
    assert len(got.ads) == 20 and client.sent("my_ads") == 2


def test_a_market_poller_is_named_by_the_side_of_the_ads_it_reads() -> None:
    client = FakeClient(FakeClock())
    reg = CapabilityRegistry(client)  # type: ignore[arg-type]
    kw: dict[str, Any] = {"registry": reg, "bus": EventBus(), "clock": client.clock, "interval": 10}
    sell_ads = MarketPoller(P2PApi(reg), "USDT", "USD", "BUY", 20, **kw)  # a SELL ad's rivals
    buy_ads = MarketPoller(P2PApi(reg), "USDT", "USD", "SELL", 20, **kw)
    assert (sell_ads.name, buy_ads.name) == ("market USDT/USD SELL ads", "market USDT/USD BUY ads")


REF = {"asset": "USDT", "currency": "RUB", "currencyScale": 2, "currencySymbol": "₽",
       "assetScale": 2, "priceScale": 2, "referencePrice": "92.50"}


def reference_poller(answer: Any) -> tuple[Any, FakeClient, list[Any]]:
    from bot.pricing.pollers import ReferencePoller

    client = FakeClient(FakeClock())
    reg = CapabilityRegistry(client, rng=random.Random(0),  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0))
    bus, seen = EventBus(), []
    bus.publish = seen.append  # type: ignore[method-assign]
    client.answers["reference_price"] = answer
    poller = ReferencePoller(P2PApi(reg), ["USDT"], "RUB", "SELL", pay_type="Tinkoff",
                             registry=reg, bus=bus, clock=client.clock, interval=30.0)
    return poller, client, seen


async def test_a_failing_pay_type_filter_is_retried_without_it() -> None:
    from bot.binance.errors import BusinessError

    def answer(params: Any) -> Response:
        if "payType" in params:
            raise BusinessError("No reference price for payType Tinkoff", endpoint="reference_price",
                                code=20001)
        return Response(ENDPOINTS["reference_price"], 200, envelope([REF]))

    poller, client, seen = reference_poller(answer)
    await poller.tick("exchange")
    assert [("payType" in p) for _, p in client.calls] == [True, False]
    assert [(e.price, e.stale) for e in seen] == [(Decimal("92.50"), False)]
    await poller.tick("exchange")  # the filter rests for a while: one call
    assert [("payType" in p) for _, p in client.calls] == [True, False, False]
    poller.ticks = poller.unfiltered_until
    await poller.tick("exchange")  # then it is tried again
    assert [("payType" in p) for _, p in client.calls][-2:] == [True, False]


async def test_an_unreadable_reference_keeps_the_last_value_marked_stale() -> None:
    from bot.binance.errors import ExchangeUnavailable

    state = {"up": True}

    def answer(params: Any) -> Response:
        if not state["up"]:
            raise ExchangeUnavailable("Internal error", endpoint="reference_price", status=500,
                                      code=-1001)
        return Response(ENDPOINTS["reference_price"], 200, envelope([REF]))

    poller, client, seen = reference_poller(answer)
    poller.pay_type = None
    await poller.tick("exchange")
    read_at = client.clock.time()
    client.clock.advance(90)
    state["up"] = False
    await poller.tick("exchange")
    assert [(e.price, e.at, e.stale) for e in seen] == [
        (Decimal("92.50"), read_at, False), (Decimal("92.50"), read_at, True)]


def test_each_reference_poller_names_what_it_reads() -> None:
    """Its log lines ("... parked: capability reference_price is disabled") said
    "ReferencePoller" for both sides, twice the same line."""
    from bot.pricing.pollers import ReferencePoller

    kw = {"registry": None, "bus": None, "clock": None, "interval": 10.0}
    buy = ReferencePoller(None, ["USDT", "BTC"], "RUB", "BUY", **kw)  # type: ignore[arg-type]
    sell = ReferencePoller(None, ["USDT"], "RUB", "SELL", **kw)  # type: ignore[arg-type]
    assert (buy.name, sell.name) == ("reference price USDT,BTC/RUB BUY",
                                     "reference price USDT/RUB SELL")
