"""Adaptive market cadence: how often each market is searched, and why (issue 14, item 3).

Each market runs inside a band: fast (`[cadence] fast`, 1 s) while it moves or one of our
ads lost rank, slow (`[cadence] slow`, 10 s) when it is quiet. It stays fast for `[cadence]
calm` seconds (30) after the last move, so a market whose rivals answer each other every few
seconds is read every second; then the interval doubles at each quiet read until it is back
at the slow end, so a lull lets it go. A market whose search fails sits at the slow end: it
never spends the budget the others poll with. Over all of this a hard cap: the market reads
together may spend at most `[cadence] market_share` of the weight budget per minute (of
the lower limit the governor learned after a 429, when there is one). The plan is made
across all markets at once (`plan`): when they ask for more than the cap, the fastest are
slowed to a common floor until the sum fits; many markets mean each is slower, never that
the cap is passed, even above the slow end.

The core (`want`, `plan`, `signals`) is pure: values in, values out; `Cadence` keeps the
per-market state and is what the market pollers ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MOVING, RANK_LOST, QUIET, SLOWING, FAILING, CAPPED, STARTING = (
    "moving", "rank lost", "quiet", "slowing down", "search failing", "capped", "starting")
TOP = 10  # rows of a search compared between two reads: a move below them is not a move


@dataclass(frozen=True, slots=True)
class Band:
    """The band every market runs in, and the market reads' share of the weight budget."""

    fast: float = 1.0
    slow: float = 10.0
    market_share: float = 0.5  # of the weight budget per minute, for every market read together
    calm: float = 30.0  # seconds without a move before the interval starts to grow


@dataclass(frozen=True, slots=True)
class Pace:
    """One market's interval (seconds) and why, in words a merchant reads."""

    interval: float
    reason: str


def want(previous: float, *, moved: bool, rank_lost: bool, failed: bool, band: Band,
         quiet_for: float = float("inf")) -> Pace:
    """The interval a market asks for after one read, before the cap.

    Failing: the slow end. Moved or rank lost: the fast end, and it stays there while the last
    move is less than `band.calm` seconds old (`quiet_for`). Quiet longer: twice the last
    interval, up to the slow end (one that stays quiet settles there after a few reads)."""
    if failed:
        return Pace(band.slow, FAILING)
    if rank_lost:
        return Pace(band.fast, RANK_LOST)
    if moved or quiet_for < band.calm:
        return Pace(band.fast, MOVING)
    slower = min(band.slow, max(band.fast, previous) * 2)
    return Pace(slower, QUIET if slower >= band.slow else SLOWING)


def plan(wants: Mapping[Any, Pace], *, weight: float, cap_per_minute: float) -> dict[Any, Pace]:
    """Every market's interval under the cap: Σ 60·weight/interval <= cap_per_minute.

    Markets asking less than their share keep their interval; the fastest are slowed to a
    common floor until the sum fits (water-filling), and say so."""
    if not wants:
        return {}
    cap = max(cap_per_minute, 1e-9)
    floor = _floor(sorted(p.interval for p in wants.values()), weight, cap)
    out = {}
    for key, pace in wants.items():
        if pace.interval >= floor:
            out[key] = pace
        else:
            out[key] = Pace(floor, f"{CAPPED}: {len(wants)} market(s) share {cap:g} weight/min "
                                   f"({pace.reason})")
    return out


def _floor(intervals: Sequence[float], weight: float, cap: float) -> float:
    """The smallest interval f such that every market at max(its own, f) fits in `cap`."""
    def spend(f: float) -> float:
        return sum(60.0 * weight / max(i, f) for i in intervals)

    if spend(0.0) <= cap:  # every interval is > 0 (the config's bounds)
        return 0.0
    low, high = intervals[0], 60.0 * weight * len(intervals) / cap  # at `high` all fit
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if spend(mid) <= cap else (mid, high)
    return high


def signals(before: Sequence[tuple[str, Any]] | None, now: Sequence[tuple[str, Any]],
            own: Iterable[str]) -> tuple[bool, bool]:
    """(moved, rank lost) between two reads of a market, each a list of (adv_no, price) best
    first: moved when any of the TOP rows changed (an ad, a price, the order); rank lost when
    one of our ads stands lower than it did (or is gone from the rows read)."""
    if before is None:
        return False, False
    moved = list(before[:TOP]) != list(now[:TOP])
    where_before = {a: i for i, (a, _) in enumerate(before)}
    where_now = {a: i for i, (a, _) in enumerate(now)}
    lost = any(a in where_before and where_now.get(a, len(now)) > where_before[a] for a in own)
    return moved, lost


@dataclass
class MarketPace:
    """One market's cadence state."""

    name: str
    asked: Pace
    pace: Pace
    last_rows: list[tuple[str, Any]] | None = None
    moved_at: float = float("-inf")  # the last read that saw a move (or a rank lost)


@dataclass
class Cadence:
    """The cadence of every market: fed by the market pollers' reads, planned across all."""

    band: Band
    budget: Callable[[], float]  # the weight a minute kept below now (the governor's limit)
    weight: float = 1.0  # of one market read
    own: Callable[[Any], Iterable[str]] = lambda key: ()  # our ad numbers in a market
    markets: dict[Any, MarketPace] = field(default_factory=dict)

    def add(self, key: Any, name: str) -> None:
        """A market to plan for: it starts at the fast end (nothing is known of it yet)."""
        if key not in self.markets:
            start = Pace(self.band.fast, STARTING)
            self.markets[key] = MarketPace(name, start, start)
            self.replan()

    def read(self, key: Any, rows: Sequence[tuple[str, Any]], now: float) -> Pace:
        """A read of the market came back at `now` (seconds): its new pace."""
        m = self.markets[key]
        moved, lost = signals(m.last_rows, rows, self.own(key))
        m.last_rows = list(rows)
        if moved or lost:
            m.moved_at = now
        m.asked = want(m.asked.interval, moved=moved, rank_lost=lost, failed=False, band=self.band,
                       quiet_for=now - m.moved_at)
        self.replan()
        return m.pace

    def failed(self, key: Any) -> Pace:
        """A read of the market failed: it goes to the slow end."""
        m = self.markets[key]
        m.asked = want(m.asked.interval, moved=False, rank_lost=False, failed=True, band=self.band)
        self.replan()
        return m.pace

    def replan(self) -> None:
        """Plan every market's interval under the cap."""
        cap = self.band.market_share * self.budget()
        planned = plan({k: m.asked for k, m in self.markets.items()}, weight=self.weight,
                       cap_per_minute=cap)
        for key, pace in planned.items():
            self.markets[key].pace = pace

    def interval(self, key: Any) -> float:
        """Seconds until the market's next read."""
        return self.markets[key].pace.interval

    def weight_per_minute(self) -> float:
        """What the market reads spend a minute at the planned intervals."""
        return sum(60.0 * self.weight / m.pace.interval for m in self.markets.values())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every market's interval and why (JSON-ready, keyed by the market's name)."""
        return {m.name: {"interval": round(m.pace.interval, 3), "why": m.pace.reason}
                for m in self.markets.values()}
