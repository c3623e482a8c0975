"""Floating-price ads and the reference they move with.

A floating ad's price is the exchange's reference price times its ratio, recomputed
by the exchange every time the reference moves. The floor and the ceiling are
prices, so for a floating ad they can be crossed without any update from the bot:
the bot (1) derives the ratio from the freshest reference it has and rounds it
toward the merchant's safe side, (2) aims a margin inside the bounds (one tick plus
the reference's typical move between two reads), and (3) re-checks the effective
price on every reference read, correcting it as soon as it crosses.

The reference itself is watched: a value that jumps far from the last one *and*
from the market's own prices is suspect, held back and reported, never followed.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from strategies.base import Side

RATIO_TICK = Decimal("0.01")  # priceFloatingRatio is sent with 2 decimals (accepted everywhere)
MOVES_KEPT = 20  # reference moves remembered per market for the typical move
CONFIRM_READS = 3  # reads that agree with a jumped reference before it is believed without the market


def ratio_for(target: Decimal, reference: Decimal, side: Side) -> Decimal:
    """The ratio (percent) that prices the ad at `target`, rounded toward the safe side.

    Safe is a higher price for a SELL ad (never sell cheaper than meant) and a lower one
    for a BUY ad (never pay more than meant).
    """
    rounding = ROUND_CEILING if side is Side.SELL else ROUND_FLOOR
    return (target * 100 / reference).quantize(RATIO_TICK, rounding=rounding)


def effective(reference: Decimal, ratio: Decimal, tick: Decimal) -> Decimal:
    """The price the exchange shows for a floating ad: reference x ratio / 100 at the tick."""
    return (reference * ratio / 100).quantize(tick, rounding=ROUND_HALF_UP)


def outside(price: Decimal, floor: Decimal | None, ceiling: Decimal | None) -> str | None:
    """'floor' or 'ceiling' when `price` is beyond it, else None."""
    if floor is not None and price < floor:
        return "floor"
    if ceiling is not None and price > ceiling:
        return "ceiling"
    return None


def inner_bounds(
    floor: Decimal | None, ceiling: Decimal | None, margin: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """The bounds pulled in by `margin` on each side (as far as the room between them allows)."""
    low = floor + margin if floor is not None else None
    high = ceiling - margin if ceiling is not None else None
    if low is not None and high is not None and low > high:
        middle = (floor + ceiling) / 2  # type: ignore[operator]  # both set when both pulled
        return middle, middle
    return low, high


def choose_ratio(
    target: Decimal, reference: Decimal, side: Side, tick: Decimal,
    floor: Decimal | None, ceiling: Decimal | None, margin: Decimal,
) -> tuple[Decimal, Decimal]:
    """(ratio, effective price) for `target`, kept `margin` inside the bounds when possible.

    The ratio is rounded toward the safe side; when that rounding would put the effective
    price across the other bound, the other rounding is taken.
    """
    low, high = inner_bounds(floor, ceiling, margin)
    aim = target
    if low is not None and aim < low:
        aim = low
    if high is not None and aim > high:
        aim = high
    ratio = ratio_for(aim, reference, side)
    price = effective(reference, ratio, tick)
    if outside(price, floor, ceiling) is not None:
        other = ratio_for(aim, reference, Side.BUY if side is Side.SELL else Side.SELL)
        other_price = effective(reference, other, tick)
        if outside(other_price, floor, ceiling) is None:
            return other, other_price
    return ratio, price


@dataclass(frozen=True, slots=True)
class Suspect:
    """A reference read that was not believed, and why."""

    price: Decimal
    last: Decimal
    market: Decimal | None
    jump: Decimal  # percent from the last believed value

    def text(self) -> str:
        """For logs, traces and alerts."""
        seen = f"; the market's median is {self.market}" if self.market is not None else ""
        return (f"reference {self.price} is suspect: {self.jump:.1f}% from the last believed "
                f"{self.last}{seen}: holding")


@dataclass
class ReferenceTrack:
    """The believed reference of one market, its recent moves, and any suspect read."""

    max_jump: Decimal  # percent
    price: Decimal | None = None
    at: float = 0.0
    moves: deque[Decimal] = field(default_factory=lambda: deque(maxlen=MOVES_KEPT))
    suspect: Suspect | None = None
    _agreeing: int = 0

    implied: Decimal | None = None  # the reference a floating ad's observed price implies
    implied_at: float = 0.0

    def observe_implied(self, implied: Decimal, at: float, every: float) -> None:
        """Learn the reference's moves from a floating ad's observed price (price x 100 /
        ratio) while the reference endpoint is not read: one move per `every` seconds, the
        interval the reference would be read at."""
        if self.implied is None or at - self.implied_at >= every:
            if self.implied is not None and at - self.at >= every:
                self.moves.append(abs(implied - self.implied))
            self.implied, self.implied_at = implied, at

    def typical_move(self) -> Decimal:
        """The median absolute move between two reads (0 before two reads)."""
        return Decimal(statistics.median(self.moves)) if self.moves else Decimal(0)

    def offer(self, price: Decimal, at: float, market: Decimal | None) -> Suspect | None:
        """Take a read; returns the Suspect when it is held back instead of believed.

        Believed: the first read; a read within `max_jump` percent of the last believed
        value; a jumped read the market's own prices agree with (within `max_jump`); or,
        without market prices, the same jumped level read CONFIRM_READS times in a row.
        """
        if self.price is None or _jump(price, self.price) <= self.max_jump \
                or market is not None and _jump(price, market) <= self.max_jump:
            self._believe(price, at)
            return None
        if market is None and self.suspect is not None \
                and _jump(price, self.suspect.price) <= self.max_jump:
            self._agreeing += 1
            if self._agreeing >= CONFIRM_READS - 1:
                self._believe(price, at)
                return None
        else:
            self._agreeing = 0
        self.suspect = Suspect(price, self.price, market, _jump(price, self.price))
        return self.suspect

    def _believe(self, price: Decimal, at: float) -> None:
        if self.price is not None:
            self.moves.append(abs(price - self.price))
        self.price, self.at, self.suspect, self._agreeing = price, at, None, 0
        return None


def _jump(price: Decimal, base: Decimal) -> Decimal:
    return abs(price - base) * 100 / base if base else Decimal(100)
