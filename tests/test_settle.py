"""The settle window: after an update, the price the bot set is the truth for a while, whatever
a lagging read of the ad says (docs/exchange.md §11.1, read-your-write lag)."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

from bot.binance.models import Ad
from bot.events import OwnAdsUpdate
from bot.pricing.engine import AdRuntime, PricingEngine, Settle
from strategies.base import OwnAd, Side
from tests.support import FakeClock


def engine(clock: FakeClock, settle: float = 45.0) -> PricingEngine:
    return PricingEngine([], api=None, registry=None, clock=clock,  # type: ignore[arg-type]
                         settle_seconds=settle)


def runtime(clock: FakeClock, *, floating: bool = False) -> AdRuntime:
    own = OwnAd(adv_no="1", side=Side.SELL, asset="USDT", fiat="RUB", price=D("92.00"),
                price_type="floating" if floating else "fixed",
                ratio=D("99.5") if floating else None, min_amount=D(500), max_amount=D(10000),
                available=D(100))
    loaded = SimpleNamespace(config=SimpleNamespace(on_unsafe="hold"), label="sell")
    ad = AdRuntime(loaded=loaded, own=own)  # type: ignore[arg-type]
    ad.settle = Settle(clock.time(), D("92.00"), D("93.40"), D("99.5") if floating else None,
                       D("99.2") if floating else None)
    return ad


def read(price: str, **kw: Any) -> Ad:
    return Ad.model_validate({"advNo": "1", "price": price, "advStatus": 1, **kw})


def test_a_fixed_ad_read_at_any_other_price_is_stale_for_the_window_only() -> None:
    clock = FakeClock()
    e, ad = engine(clock), runtime(clock)
    assert e._stale(ad, D("93.40"))  # the price before the update
    assert e._stale(ad, D("91.00"))  # an older one still
    assert not e._stale(ad, D("92.00"))
    clock.advance(44.9)
    assert e._stale(ad, D("93.40"))
    clock.advance(0.1)
    assert not e._stale(ad, D("93.40"))  # after the window the exchange's word counts again


def test_a_floating_ad_is_stale_only_at_its_old_price_or_ratio() -> None:
    clock = FakeClock()
    e, ad = engine(clock), runtime(clock, floating=True)
    assert e._stale(ad, D("93.40"))
    assert e._stale(ad, D("91.80"), D("99.2"))  # the ratio from before the update
    assert not e._stale(ad, D("91.80"), D("99.5"))  # the reference moved: believed


async def test_the_own_ads_read_does_not_undo_the_price_set() -> None:
    clock = FakeClock()
    e, ad = engine(clock), runtime(clock)
    e.ads = [ad]
    await e.on_own_ads(OwnAdsUpdate((read("93.40"),), clock.time()))
    assert ad.own is not None and ad.own.price == D("92.00")
    clock.advance(45)
    await e.on_own_ads(OwnAdsUpdate((read("93.40"),), clock.time()))
    assert ad.own.price == D("93.40")


def test_a_zero_window_believes_every_read() -> None:
    clock = FakeClock()
    e, ad = engine(clock, settle=0), runtime(clock)
    assert not e._stale(ad, D("93.40"))
