"""The safety envelope a strategy cannot bypass: a pure function from a decision to a verdict.

Order: kill switches; floor and ceiling; the exchange's price band as learned from its
refusals (bot.pricing.band: clamped into, or a hold when it leaves no price within the floor and
ceiling); the band around the reference; max step;
max drift per hour; tick rounding (towards the safe side, but never giving up
the decision's relation to the competitor it names); the dead-band; the minimum
interval; the edit budget, paced evenly over its window with the most valuable
moves first. Every guard that changed or stopped the price is named in `hits`
("tick" when rounding changed it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol

from strategies.base import Decision, Hold, OwnAd, PriceBand, Reference, Relation, Reprice, Side

HOUR = 3600.0


class GuardLimits(Protocol):
    """The `[ads.guards]` table (config.models.Guards), read-only."""

    @property
    def floor(self) -> Decimal | None: ...

    @property
    def ceiling(self) -> Decimal | None: ...

    @property
    def reference_band(self) -> Decimal | None: ...

    @property
    def min_change(self) -> Decimal: ...

    @property
    def max_step(self) -> Decimal | None: ...

    @property
    def max_drift_per_hour(self) -> Decimal | None: ...

    @property
    def max_updates(self) -> int: ...

    @property
    def update_window(self) -> float: ...

    @property
    def min_interval(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Update:
    """One applied price change of an ad."""

    at: float
    before: Decimal
    after: Decimal


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the engine will do: send `price`, or hold (price None) for `reason`.

    `notes` say what the guards did to the price in words the reason can carry
    ("rounded from 92.492 to the 0.01 tick").
    """

    price: Decimal | None
    reason: str
    hits: tuple[str, ...] = ()
    value: Decimal = Decimal(0)  # how far the update moves the price (for the edit budget)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Budget:
    """The edit budget of one ad at one moment.

    `used` and `left` count updates in the sliding `window`; `paced` is how many
    more the pace allows right now (at most `left`); `next_in` is when the pace
    allows the next one (seconds, 0 when `paced` > 0).
    """

    used: int
    total: int
    window: float
    paced: int
    next_in: float

    @property
    def left(self) -> int:
        """Updates left in the window."""
        return max(0, self.total - self.used)


def burst(total: int) -> int:
    """Updates the pace lets through at once on top of the even rate.

    A sixth of the budget (at least 2, less than the whole): 10 minutes' worth of
    an even pace, enough to take the rank and answer the first counter-moves of a
    war at once, too little for one volley to eat the hour. With 30 an hour: 5.
    """
    return min(max(2, -(-total // 6)), total - 1)


def budget(g: GuardLimits, updates: Sequence[Update], now: float) -> Budget:
    """How much of the edit budget is used, left, and allowed by the pace now.

    The pace spends the budget evenly: for every recent update u in the window, the
    updates from u to now, the next one included, may number at most
    burst + ceil((max_updates - burst) * (now - u) / update_window). The even rate
    leaves room for the burst in every window, so the total never runs out before
    the window turns over: a war cannot spend the hour's edits in its first minutes
    and then starve, and at any time t after the oldest counted update the updates
    used stay within ceil(max_updates * t / update_window) + burst.
    """
    recent = sorted(u.at for u in updates if now - u.at < g.update_window)
    n, w, extra = g.max_updates, g.update_window, burst(g.max_updates)
    rate = n - extra  # updates per window on top of the burst
    paced, wait = min(n - len(recent), extra + 1), 0.0  # + 1: the update being decided
    if len(recent) >= n:
        wait = recent[0] + w - now
    for i, at in enumerate(recent):
        since, count = now - at, len(recent) - i
        allows = extra + _ceil_ratio(rate, since, w) - count
        if allows <= 0:  # allowed again once rate * since / w passes count - extra
            wait = max(wait, w * (count - extra) / rate - since)
        paced = min(paced, allows)
    paced = max(0, paced)
    return Budget(len(recent), n, w, paced, 0.0 if paced else max(wait, 0.0))


def _ceil_ratio(n: int, since: float, window: float) -> int:
    """ceil(n * since / window), exact for the usual whole seconds.

    Worked out in floats first: they differ from the decimal quotient below by a few parts in
    10**16, so when their quotient is further than a millionth of a millionth (relative) from a
    whole number, no whole number lies between the two and its ceiling is the same. Only a
    quotient that close to a whole number is worked out again in decimals (the budget is
    counted over every recent update, for every decision that reprices)."""
    if type(n) is int and type(since) is float and type(window) is float and window:
        q = n * since / window
        if _FINITE_LOW < q < _FINITE_HIGH:
            k = round(q)
            if abs(q - k) > 1e-12 * max(1.0, abs(q)):
                return math.ceil(q)
    return int((Decimal(n) * Decimal(str(since)) / Decimal(str(window))).to_integral_value(ROUND_CEILING))


_FINITE_LOW, _FINITE_HIGH = -(2.0 ** 40), 2.0 ** 40  # outside: the decimals decide


def _hold(reason: str, hits: Sequence[str] = ()) -> Verdict:
    return Verdict(None, reason, tuple(hits))


def _clamp(price: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and price < low:
        return low
    if high is not None and price > high:
        return high
    return price


def _round_safe(price: Decimal, ad: OwnAd, g: GuardLimits, decision: Reprice) -> tuple[Decimal, str]:
    """Round to the ad's tick, never across a bound, with a note when the price changed.

    Without a relation: towards the merchant's safe side (SELL up, BUY down). With one
    ("beat" or "level" a competitor's price), the safe side only if it keeps the relation,
    else the other side of the tick, which always keeps it: a SELL price of 0.992 that
    beats 0.993 goes to 0.99, never to 1.00. When the bounds allow neither, say so.
    """
    tick, side = ad.tick, ad.side
    up, down = price.quantize(tick, rounding=ROUND_CEILING), price.quantize(tick, rounding=ROUND_FLOOR)
    safe, other = (up, down) if side is Side.SELL else (down, up)

    def inside(p: Decimal) -> bool:
        return not ((g.ceiling is not None and p > g.ceiling) or (g.floor is not None and p < g.floor))

    rel, target = decision.relation, decision.target
    if rel is None or target is None or not _holds(side, rel, price, target):
        chosen = safe if inside(safe) else other  # no relation to keep (or an earlier guard lost it)
        return chosen, "" if chosen == price else f"rounded from {price} to the {tick} tick"
    for p in (safe, other):
        if inside(p) and _holds(side, rel, p, target):
            return p, "" if p == price else f"rounded from {price} to the {tick} tick"
    chosen = safe if inside(safe) else other
    blocked_by_floor = g.floor is not None and other < g.floor  # SELL: the side that keeps it
    name, bound = ("floor", g.floor) if blocked_by_floor else ("ceiling", g.ceiling)
    want = side.ahead_word if rel == "beat" else f"level with or {side.ahead_word}"
    return chosen, (f"rounded from {price} to the {tick} tick: no {tick} tick price {want} "
                    f"{target} within the {name} {bound}")


def _holds(side: Side, relation: Relation, price: Decimal, target: Decimal) -> bool:
    """Rounding keeps "beat" while strictly ahead and "level" while not behind (an
    off-tick price cannot be matched exactly: the nearest tick price ahead of it keeps the rank)."""
    ahead = side.ahead_by(price, target)
    return ahead > 0 if relation == "beat" else ahead >= 0


def check(
    decision: Decision,
    *,
    ad: OwnAd,
    limits: GuardLimits,
    reference: Reference | None,
    now: float,
    updates: Sequence[Update],
    kill_switch: str | None = None,
    band: PriceBand | None = None,
) -> Verdict:
    """Run the envelope over a strategy's decision."""
    if isinstance(decision, Hold):
        return _hold(decision.reason)
    if kill_switch:
        return _hold(f"kill switch: {kill_switch}", ["kill_switch"])
    hits: list[str] = []
    price = decision.price
    bounded = _clamp(price, limits.floor, limits.ceiling)
    if bounded != price:
        hits.append("floor" if limits.floor is not None and bounded == limits.floor else "ceiling")
    price = bounded
    inside = _exchange_band(price, band, limits)
    if inside is None:
        assert band is not None
        return _hold(f"the exchange's band ({band.low} to {band.high}) leaves no price within "
                     f"the floor {limits.floor} and ceiling {limits.ceiling}", [*hits, "band"])
    if inside != price:
        hits.append("band")
    price = inside
    price = _band(price, limits, reference, hits)
    price = _step(price, ad.price, limits.max_step, "max_step", hits)
    price = _drift(price, ad.price, limits, now, updates, hits)
    price, note = _round_safe(price, ad, limits, decision)
    if note:
        hits.append("tick")
    verdict = _pace(price, decision, ad, limits, now, updates, hits, note)
    return replace(verdict, notes=(note,)) if note else verdict  # `_pace` gives no notes
def _exchange_band(price: Decimal, band: PriceBand | None, g: GuardLimits) -> Decimal | None:
    """`price` clamped into the exchange's band, or None when the band and the floor and
    ceiling do not meet (no price the exchange takes is one the merchant allows)."""
    if band is None:
        return price
    clamped = _clamp(price, band.low, band.high)
    if (g.floor is not None and clamped < g.floor) or (g.ceiling is not None and clamped > g.ceiling):
        return None
    return clamped


def _band(price: Decimal, g: GuardLimits, ref: Reference | None, hits: list[str]) -> Decimal:
    if ref is None or g.reference_band is None:
        return price
    spread = ref.price * g.reference_band / 100
    banded = _clamp(price, ref.price - spread, ref.price + spread)
    if banded != price:
        hits.append("reference_band")
    return banded


def _step(price: Decimal, base: Decimal, limit: Decimal | None, name: str, hits: list[str]) -> Decimal:
    if limit is None:
        return price
    stepped = _clamp(price, base - limit, base + limit)
    if stepped != price:
        hits.append(name)
    return stepped


def _drift(
    price: Decimal, current: Decimal, g: GuardLimits, now: float, updates: Sequence[Update],
    hits: list[str],
) -> Decimal:
    if g.max_drift_per_hour is None:
        return price
    recent = [u for u in updates if now - u.at < HOUR]
    hour_ago = recent[0].before if recent else current
    return _step(price, hour_ago, g.max_drift_per_hour, "max_drift_per_hour", hits)


def _pace(
    price: Decimal, decision: Reprice, ad: OwnAd, g: GuardLimits, now: float,
    updates: Sequence[Update], hits: list[str], note: str,
) -> Verdict:
    change = abs(price - ad.price)
    if change == 0:
        return _hold(_already(price, decision, ad.side, note), hits)
    if change < g.min_change:
        return _hold(f"change {change} below min_change {g.min_change}", hits)
    last = updates[-1].at if updates else None
    if last is not None and now - last < g.min_interval:
        wait = g.min_interval - (now - last)
        return _hold(f"min_interval: next update allowed in {wait:.0f} s", [*hits, "min_interval"])
    b = budget(g, updates, now)
    if b.left <= 0:
        return _hold(f"edit budget spent: {b.used} updates in {g.update_window:.0f} s",
                     [*hits, "edit_budget"])
    if b.paced <= 0:
        return _hold(f"edit budget paced: {b.used} of {b.total} used in the window, the pace "
                     f"allows the next update in {b.next_in:.0f} s", [*hits, "edit_budget"])
    worth = _worth(price, decision, ad, g)
    keep = _reserve(b.total)
    if worth and b.paced <= keep:
        return _hold(f"edit budget paced: {b.paced} update(s) allowed now, kept for moves that "
                     f"take a rank ({worth})", [*hits, "edit_budget"])
    return Verdict(price, "", tuple(hits), change)


def _reserve(total: int) -> int:
    """Paced updates kept for moves that take a rank: half the burst."""
    return burst(total) // 2


def _worth(price: Decimal, decision: Reprice, ad: OwnAd, g: GuardLimits) -> str:
    """Why this move can wait for spare budget, or "" when it is among the most valuable.

    Most valuable: a move that gets the ad ahead of (or level with) the competitor the
    decision names while it is behind it now (taking the rank back), and any move of
    more than one tick. A move that keeps a relation the ad already holds (moving back
    to keep the margin) or a one-tick tweak can wait.
    """
    side, rel, target = ad.side, decision.relation, decision.target
    if rel is not None and target is not None:
        if _holds(side, rel, ad.price, target):
            where = side.position(ad.price, target, decision.target_name or "it")
            return f"this one only adjusts the margin: already {where}"
        return ""
    if abs(price - ad.price) <= max(g.min_change, ad.tick):
        return "this one is a one-tick tweak"
    return ""


def _already(price: Decimal, decision: Reprice, side: Side, note: str) -> str:
    """The reason for holding at the current price: where that price stands, and why."""
    reason = f"already at {price}"
    if decision.relation is not None and decision.target is not None:
        reason += f", {side.position(price, decision.target, decision.target_name or 'the target')}"
    return f"{reason} ({note})" if note else reason
