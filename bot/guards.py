"""The safety envelope a strategy cannot bypass: a pure function from a decision to a verdict.

Order: kill switches; floor and ceiling; the band around the reference; max step;
max drift per hour; tick rounding (towards the safe side); the dead-band; the
minimum interval; the edit budget. Every guard that changed or stopped the price
is named in `hits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol

from strategies.base import Decision, Hold, OwnAd, Reference, Side

HOUR = 3600.0


class GuardLimits(Protocol):
    """The `[ads.guards]` table (config.models.Guards)."""

    floor: Decimal | None
    ceiling: Decimal | None
    reference_band: Decimal | None
    min_change: Decimal
    max_step: Decimal | None
    max_drift_per_hour: Decimal | None
    max_updates: int
    update_window: float
    min_interval: float


@dataclass(frozen=True, slots=True)
class Update:
    """One applied price change of an ad."""

    at: float
    before: Decimal
    after: Decimal


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the engine will do: send `price`, or hold (price None) for `reason`."""

    price: Decimal | None
    reason: str
    hits: tuple[str, ...] = ()
    value: Decimal = Decimal(0)  # how far the update moves the price (for the edit budget)


def _hold(reason: str, hits: Sequence[str] = ()) -> Verdict:
    return Verdict(None, reason, tuple(hits))


def _clamp(price: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and price < low:
        return low
    if high is not None and price > high:
        return high
    return price


def _round_safe(price: Decimal, ad: OwnAd, g: GuardLimits) -> Decimal:
    """Round to the fiat's tick towards the merchant's safe side, never across a bound."""
    tick = ad.tick
    safe = ROUND_CEILING if ad.side is Side.SELL else ROUND_FLOOR
    other = ROUND_FLOOR if safe == ROUND_CEILING else ROUND_CEILING
    rounded = price.quantize(tick, rounding=safe)
    if (g.ceiling is not None and rounded > g.ceiling) or (g.floor is not None and rounded < g.floor):
        rounded = price.quantize(tick, rounding=other)
    return rounded


def check(
    decision: Decision,
    *,
    ad: OwnAd,
    limits: GuardLimits,
    reference: Reference | None,
    now: float,
    updates: Sequence[Update],
    kill_switch: str | None = None,
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
    price = _band(price, limits, reference, hits)
    price = _step(price, ad.price, limits.max_step, "max_step", hits)
    price = _drift(price, ad.price, limits, now, updates, hits)
    price = _round_safe(price, ad, limits)
    return _pace(price, ad, limits, now, updates, hits)


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
    price: Decimal, ad: OwnAd, g: GuardLimits, now: float, updates: Sequence[Update],
    hits: list[str],
) -> Verdict:
    change = abs(price - ad.price)
    if change == 0 or change < g.min_change:
        return _hold(f"change {change} below min_change {g.min_change}" if change else
                     f"already at {price}", hits)
    last = updates[-1].at if updates else None
    if last is not None and now - last < g.min_interval:
        wait = g.min_interval - (now - last)
        return _hold(f"min_interval: next update allowed in {wait:.0f} s", [*hits, "min_interval"])
    used = sum(1 for u in updates if now - u.at < g.update_window)
    remaining = g.max_updates - used
    if remaining <= 0:
        return _hold(f"edit budget spent: {used} updates in {g.update_window:.0f} s",
                     [*hits, "edit_budget"])
    needed = _budget_threshold(g, remaining, ad.tick)
    if change < needed:
        return _hold(f"edit budget low ({remaining} left): saving edits for moves of {needed} or more",
                     [*hits, "edit_budget"])
    return Verdict(price, "", tuple(hits), change)


def _budget_threshold(g: GuardLimits, remaining: int, tick: Decimal) -> Decimal:
    """The smallest move worth an edit: grows as the budget runs down (most valuable first)."""
    half = Decimal(g.max_updates) / 2
    if remaining >= half:
        return Decimal(0)
    base = max(g.min_change, tick)
    return (base * half / Decimal(remaining)).quantize(tick, rounding=ROUND_CEILING)
