"""The engine's per-ad work done once where it can be (issue 14 item 1): rival profiles built once
until their book is fed, equal filter tables shared, the derived median and the drop counts once
per filter result, the strategy's context built without re-conversion, the ad's moves rebuilt only
when its updates change, decimal strings of a search reply read once, one JSON encoder. Each gives
what the per-ad way gives."""

from __future__ import annotations

import json
import statistics
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from bot.binance import search
from bot.binance.search import parse_search
from bot.capabilities.registry import CapabilityRegistry
from bot.events import MarketSnapshot
from bot.pricing.engine import AdRuntime, PricingEngine, _moves
from bot.pricing.guards import Update
from bot.pricing.market_book import MarketBook
from bot.pricing.rivals import Profiles, RivalBook
from config.loader import load_config
from state.decisions import _encode, _json_default
from strategies.base import CompetitorAd, Hold, Move, OwnAd, PricingContext, Side
from strategies.filters import CompetitorFilters, FilterResult
from tests.support import FakeClock, search_item


def rival(n: int, price: str) -> CompetitorAd:
    return CompetitorAd(adv_no=f"a{n}", user_no=f"u{n}", nickname=f"peer{n}", price=Decimal(price),
                        min_amount=Decimal(500), max_amount=Decimal(20000), available=Decimal(100))


# --- rival profiles -------------------------------------------------------------------------------


def test_a_profile_is_built_once_until_the_book_is_fed_again() -> None:
    book = RivalBook(Side.SELL)
    book.observe(0.0, [rival(1, "92.00"), rival(2, "92.10")], Decimal("92.20"))
    first = book.profile("u1")
    assert first is book.profile("u1") and first is Profiles(book)["u1"]  # built once
    book.our_move(1.0, Decimal("91.90"))  # overtakes both: a chance each to answer it
    moved = book.profile("u1")
    assert moved is not None and first is not None
    assert (first.chances, moved.chances) == (0, 1)
    assert moved == book._profile(book.rivals["u1"])  # what building it afresh gives
    book.observe(10.0, [rival(1, "91.80"), rival(2, "92.10")], Decimal("91.90"))
    answered = book.profile("u1")
    assert answered is not None and answered.answers == 1 and answered.snapshots == 2
    assert answered == book._profile(book.rivals["u1"])


def test_a_move_that_gives_no_chance_keeps_the_profiles() -> None:
    book = RivalBook(Side.SELL)
    book.observe(0.0, [rival(1, "92.00")], Decimal("91.50"))  # we are past it already
    first = book.profile("u1")
    book.our_move(1.0, Decimal("91.40"))
    assert book.profile("u1") is first


def test_profiles_get_is_mapping_get() -> None:
    book = RivalBook(Side.BUY)
    book.observe(0.0, [rival(1, "92.00")], None)
    profiles = Profiles(book)
    assert profiles.get("u1") == book.profile("u1") and profiles.get("u1") is profiles["u1"]
    assert profiles.get("nobody") is None and profiles.get("nobody", "x") == "x"
    with pytest.raises(KeyError):
        profiles["nobody"]


# --- the market book: once per filter result ---------------------------------------------------


def own_ad(adv_no: str = "mine", methods: frozenset[str] = frozenset({"A"})) -> OwnAd:
    return OwnAd(adv_no=adv_no, side=Side.SELL, asset="USDT", fiat="RUB", price=Decimal("93.00"),
                 min_amount=Decimal(500), max_amount=Decimal(10000), available=Decimal(100),
                 pay_methods=methods)


def rows(prices: list[str]) -> list[Any]:
    """Search rows at these prices, as the lean parse reads them (no float in the reply)."""
    items = [search_item(advNo=f"{k:020d}", price=p) for k, p in enumerate(prices)]
    for k, item in enumerate(items):
        item["advertiser"].update(userNo=f"s{k:032x}", monthFinishRate="0.987")
    return parse_search(items)


def test_the_median_and_the_drop_counts_once_per_filter_result() -> None:
    book = MarketBook(rows(["92.10", "92.30", "92.20", "92.60", "92.40", "92.50"]),
                      frozenset({"mine"}))
    result = book.filtered(CompetitorFilters(pay_methods="any"), own_ad())
    top = [c.price for c in result.kept[:5]]
    assert book.median(result, 5) == Decimal(statistics.median(top)) == Decimal("92.30")
    assert book.median(result, 5) is book.median(result, 5)
    assert book.median(result, 2) == Decimal("92.15")  # each `top` its own
    assert book.median(FilterResult(()), 5) is None
    dropped = book.dropped(result)
    assert isinstance(dropped, MappingProxyType) and dropped == result.dropped
    assert dropped is book.dropped(result)
    with pytest.raises(TypeError):
        dropped["own"] = 1  # type: ignore[index]


@pytest.mark.parametrize("side", [Side.SELL, Side.BUY])
def test_best_first_keeps_the_exchanges_order_among_equal_prices(side: Side) -> None:
    book = MarketBook(rows(["92.20", "92.10", "92.20", "92.30", "92.10", "92.20"]), frozenset())
    expected = tuple(sorted(book.competitors, key=lambda c: side.sort_key(c.price)))
    assert book.best_first(side) == expected
    assert [c.adv_no[-1] for c in expected] == (
        ["1", "4", "0", "2", "5", "3"] if side is Side.SELL else ["3", "0", "2", "5", "1", "4"])


def test_our_rank_among_the_rivals_as_side_better_counts_it() -> None:
    for side, own_price, rank in ((Side.SELL, "92.05", 2), (Side.BUY, "92.05", 2)):
        book = RivalBook(side)
        book.observe(0.0, [rival(1, "92.00"), rival(2, "92.10"), rival(3, "92.05")],
                     Decimal(own_price))
        assert book.own_rank == rank == 1 + sum(
            1 for r in ("92.00", "92.10", "92.05") if side.better(Decimal(r), Decimal(own_price)))


def test_equal_filter_tables_of_two_ads_share_one_result(tmp_path: Path) -> None:
    engine = PricingEngine([], api=None, registry=None, clock=FakeClock())  # type: ignore[arg-type]
    one, two = CompetitorFilters(min_month_orders=5), CompetitorFilters(min_month_orders=5)
    assert one is not two and engine._table(one) is engine._table(two) is one
    other = CompetitorFilters(min_month_orders=6)
    assert engine._table(other) is other
    book = MarketBook(rows(["92.10", "92.30"]), frozenset({"mine", "yours"}))
    first = book.filtered(engine._table(one), own_ad("mine"))
    assert book.filtered(engine._table(two), own_ad("yours")) is first
    assert book.filtered(two, own_ad("yours")) == first  # by value too, as before


# --- the context and the moves --------------------------------------------------------------------


class Capture:
    """A strategy that keeps the context it was given and holds."""

    name: ClassVar[str] = "capture"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = BaseModel
    seen: ClassVar[list[PricingContext]] = []

    def decide(self, ctx: PricingContext, params: Any) -> Hold:
        self.seen.append(ctx)
        return Hold("looked")


class _Client:
    """No request is sent: the strategy holds."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.used_weight: dict[str, int] = {}
        self.banned_until = self.paused_until = 0.0


AD = """
[[ads]]
name = "a"
adv_no = "11"
strategy = "undercut"
[ads.filters]
pay_methods = "any"
[ads.guards]
floor = "85.00"
ceiling = "99.00"
"""


async def captured(tmp_path: Path, enabled: Any = None) -> tuple[PricingContext, AdRuntime]:
    """The context a strategy gets on one snapshot of three competitors (the registry's
    `enabled` replaced when given)."""
    (tmp_path / "c.toml").write_text(AD, encoding="utf-8")
    loaded = load_config(tmp_path / "c.toml").ads[0]
    loaded = type(loaded)(loaded.index, loaded.config, Capture(), loaded.params)
    clock = FakeClock()
    ad = AdRuntime(loaded, own=own_ad("11"))
    ad.updates = [Update(clock.time() - 100 + n, Decimal("93.50"), Decimal("93.00")) for n in range(3)]
    registry = CapabilityRegistry(_Client(clock))  # type: ignore[arg-type]
    if enabled is not None:
        registry.enabled = enabled  # type: ignore[method-assign]
    engine = PricingEngine([ad], api=None, registry=registry, clock=clock)  # type: ignore[arg-type]
    items = tuple(rows(["92.10", "92.30", "92.20"]))
    Capture.seen.clear()
    await engine.on_market(MarketSnapshot("USDT", "RUB", "BUY", items, 3, clock.time()))
    (ctx,) = Capture.seen
    return ctx, ad


async def test_the_context_the_strategy_gets_equals_the_checked_one(tmp_path: Path) -> None:
    ctx, ad = await captured(tmp_path)
    checked = PricingContext(**{f.name: getattr(ctx, f.name) for f in fields(ctx)})
    assert ctx == checked and vars(ctx).keys() == vars(checked).keys()
    assert [type(getattr(ctx, f.name)) for f in fields(ctx)] == \
        [type(getattr(checked, f.name)) for f in fields(ctx)]
    assert [c.price for c in ctx.competitors] == [Decimal("92.10"), Decimal("92.20"), Decimal("92.30")]
    assert ctx.moves == tuple(Move(u.at, u.before, u.after) for u in ad.updates)
    assert isinstance(ctx.filtered_out, MappingProxyType)


async def test_capabilities_given_as_a_set_are_converted_as_before(tmp_path: Path) -> None:
    ctx, _ = await captured(tmp_path, enabled=lambda: {"market", "repricing"})
    assert type(ctx.capabilities) is frozenset and ctx.capabilities == {"market", "repricing"}


def test_a_bound_that_is_not_a_decimal_is_refused_as_before() -> None:
    with pytest.raises(TypeError, match="floor must be a Decimal"):
        PricingContext(ad=own_ad(), competitors=(), now=0.0, floor=92.5)  # type: ignore[arg-type]


def test_the_moves_are_rebuilt_only_when_the_updates_change() -> None:
    ad = AdRuntime(loaded=None, own=own_ad())  # type: ignore[arg-type]
    assert _moves(ad) == ()
    ad.updates.append(Update(1.0, Decimal("93"), Decimal("92")))
    first = _moves(ad)
    assert first == (Move(1.0, Decimal("93"), Decimal("92")),) and _moves(ad) is first
    ad.updates.append(Update(2.0, Decimal("92"), Decimal("91")))
    assert _moves(ad) == first + (Move(2.0, Decimal("92"), Decimal("91")),)
    ad.updates = [Update(float(n), Decimal(n), Decimal(n + 1)) for n in range(150)]
    assert _moves(ad) == tuple(Move(float(n), Decimal(n), Decimal(n + 1)) for n in range(50, 150))
    ad.updates = ad.updates[1:]  # the window's trim: a new list, the same last update
    assert len(_moves(ad)) == 100 and _moves(ad)[0].at == 50.0


# --- the search parse and the store ---------------------------------------------------------------


def test_decimal_strings_are_read_once_and_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "_READ", {})
    monkeypatch.setattr(search, "_READ_MAX", 8)
    first = rows(["92.10", "92.30"])
    again = rows(["92.10", "92.30"])
    assert [r.adv.price for r in again] == [r.adv.price for r in first] == \
        [Decimal("92.10"), Decimal("92.30")]
    assert again[0].adv.price is first[0].adv.price  # read once
    assert 0 < len(search._READ) <= 8
    rows([f"9{n}.00" for n in range(20)])
    assert len(search._READ) <= 8
    assert search._dec(" ") is None and " " not in search._READ
    with pytest.raises(search._Odd):
        search._dec("NaN")
    assert "NaN" not in search._READ


def test_the_one_encoder_writes_what_json_dumps_writes() -> None:
    trace = {"best": [{"price": "92.10", "nickname": "é"}], "d": Decimal("1.50"),
             "s": frozenset({"x"}), "t": (1, 2), "n": None, "f": 0.5}
    assert _encode(trace) == json.dumps(trace, default=_json_default)
