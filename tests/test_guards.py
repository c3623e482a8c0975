"""The engine's envelope: each guard alone, together, and the edit budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from bot.pricing.guards import Budget, Update, budget, burst, check
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
        ("80.00", G(reference_band=D("5")), D("87.88"), ("reference_band", "tick")),  # 87.875 -> up
        ("91.00", G(max_step=D("0.50")), D("92.00"), ("max_step",)),
        ("92.4449", G(), D("92.45"), ("tick",)),  # SELL rounds up to the tick
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


def test_edit_budget_spent() -> None:
    limits = G(max_updates=4, update_window=3600, min_change=D("0.01"))
    spread = [Update(NOW - t, D("93"), D("92.50")) for t in (3000, 2200, 1400, 600)]
    spent = verdict("90.00", limits, updates=spread)
    assert spent.price is None and "spent" in spent.reason and "edit_budget" in spent.hits
    old = [Update(NOW - 4000, D("93"), D("92.50"))] * 4  # outside the window: budget is back
    assert verdict("92.49", limits, updates=old).price == D("92.49")


def test_edit_budget_is_paced_not_spent_at_once() -> None:
    """4 an hour: a burst of 2 plus 2 spread over the hour. Three updates in the last
    5 minutes leave the fourth for later, even though it is a large move."""
    limits = G(max_updates=4, update_window=3600, min_change=D("0.01"))
    recent = [Update(NOW - 100 * i, D("93"), D("92.50")) for i in range(1, 4)]  # 3 of 4 used
    held = verdict("92.00", limits, updates=recent)
    assert held.price is None and "edit_budget" in held.hits
    assert held.reason == ("edit budget paced: 3 of 4 used in the window, the pace allows the "
                           "next update in 1500 s")  # once 2 * (300 + 1500) / 3600 passes 1
    later = [Update(u.at - 1501, u.before, u.after) for u in recent]
    assert verdict("92.00", limits, updates=later).price == D("92.00")


def test_budget_counts_used_left_and_paced() -> None:
    limits = G(max_updates=30, update_window=3600)
    assert budget(limits, [], NOW) == Budget(0, 30, 3600, 6, 0.0)  # burst 5 + this one
    five = [Update(NOW - 10 * i, D(1), D(1)) for i in range(5, 0, -1)]  # 5 in the last 50 s
    b = budget(limits, five, NOW)
    assert (b.used, b.left, b.paced) == (5, 25, 1)
    six = [Update(NOW - 60, D(1), D(1)), *five]
    b = budget(limits, six, NOW)
    assert (b.used, b.left, b.paced) == (6, 24, 0) and b.next_in == 84  # (30 - 5) * 144 / 3600 = 1


def _war_hour(limits: G, *, every: float = 10.0) -> list[float]:
    """A price war on a virtual clock: every `every` s a competitor takes rank 1 from us
    (a move that takes the rank back) or gives us room to move back (a margin tweak),
    and the envelope decides. Returns the times of the updates it let through."""
    price, sent = D("93.00"), []
    updates: list[Update] = []
    for n in range(int(3600 / every)):
        now = NOW + n * every
        rival = price - D("0.01") if n % 3 else price - D("0.20")  # undercut, or far below
        behind = n % 3 != 0
        target = rival - D("0.01") if behind else price + D("0.05")
        decision = Reprice(target, "war", "adv-rival", "beat", rival, "'rival'") if behind else \
            Reprice(target, "war", "adv-rival", "beat", target + D("0.01"), "'rival'")
        v = check(decision, ad=ad(str(price)), limits=limits, reference=None, now=now,
                  updates=updates)
        if v.price is not None:
            updates.append(Update(now, price, v.price))
            price = v.price
            sent.append(now - NOW)
    return sent


def test_edit_budget_lasts_the_hour_of_a_price_war() -> None:
    """Issue 10 item 8: the budget is paced over the window, never spent in the first minutes."""
    limits = G(max_updates=30, update_window=3600, min_interval=10, min_change=D("0.01"))
    sent = _war_hour(limits)
    extra = burst(30)
    for k, at in enumerate(sent, 1):  # at every update, the updates so far are within the pace
        assert k <= math.ceil(30 * at / 3600) + extra, (k, at)
    assert len(sent) >= 25  # and the budget is used, not hoarded
    assert any(at >= 3000 for at in sent)  # the last ten minutes still have updates


def test_most_valuable_moves_first() -> None:
    """With the pace nearly used, a move that takes rank 1 back goes, a margin tweak waits."""
    limits = G(max_updates=30, update_window=3600, min_change=D("0.01"))
    four = [Update(NOW - 10 * i, D(1), D(1)) for i in range(4, 0, -1)]  # 2 allowed now, 2 kept
    current = ad("92.50")
    back = Reprice(D("92.39"), "1st", "a", "beat", D("92.40"), "'alpha'")  # we are behind 92.40
    margin = Reprice(D("92.59"), "1st", "a", "beat", D("92.60"), "'alpha'")  # ahead already
    kw = {"ad": current, "limits": limits, "reference": None, "now": NOW, "updates": four}
    assert check(back, **kw).price == D("92.39")
    held = check(margin, **kw)
    assert held.price is None and "edit_budget" in held.hits
    assert "kept for moves that take a rank" in held.reason
    assert "already 0.10 below 'alpha' (92.60)" in held.reason


# --- issue 10 item 6: rounding keeps the relation the decision names ------------------------


def _named(price: str, relation: str, target: str, limits: G, own: OwnAd):  # type: ignore[no-untyped-def]
    decision = Reprice(D(price), "test", "adv-x", relation, D(target), "'x'")  # type: ignore[arg-type]
    return check(decision, ad=own, limits=limits, reference=None, now=NOW, updates=[])


@pytest.mark.parametrize(
    ("side", "asked", "relation", "target", "sent"),
    [
        (Side.SELL, "0.992", "beat", "0.993", "0.99"),  # beat by 0.001: 1.00 would be behind
        (Side.SELL, "0.989", "beat", "0.99", "0.98"),  # 0.99 would be a tie
        (Side.SELL, "0.998", "level", "0.998", "0.99"),  # 1.00 would give the rank up
        (Side.SELL, "0.985", "beat", "0.99", "0.98"),
        (Side.BUY, "1.008", "beat", "1.007", "1.01"),
        (Side.BUY, "1.011", "beat", "1.01", "1.02"),
        (Side.BUY, "1.002", "level", "1.002", "1.01"),
    ],
)
def test_rounding_keeps_the_relation(side: Side, asked: str, relation: str, target: str,
                                     sent: str) -> None:
    v = _named(asked, relation, target, G(), ad("1.05" if side is Side.SELL else "0.95", side))
    assert v.price == D(sent)
    assert v.hits == ("tick",) and v.notes == (f"rounded from {asked} to the 0.01 tick",)
    ahead = side.ahead_by(v.price, D(target))
    assert ahead > 0 if relation == "beat" else ahead >= 0


def test_rounding_on_the_safe_side_when_it_keeps_the_relation() -> None:
    v = _named("92.3449", "beat", "92.40", G(), ad("93.00"))
    assert v.price == D("92.35") and v.hits == ("tick",)  # up is still below 92.40: margin kept
    assert _named("92.39", "beat", "92.40", G(), ad("93.00")).hits == ()  # on the tick: no hit


def test_rounding_says_so_when_the_floor_forbids_the_relation() -> None:
    v = _named("0.989", "beat", "0.99", G(floor=D("0.985")), ad("1.05"))
    assert v.price == D("0.99") and v.hits == ("tick",)
    assert v.notes == ("rounded from 0.989 to the 0.01 tick: no 0.01 tick price below 0.99 "
                       "within the floor 0.985",)


def test_hold_at_the_current_price_says_where_it_stands() -> None:
    """"already at 1.02" while the competitor is at 1.012 was the old reason: rounding up
    undid the move. Now the move goes to 1.01; and when the floor forbids it, the hold says
    where the price stands."""
    assert _named("1.011", "beat", "1.012", G(), ad("1.02")).price == D("1.01")
    held = _named("1.011", "beat", "1.012", G(floor=D("1.011")), ad("1.02"))
    assert held.price is None
    assert held.reason.startswith("already at 1.02, 0.008 behind 'x' (1.012) (rounded from 1.011")


# --- issue 10 item 7: the reason describes the price sent -----------------------------------


def _sent(decision: Reprice, limits: G, own: OwnAd, *prices: str) -> str:
    from bot.pricing.engine import sent_reason
    from tests.plugins_fixture.market import comp

    v = check(decision, ad=own, limits=limits, reference=None, now=NOW, updates=[])
    assert v.price is not None
    rivals = [comp(f"c{i}", p) for i, p in enumerate(prices)]
    return sent_reason(decision, v, own.side, rivals)


def test_reason_of_a_rounded_price_describes_the_price_sent() -> None:
    decision = Reprice(D("0.992"), "1st by 0.001 below 'alpha' (0.993)", "adv-a", "beat",
                       D("0.993"), "'alpha'")
    assert _sent(decision, G(), ad("1.05"), "0.993", "1.01") == (
        "1st: 0.99, 0.003 below 'alpha' (0.993); rounded from 0.992 to the 0.01 tick "
        "[guards: tick]")


def test_reason_of_a_price_another_guard_changed_says_where_it_stands() -> None:
    decision = Reprice(D("92.39"), "1st by 0.01 below 'alpha' (92.40)", "adv-a", "beat",
                       D("92.40"), "'alpha'")
    reason = _sent(decision, G(max_step=D("0.50")), ad("93.50"), "92.40", "92.60", "92.80")
    assert reason == ("4th: 93.00, 0.60 behind 'alpha' (92.40); the strategy asked for 92.39 "
                      "[guards: max_step]")


def test_reason_unchanged_when_the_price_is_sent_as_asked() -> None:
    decision = Reprice(D("92.39"), "1st by 0.01 below 'alpha' (92.40)", "adv-a", "beat",
                       D("92.40"), "'alpha'")
    assert _sent(decision, G(), ad("93.00"), "92.40") == "1st by 0.01 below 'alpha' (92.40)"


def test_reason_without_a_named_competitor_adds_the_price_sent() -> None:
    decision = Reprice(D("92.9625"), "reference 92.50 +0.5%")
    assert _sent(decision, G(), ad("92.00"), "92.40") == (
        "reference 92.50 +0.5%; sent 92.97; rounded from 92.9625 to the 0.01 tick [guards: tick]")


def test_rounding_says_so_when_the_ceiling_forbids_the_relation() -> None:
    v = _named("1.011", "beat", "1.01", G(ceiling=D("1.015")), ad("0.95", Side.BUY))
    assert v.price == D("1.01") and v.hits == ("tick",)
    assert v.notes == ("rounded from 1.011 to the 0.01 tick: no 0.01 tick price above 1.01 "
                       "within the ceiling 1.015",)
