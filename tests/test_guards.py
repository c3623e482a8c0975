"""The engine's envelope: each guard alone, together, and the edit budget."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from bot.guards import Update, check
from strategies.base import Hold, OwnAd, Reference, Reprice, Side

NOW = 1_700_000_000.0


@dataclass
class G:
    floor: D | None = None
    ceiling: D | None = None
    reference_band: D | None = None
    min_change: D = D(0)
    max_step: D | None = None
    max_drift_per_hour: D | None = None
    max_updates: int = 30
    update_window: float = 3600.0
    min_interval: float = 0.0


def ad(price: str = "92.50", side: Side = Side.SELL) -> OwnAd:
    return OwnAd(adv_no="1", side=side, asset="USDT", fiat="RUB", price=D(price),
                 min_amount=D(1000), max_amount=D(50000), available=D(100))


def verdict(target: str, limits: G, *, own: OwnAd | None = None, ref: str | None = None,
            updates: list[Update] | None = None, kill: str | None = None):  # type: ignore[no-untyped-def]
    reference = Reference(D(ref)) if ref else None
    return check(Reprice(D(target), "test"), ad=own or ad(), limits=limits, reference=reference,
                 now=NOW, updates=updates or [], kill_switch=kill)


@pytest.mark.parametrize(
    ("target", "limits", "price", "hits"),
    [
        ("90.00", G(floor=D("91.00")), D("91.00"), ("floor",)),
        ("99.00", G(ceiling=D("95.00")), D("95.00"), ("ceiling",)),
        ("80.00", G(reference_band=D("5")), D("87.88"), ("reference_band",)),  # 92.50 * 0.95 -> up
        ("91.00", G(max_step=D("0.50")), D("92.00"), ("max_step",)),
        ("92.4449", G(), D("92.45"), ()),  # SELL rounds up to the tick
        ("92.40", G(floor=D("92.41"), max_step=D("1")), D("92.41"), ("floor",)),
    ],
)
def test_each_guard_alone(target: str, limits: G, price: D, hits: tuple[str, ...]) -> None:
    v = verdict(target, limits, ref="92.50" if limits.reference_band else None)
    assert (v.price, v.hits) == (price, hits)


def test_buy_ads_round_down() -> None:
    assert verdict("92.4449", G(), own=ad(side=Side.BUY)).price == D("92.44")


def test_guards_together_floor_then_step_then_band() -> None:
    v = verdict("80.00", G(floor=D("85"), max_step=D("2"), reference_band=D("10")), ref="92.50")
    assert v.price == D("90.50") and v.hits == ("floor", "max_step")


def test_max_drift_per_hour_counts_from_an_hour_ago() -> None:
    history = [Update(NOW - 1800, D("93.50"), D("93.00")), Update(NOW - 600, D("93.00"), D("92.50"))]
    v = verdict("91.00", G(max_drift_per_hour=D("1.50")), updates=history)
    assert v.price == D("92.00") and "max_drift_per_hour" in v.hits


def test_dead_band_holds() -> None:
    v = verdict("92.49", G(min_change=D("0.05")))
    assert v.price is None and "below min_change" in v.reason


def test_min_interval_holds() -> None:
    v = verdict("92.00", G(min_interval=30), updates=[Update(NOW - 10, D("93"), D("92.50"))])
    assert v.price is None and "min_interval" in v.hits


def test_kill_switch_and_strategy_hold() -> None:
    assert verdict("92.00", G(), kill="global kill_switch is on").reason.startswith("kill switch")
    held = check(Hold("floor reached"), ad=ad(), limits=G(), reference=None, now=NOW, updates=[])
    assert held.price is None and held.reason == "floor reached"


def test_edit_budget_spent_and_saved_for_large_moves() -> None:
    limits = G(max_updates=4, update_window=3600, min_change=D("0.01"))
    recent = [Update(NOW - 100 * i, D("93"), D("92.50")) for i in range(1, 4)]  # 3 of 4 used
    small = verdict("92.49", limits, updates=recent)
    assert small.price is None and "edit_budget" in small.hits
    large = verdict("92.40", limits, updates=recent)
    assert large.price == D("92.40")  # one edit left: spent on the larger move
    spent = verdict("90.00", limits, updates=[*recent, Update(NOW - 50, D("93"), D("92.5"))])
    assert spent.price is None and "spent" in spent.reason
    old = [Update(NOW - 4000, D("93"), D("92.50"))] * 4  # outside the window: budget is back
    assert verdict("92.49", limits, updates=old).price == D("92.49")
