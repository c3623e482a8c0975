"""The third pass on the engine at 1,000 ads (issue 14 item 1): what a decision reads that is
the same for many decisions is kept until it changes. Each shortcut gives what the way it
replaces gives, and follows a change at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from bot.binance import search
from bot.binance.errors import EndpointUnregistered
from bot.binance.search import SearchAd, SearchAdvertiser, SearchRow
from bot.capabilities.registry import CapabilityRegistry
from bot.capabilities.table import ProbeConfig
from bot.health import WORKING, EndpointState
from bot.pricing.engine import _eager
from bot.pricing.market_book import MarketBook
from strategies.base import CompetitorAd, OwnAd, Reference, Side
from strategies.filters import FilterResult
from tests.support import FakeClient, FakeClock, search_item


def _working(reg: CapabilityRegistry) -> frozenset[str]:
    """`enabled()` as it was computed for every call before it was kept."""
    return frozenset(n for n, s in reg.capabilities().items() if s.state in WORKING)


async def test_the_capabilities_seen_working_follow_every_change() -> None:
    client = FakeClient(FakeClock())
    reg = CapabilityRegistry(client, rng=random.Random(1),  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0))
    assert reg.enabled() == _working(reg) == frozenset()
    client.ok("search", [])
    await reg.call("search", {})  # a capability changes with a call
    assert reg.enabled() == _working(reg) == {"market"}
    client.fail("search", EndpointUnregistered("Invalid Api-Key ID.", endpoint="search",
                                               status=400, code=-2008))
    try:
        await reg.call("search", {})
    except EndpointUnregistered:
        pass
    assert "market" not in reg.enabled()
    assert reg.enabled() == _working(reg)
    reg.assume("update_ad", EndpointState.AVAILABLE, None, "")  # learned from the store
    assert reg.enabled() == _working(reg) and "repricing" in reg.enabled()
    reg.assume("update_ad", EndpointState.UNREGISTERED, -2008, "Invalid Api-Key ID.")
    assert reg.enabled() == _working(reg) and "repricing" not in reg.enabled()


def test_the_tick_is_the_price_scales_whatever_the_scale() -> None:
    for scale in (0, 1, 2, 3, 8, 2):
        own = OwnAd(adv_no="1", side=Side.SELL, asset="USDT", fiat="RUB", price=Decimal("93"),
                    min_amount=Decimal(1), max_amount=Decimal(2), available=Decimal(3),
                    price_scale=scale)
        assert own.tick == Decimal(1).scaleb(-scale)
        assert str(own.tick) == str(Decimal(1).scaleb(-scale))


# --- ranks counted by bisection ---------------------------------------------------------------


def _row(adv_no: str, price: Decimal) -> SearchRow:
    ad = SearchAd(adv_no, price, None, Decimal(100), Decimal(20000), Decimal(500), frozenset({"SBP"}))
    return SearchRow(ad, SearchAdvertiser(f"u{adv_no}", f"peer{adv_no}", True, 100, Decimal("0.99")))


def test_the_rank_an_ad_takes_is_the_row_by_row_count() -> None:
    rng = random.Random(5)
    for _ in range(300):
        prices = [Decimal(rng.choice(("91.98", "91.99", "92.00", "92.01", "92.02")))
                  for _ in range(rng.randint(0, 12))]
        rows = [_row(rng.choice(("mine", "a", "b", "c", "d")), p) for p in prices]
        book = MarketBook(rows, frozenset({"mine"}))
        for side in Side:
            for price in (Decimal("91.97"), Decimal("92.00"), Decimal("92.015"), Decimal("92.03")):
                counted = 1 + sum(1 for r in rows if r.adv.adv_no != "mine"
                                  and not side.better(price, r.adv.price))
                assert book.rank_at(side, price, "mine") == counted


def test_the_standing_is_the_count_of_kept_competitors_ahead() -> None:
    rng = random.Random(6)
    book = MarketBook([], frozenset())
    for _ in range(300):
        kept = tuple(CompetitorAd(adv_no=str(n), user_no=f"u{n}", nickname="", min_amount=Decimal(1),
                                  max_amount=Decimal(2), available=Decimal(3),
                                  price=Decimal(rng.choice(("91.99", "92.00", "92.01"))))
                     for n in range(rng.randint(0, 8)))
        result = FilterResult(kept, {})
        for side in Side:
            for price in (Decimal("91.98"), Decimal("92.00"), Decimal("92.02")):
                counted = 1 + sum(1 for c in kept if side.better(c.price, price))
                assert book.standing(result, side, price) == counted


# --- no task for an ad that never waits -------------------------------------------------------


def _steps(log: list[str], gates: dict[str, asyncio.Event]) -> list[Any]:
    """Five coroutines: some finish at once, some wait (once or twice), one fails after a wait."""

    async def one(name: str, waits: int, fails: bool = False) -> None:
        log.append(f"{name} starts")
        for n in range(waits):
            await gates[name].wait()
            log.append(f"{name} woke {n}")
            await asyncio.sleep(0)
        if fails:
            raise ValueError(name)
        log.append(f"{name} done")

    return [one("a", 0), one("b", 1), one("c", 0), one("d", 2), one("e", 1, fails=True)]


async def _drive(run: Callable[[list[Any]], Awaitable[Any]]) -> list[str]:
    log: list[str] = []
    gates = {n: asyncio.Event() for n in "abcde"}
    task = asyncio.ensure_future(run(_steps(log, gates)))
    for name in "edb":
        await asyncio.sleep(0)
        gates[name].set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert task.done()
    log.append(f"outcome {task.exception()!r}")
    return log


async def test_eager_runs_what_gather_runs_in_the_same_order() -> None:
    async def with_tasks(coros: list[Any]) -> None:
        await asyncio.gather(*coros)

    async def eager(coros: list[Any]) -> None:
        waiting = [t for t in (_eager(c) for c in coros) if t is not None]
        await asyncio.gather(*waiting)

    assert await _drive(eager) == await _drive(with_tasks)
    log = await _drive(eager)
    assert log[:5] == ["a starts", "a done", "b starts", "c starts", "c done"]
    assert log[-1] == "outcome ValueError('e')"


async def test_a_cancelled_market_cancels_the_ads_still_waiting() -> None:
    reached: list[str] = []
    gate = asyncio.Event()

    async def waits() -> None:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            reached.append("cancelled where it waits")
            raise

    task = _eager(waits())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == ["cancelled where it waits"]
    bare = _eager(asyncio.sleep(0))  # a bare yield is a wait too
    assert bare is not None
    await bare


# --- the lean parse, decimals read before taken without a call --------------------------------


def _row_field_by_field(item: dict[str, Any]) -> tuple[Any, ...]:
    """A row as the lean parse read it before (each decimal through `_dec`), as exact text."""
    adv, who = item["adv"], item["advertiser"]
    g, dec = adv.get, search._dec
    values = (search._id(adv["advNo"]), dec(adv["price"]), dec(g("priceFloatingRatio")),
              dec(g("minSingleTransAmount")) or search.ZERO,
              dec(g("dynamicMaxSingleTransAmount")) or dec(g("maxSingleTransAmount")) or search.ZERO,
              dec(g("tradableQuantity")) or dec(g("surplusAmount")) or search.ZERO,
              search._methods(g("tradeMethods", ())), who["nickName"],
              None if who.get("userNo") is None else search._id(who["userNo"]),
              (who.get("userType") or "").lower() == "merchant", who.get("monthOrderCount") or 0,
              dec(who.get("monthFinishRate")) or search.ZERO)
    return tuple(repr(v) for v in values)


def _as_read(row: SearchRow) -> tuple[Any, ...]:
    a, w = row.adv, row.advertiser
    return tuple(repr(v) for v in (a.adv_no, a.price, a.price_floating_ratio, a.min_amount,
                                   a.max_amount, a.available, a.pay_methods, w.nick_name,
                                   w.user_no, w.is_merchant, w.month_orders, w.completion_rate))


def test_the_lean_parse_reads_every_field_as_it_did_field_by_field() -> None:
    rng = random.Random(8)
    amounts = ("0", "0.00", "", "  ", None, "1000.00000000", "20000", "12.5", 7, Decimal("3.10"))
    for round_ in range(400):
        item = search_item(advNo=f"{round_:020d}", price=rng.choice(("92.10", "92.1", Decimal("92.10"), 93)),
                           priceFloatingRatio=rng.choice((None, "101.50", "0")),
                           minSingleTransAmount=rng.choice(amounts),
                           maxSingleTransAmount=rng.choice(amounts),
                           dynamicMaxSingleTransAmount=rng.choice(amounts),
                           tradableQuantity=rng.choice(amounts), surplusAmount=rng.choice(amounts),
                           tradeMethods=[{"identifier": rng.choice(("A", "B", "", None))}])
        item["advertiser"].update(monthFinishRate=rng.choice(("0.99", "0", None, "", Decimal("0.9"))),
                                  userNo=rng.choice((None, "s1", 42)),
                                  monthOrderCount=rng.choice((None, 0, 12)))
        if round_ % 2:
            search._READ.clear()  # read afresh, or from the memory of the last reply
        assert _as_read(search._row(item)) == _row_field_by_field(item)


def test_the_derived_reference_is_the_median_at_each_ads_tick_made_once() -> None:
    book = MarketBook([], frozenset())
    kept = tuple(CompetitorAd(adv_no=str(n), user_no=f"u{n}", nickname="", min_amount=Decimal(1),
                              max_amount=Decimal(2), available=Decimal(3), price=Decimal(p))
                 for n, p in enumerate(("92.013", "92.027", "92.101", "92.2", "93")))
    result = FilterResult(kept, {})
    median = book.median(result, 5)
    assert median is not None
    for tick in (Decimal("0.01"), Decimal("0.1"), Decimal("0.001"), Decimal("1")):
        made = book.derived(result, 5)(tick)
        assert made == Reference(median.quantize(tick), "derived")
        assert str(made.price) == str(median.quantize(tick))
        assert book.derived(result, 5)(tick) is made  # one for every ad sharing it


def test_the_best_three_of_a_trace_are_built_once_per_filter_result() -> None:
    book = MarketBook([], frozenset())
    kept = tuple(CompetitorAd(adv_no=str(n), user_no=f"u{n}", nickname=f"p{n}", min_amount=Decimal(1),
                              max_amount=Decimal(2), available=Decimal(3), price=Decimal(f"92.{n}0"))
                 for n in range(5))
    result = FilterResult(kept, {})
    shown = book.best_trace(result)
    assert shown == [{"adv_no": c.adv_no, "user_no": c.user_no, "nickname": c.nickname,
                      "price": str(c.price)} for c in kept[:3]]
    assert book.best_trace(result) is shown and book.best_trace(FilterResult((), {})) == []
