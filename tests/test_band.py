"""Issue 13 item 3: the exchange's price band learned from refusals (bot.pricing.band), and the guard
that clamps into it; item 5: why the exchange hides an ad (bot.pricing.visibility)."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pytest

from bot.pricing.band import BandBook, bounds_in
from bot.pricing.guards import check
from bot.pricing.visibility import hidden_reason, unsafe_reason
from strategies.base import OwnAd, PriceBand, PricingContext, Reprice, Side
from tests.test_guards import NOW, G, ad

KEY = ("USDT", "RUB", "SELL")
TICK = D("0.01")


@pytest.mark.parametrize(("message", "refused", "bounds"), [
    ("The price is out of the allowed range: minimum 74.00, maximum 111.00.", "70", ("74.00", "111.00")),
    ("-9000: 187055 limited range, max 111.00 min 74.00", "120", ("74.00", "111.00")),
    ("price 120.00 out of range [74.00, 111.00]", "120.00", ("74.00", "111.00")),
    ("The price is out of the allowed range (80% to 120% of the reference price).", "70", None),
    ("The price is out of the allowed range.", "70", None),
    ("maximum 111.00", "120", None),  # one bound is not a band
])
def test_bounds_are_the_two_prices_in_the_message(message: str, refused: str,
                                                   bounds: tuple[str, str] | None) -> None:
    got = bounds_in(message, D(refused))
    assert got == (None if bounds is None else (D(bounds[0]), D(bounds[1])))


def test_named_bounds_are_the_band_until_they_expire() -> None:
    book = BandBook(ttl=300)
    said = book.refused(KEY, D("70"), D("93.40"), "minimum 74.00, maximum 111.00", NOW)
    assert said == "the exchange allows 74.00 to 111.00"
    assert book.band(KEY, TICK, NOW + 299) == PriceBand(low=D("74.00"), high=D("111.00"))
    assert book.band(("USDT", "RUB", "BUY"), TICK, NOW) is None  # per (asset, fiat, side)
    assert book.band(KEY, TICK, NOW + 301) is None


@pytest.mark.parametrize(("start", "edge", "want"), [
    ("93.40", "74.00", "70.00"),  # the low edge, a SELL ad undercutting
    ("93.40", "111.00", "130.00"),  # the high edge
    ("74.05", "74.00", "60.00"),  # a gap of a few ticks
])
def test_bisection_finds_the_edge_in_log2_updates_never_resending_a_refused_price(
        start: str, edge: str, want: str) -> None:
    book, accepted, edge_, target = BandBook(), D(start), D(edge), D(want)
    up = target > accepted
    sent: list[D] = []
    for _ in range(40):
        band = book.band(KEY, TICK, NOW)
        price = target
        if band is not None and band.low is not None:
            price = max(price, band.low)
        if band is not None and band.high is not None:
            price = min(price, band.high)
        if price == accepted:
            break
        assert price not in sent  # never the same price twice
        sent.append(price)
        if (price > edge_) if up else (price < edge_):
            book.refused(KEY, price, accepted, "The price is out of the allowed range.", NOW)
        else:
            book.accepted(KEY, price, NOW)
            accepted = price
    assert accepted == edge_
    assert len(sent) <= math.ceil(math.log2(abs(D(start) - target) / TICK)) + 1
    band = book.band(KEY, TICK, NOW)
    assert band is not None and band.source == "bisect"


def test_an_accepted_price_past_a_known_edge_forgets_it() -> None:
    book = BandBook()
    book.refused(KEY, D("70"), D("93.40"), "minimum 74.00, maximum 111.00", NOW)
    book.accepted(KEY, D("73.00"), NOW)  # the band moved down
    band = book.band(KEY, TICK, NOW)
    assert band is not None and band.low is None and band.high == D("111.00")


def test_the_guard_clamps_into_the_band_and_names_it() -> None:
    band = PriceBand(low=D("74.00"), high=D("111.00"))
    v = check(Reprice(D("70.00"), "t"), ad=ad("93.40"), limits=G(floor=D("60")), reference=None,
              now=NOW, updates=[], band=band)
    assert v.price == D("74.00") and "band" in v.hits


def test_a_band_outside_the_guards_holds() -> None:
    band = PriceBand(low=D("74.00"), high=D("80.00"))
    v = check(Reprice(D("90.00"), "t"), ad=ad("93.40"), limits=G(floor=D("85")), reference=None,
              now=NOW, updates=[], band=band)
    assert v.price is None and v.hits == ("band",)
    assert "leaves no price within the floor 85" in v.reason


def test_a_strategy_sees_the_band() -> None:
    band = PriceBand(low=D("74.00"), high=None, source="bisect")
    ctx = PricingContext(ad=ad(), competitors=(), now=NOW, band=band)
    assert ctx.band is band
    with pytest.raises(TypeError):
        PriceBand(low=74.0)  # type: ignore[arg-type]


def own(side: Side, available: str = "100", price: str = "92.50") -> OwnAd:
    return OwnAd(adv_no="1", side=side, asset="USDT", fiat="RUB", price=D(price),
                 min_amount=D(1000), max_amount=D(50000), available=D(available))


def test_hidden_for_open_orders_with_the_way_back() -> None:
    assert hidden_reason(own(Side.BUY), 7) == ""
    hidden = hidden_reason(own(Side.BUY), 8)
    assert hidden.startswith("8 open orders")
    assert hidden_reason(own(Side.BUY), 5, hidden).startswith("5 open orders")  # not yet back
    assert hidden_reason(own(Side.BUY), 4, hidden) == ""
    assert hidden_reason(own(Side.SELL), 49) == ""
    assert hidden_reason(own(Side.SELL), 50).startswith("50 open orders")
    assert hidden_reason(own(Side.SELL), 41, hidden_reason(own(Side.SELL), 50)) != ""
    assert hidden_reason(own(Side.SELL), 40, hidden_reason(own(Side.SELL), 50)) == ""
    assert hidden_reason(own(Side.SELL), None) == ""  # unknown count: not hidden for it


def test_hidden_below_the_minimum_order() -> None:
    assert "below the minimum order 1000" in hidden_reason(own(Side.SELL, "10"), 0)
    assert hidden_reason(own(Side.SELL, "11"), 0) == ""  # 11 x 92.50 = 1017.50


def test_unsafe_reasons() -> None:
    kw = {"kill_switch": False, "repricing": True, "market_age": 10.0, "stale_after": 300.0,
          "band_hold": ""}
    assert unsafe_reason(**kw) == ""  # type: ignore[arg-type]
    assert unsafe_reason(**kw | {"kill_switch": True}) == "the kill switch is on"  # type: ignore[arg-type]
    assert unsafe_reason(**kw | {"repricing": False}) == "ad updates are unavailable"  # type: ignore[arg-type]
    assert "301 s old" in unsafe_reason(**kw | {"market_age": 301.0})  # type: ignore[arg-type]
    assert unsafe_reason(**kw | {"band_hold": "band"}) == "band"  # type: ignore[arg-type]
