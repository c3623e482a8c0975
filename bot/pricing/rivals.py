"""Competitor profiles: who reprices, how fast, whether they answer our moves, where they stop.

Pure: a `RivalBook` (one market, one side of it) is fed timestamped search snapshots
(`observe`: the competitors' rows best first, our own price then) and our own updates
(`our_move`), and nothing else: no clock, no I/O. The same book works on the live market
(the pricing engine feeds it every snapshot it decides on) and on a recording.

A profile is keyed by the advertiser's user id (`user_no`), never by nickname: nicknames
change and collide. What it says (`strategies.base.RivalProfile`):

- how often the rival reprices (price changes seen in the window, per hour) and how far;
- whether it answers our moves: each update of ours that overtakes a rival near our rank
  (from behind or level with it to past it) is a chance to answer; a rival that changes its
  price towards our new one (or past it) before our next update has answered it; the delay is known only between the snapshot before and the one that
  showed it, so `answer_seconds` is the median of the upper bounds (it cannot be finer than
  the market interval);
- the floor: the most attractive price it has shown in the window. For a SELL-side market
  (rivals of our SELL ad: takers buy from the lowest) that is the LOWEST price seen; for a
  BUY-side market (takers sell to the highest) the HIGHEST. `at_floor`: our ad has been past
  it for two snapshots in a row and it did not follow: for a bot, its price now is its floor
  now (a floor that moves with the market is not where it was an hour ago);
- decoy signs: a max limit, or an available amount, too small to fill a typical minimum
  order of the market (the median minimum of the snapshot), and appearing only at the top;
- its completion rate and monthly orders as search shows them.

The classification: `decoy` (an amount sign in most of its snapshots), `bot` (answered
at least `min_answers` of our moves, a share of at least `answer_share` of the chances, the
answers fast: at most `bot_seconds` after our move at the earliest; or busy: at least
`busy_reprices` price changes in the window, a median of at most `busy_seconds` between
them, as a bot pinned to a floor that moves with the market shows it: no person reprices
every few seconds for long), `human` (seen often enough, neither), `unknown` (too few
snapshots).

Memory is bounded: per rival, counts per minute of the `window` and at most `max_events`
price changes, chances and answers within it; per market, at most `max_rivals` rivals (the
one seen least recently goes first).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from strategies.base import CompetitorAd, RivalKind, RivalProfile, Side

TOP = 3  # positions that count as "at the top" for the decoy sign
SEEN, NEAR, TOPS, TINY = 1, 2, 3, 4  # the counts of a minute (see _Rival.minutes)


@dataclass(frozen=True, slots=True)
class RivalSettings:
    """How much a book remembers and how it classifies."""

    window: float = 1800.0  # seconds of history kept per rival
    max_events: int = 64  # events of each kind kept per rival
    max_rivals: int = 60  # rivals tracked per market
    near_ranks: int = 5  # positions either side of ours that count as "near our rank"
    bot_seconds: float = 5.0  # an answer this soon after our move (at the earliest) is fast
    answer_timeout: float = 120.0  # a change later than this after our move is no answer
    min_answers: int = 3
    busy_seconds: float = 20.0  # a median this short between price changes...
    busy_reprices: int = 10  # ... over at least this many changes is a bot too
    answer_share: Decimal = Decimal("0.3")
    min_snapshots: int = 3  # fewer: "unknown"


@dataclass(slots=True)
class _Chance:
    """One of our moves a rival could answer."""

    at: float  # when we moved
    price: Decimal  # our new price
    their: Decimal  # their price when we moved


@dataclass(slots=True)
class _Rival:
    user_no: str
    nickname: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    price: Decimal | None = None
    completion_rate: Decimal = Decimal(0)
    month_orders: int = 0
    # per minute of the window: [minute, snapshots, near our rank, in the first TOP, amount sign]
    minutes: deque[list[int]] = field(default_factory=deque)
    totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # the sums of `minutes`
    near_at: float | None = None  # the last snapshot that showed it near our rank
    signs: set[str] = field(default_factory=set)  # amount signs ever seen in the window
    changes: deque[tuple[float, Decimal, Decimal]] = field(default_factory=deque)  # (at, from, to)
    prices: deque[tuple[float, Decimal]] = field(default_factory=deque)  # (at, price) per change
    chances: deque[float] = field(default_factory=deque)  # when each chance was given
    answers: deque[tuple[float, float, float]] = field(default_factory=deque)  # (at, low, high)
    pending: _Chance | None = None
    past_since: float | None = None  # since when our ad has been past it (better), snapshot time
    # what a profile derives from `changes`, `answers` and `prices`, with the length and the
    # first and last entries it was derived from (bot.pricing.rivals._derived)
    derived: dict[str, tuple[Any, ...]] = field(default_factory=dict)


class RivalBook:
    """The profiles of one market's competitors, for an ad on `side` (see module doc)."""

    def __init__(self, side: Side, settings: RivalSettings | None = None) -> None:
        self.side = Side(side)
        self.settings = settings or RivalSettings()
        self.rivals: dict[str, _Rival] = {}
        self.last_at: float | None = None
        self.own_price: Decimal | None = None
        self.own_rank: int | None = None
        # profiles built since their rival last changed: every ad of the market reads the same
        # few (an ad's decision reads its target's), and they change only when the book is fed
        self._built: dict[str, RivalProfile] = {}

    # --- feeding ---------------------------------------------------------------------

    def observe(self, at: float, rows: Sequence[CompetitorAd], own_price: Decimal | None) -> None:
        """One search snapshot: the competitors' rows (own ads removed) best first."""
        s = self.settings
        self._built.clear()
        best = _best_per_user(rows)
        minimum = _median([r.min_amount for r in rows if r.min_amount > 0])
        self.own_price = own_price
        if own_price is None:
            self.own_rank = None
        elif self.side is Side.SELL:  # side.better(r.price, own_price), without a call per row
            self.own_rank = 1 + sum(1 for r in rows if r.price < own_price)
        else:
            self.own_rank = 1 + sum(1 for r in rows if r.price > own_price)
        minute, rivals = int(at // 60), self.rivals
        for user_no, (position, row) in best.items():
            rival = rivals.get(user_no)
            if rival is None:
                rival = rivals[user_no] = _new(user_no, at, s.max_events)
            self._see(rival, at, minute, position, row, minimum)
        if self.last_at is None or int(at // 60) != int(self.last_at // 60):
            for rival in self.rivals.values():  # the window moves on once a minute
                _trim(rival, at - s.window)
        self._cap()
        self.last_at = at

    def _see(self, r: _Rival, at: float, minute: int, position: int, row: CompetitorAd,
             minimum: Decimal | None) -> None:
        price, was = row.price, r.price
        r.nickname, r.last_seen = row.nickname, at
        r.completion_rate, r.month_orders = row.completion_rate, row.month_orders
        minutes = r.minutes
        if not minutes or minutes[-1][0] != minute:
            minutes.append([minute, 0, 0, 0, 0])
        now, totals = minutes[-1], r.totals  # the minute's counts and the window's, alike
        now[SEEN] += 1
        totals[SEEN] += 1
        rank = self.own_rank
        if rank is not None and abs(position - rank) <= self.settings.near_ranks:  # near our rank
            now[NEAR] += 1
            totals[NEAR] += 1
            r.near_at = at
        if position <= TOP:
            now[TOPS] += 1
            totals[TOPS] += 1
        if minimum is not None:
            signs = _amount_signs(row, minimum)
            if signs:
                now[TINY] += 1
                totals[TINY] += 1
                r.signs |= signs
        if was is None or price != was:
            if was is not None:
                r.changes.append((at, was, price))
                self._answered(r, at, price)
            r.prices.append((at, price))
        elif not r.prices:
            r.prices.append((at, price))
        r.price = price
        own = self.own_price
        if own is None or not (own < price if self.side is Side.SELL else own > price):
            r.past_since = None  # not past it (side.better(own, row.price), inlined)
        elif r.past_since is None:
            r.past_since = at

    def _answered(self, r: _Rival, at: float, price: Decimal) -> None:
        """A price change: the answer to our pending move if it goes towards our new price."""
        c = r.pending
        if c is None:
            return
        r.pending = None
        if at - c.at > self.settings.answer_timeout:
            return
        closer = abs(price - c.price) < abs(c.their - c.price)
        past = not self.side.better(c.price, price)  # level with or ahead of our new price
        if closer or past:  # between the snapshot before this one and this one
            before = self.last_at if self.last_at is not None else c.at
            r.answers.append((at, max(0.0, before - c.at), at - c.at))

    def our_move(self, at: float, price: Decimal) -> None:
        """We updated our ad to `price` at `at`: each rival near our rank that it overtakes may
        answer it (a bot sitting at its floor cannot: a move that leaves us past it already
        is no new chance)."""
        side, was = self.side, self.own_price
        for r in self.rivals.values():
            if r.price is None or r.near_at != self.last_at or not side.better(price, r.price) \
                    or (was is not None and side.better(was, r.price)):
                r.pending = None  # only overtaking it (from behind or level) is a chance
                continue
            r.chances.append(at)
            r.pending = _Chance(at, price, r.price)
            self._built.pop(r.user_no, None)  # its chances changed (`pending` is not profiled)
        self.own_price = price

    def _cap(self) -> None:
        """Keep at most `max_rivals`: forget the ones seen least recently."""
        extra = len(self.rivals) - self.settings.max_rivals
        if extra > 0:
            for r in sorted(self.rivals.values(),
                            key=lambda r: (r.last_seen, _count(r, NEAR)))[:extra]:
                del self.rivals[r.user_no]

    # --- reading ---------------------------------------------------------------------

    def profile(self, user_no: str) -> RivalProfile | None:
        """The profile of one rival, None if never seen (or forgotten)."""
        r = self.rivals.get(user_no)
        return None if r is None else self.built(r)

    def profiles(self) -> dict[str, RivalProfile]:
        """Every rival tracked, by user id."""
        return {u: self.built(r) for u, r in self.rivals.items()}

    def top(self, n: int = 5) -> list[RivalProfile]:
        """The `n` rivals that matter: most snapshots near our rank in the window, then the
        nearest to the top."""
        ranked = sorted(self.rivals.values(), key=lambda r: (-_count(r, NEAR), -_count(r, TOPS),
                                                             -r.last_seen, r.user_no))
        return [self.built(r) for r in ranked[:n]]

    def built(self, r: _Rival) -> RivalProfile:
        """`r`'s profile, built once until the book is fed again (a snapshot, or a move of ours
        that gives `r` a chance to answer)."""
        got = self._built.get(r.user_no)
        if got is None:
            got = self._built[r.user_no] = self._profile(r)
        return got

    def _profile(self, r: _Rival) -> RivalProfile:
        s = self.settings
        totals = r.totals
        seen, near, top, tiny = totals[SEEN], totals[NEAR], totals[TOPS], totals[TINY]
        span = min(r.last_seen - r.first_seen, s.window)
        gap, step = _derived(r, "changes", r.changes, _of_changes)
        fast, answer_seconds = _derived(r, "answers", r.answers, self._of_answers)
        share = Decimal(len(r.answers)) / len(r.chances) if r.chances else Decimal(0)
        decoy = tiny * 2 >= seen > 0
        signs = sorted(r.signs) if decoy else []
        if seen >= s.min_snapshots and top == seen:
            signs.append("only at the top")
        busy = len(r.changes) >= s.busy_reprices and gap is not None and gap <= s.busy_seconds
        kind = _kind(seen, s, decoy, busy or (fast >= s.min_answers and share >= s.answer_share))
        return RivalProfile(
            user_no=r.user_no, nickname=r.nickname, kind=kind, price=r.price,
            floor=self._floor(r), at_floor=r.past_since is not None and r.past_since < r.last_seen,
            snapshots=seen, near=near, top=top,
            reprices=len(r.changes),
            reprices_per_hour=(Decimal(len(r.changes) * 3600) / Decimal(f"{span:.3f}")).quantize(
                Decimal("0.1")) if span > 0 else Decimal(0),
            reprice_seconds=gap, median_step=step,
            chances=len(r.chances), answers=len(r.answers),
            answer_seconds=answer_seconds,
            decoy_signs=tuple(signs), completion_rate=r.completion_rate,
            month_orders=r.month_orders, first_seen=r.first_seen, last_seen=r.last_seen,
        )

    def _of_answers(self, answers: deque[tuple[float, float, float]]) -> tuple[int, float | None]:
        """(how many answers were fast, the median time to answer)."""
        fast = self.settings.bot_seconds
        return sum(1 for a in answers if a[1] <= fast), _median_float([a[2] for a in answers])

    def _floor(self, r: _Rival) -> Decimal | None:
        """The most attractive price shown in the window: lowest for SELL, highest for BUY (the
        first such in the window, then the price now: `min`/`max` of the prices in that order)."""
        best = min if self.side is Side.SELL else max
        shown: Decimal | None = _derived(
            r, "prices", r.prices, lambda prices: (best(p for _, p in prices) if prices else None,))[0]
        both = [p for p in (shown, r.price) if p is not None]
        return best(both) if both else None


def _derived(r: _Rival, name: str, events: deque[Any],
             derive: Callable[[deque[Any]], tuple[Any, ...]]) -> tuple[Any, ...]:
    """`derive(events)`, made again only when `events` changed since: an event is appended (a
    new last entry), or the window or the cap drops the oldest (a new first entry, or a new
    length). A profile is built for every snapshot that a decision reads it on; its rival's
    events change far less often."""
    first, last = (events[0], events[-1]) if events else (None, None)
    got = r.derived.get(name)
    if got is None or got[0] != len(events) or got[1] is not first or got[2] is not last:
        got = r.derived[name] = (len(events), first, last, *derive(events))
    return got[3:]


def _of_changes(changes: deque[tuple[float, Decimal, Decimal]]) -> tuple[float | None, Decimal | None]:
    """(the median time between price changes, the median step)."""
    gaps = [b[0] - a[0] for a, b in zip(changes, list(changes)[1:], strict=False)]
    return _median_float(gaps), _median([abs(new - old) for _, old, new in changes])


def _kind(seen: int, s: RivalSettings, decoy: bool, bot: bool) -> RivalKind:
    if seen < s.min_snapshots and not bot:
        return "unknown"
    if decoy:
        return "decoy"
    return "bot" if bot else "human"


def _best_per_user(rows: Sequence[CompetitorAd]) -> dict[str, tuple[int, CompetitorAd]]:
    """Each user's best-placed row (one user may show several ads), with its position."""
    out: dict[str, tuple[int, CompetitorAd]] = {}
    for position, row in enumerate(rows, 1):
        if row.user_no and row.user_no not in out:
            out[row.user_no] = (position, row)
    return out


def _amount_signs(row: CompetitorAd, minimum: Decimal | None) -> frozenset[str]:
    """Decoy signs of one row against the market's typical minimum order (fiat)."""
    if minimum is None:
        return _NO_SIGNS
    tiny_max = 0 < row.max_amount < minimum
    tiny_available = row.available * row.price < minimum
    if not (tiny_max or tiny_available):
        return _NO_SIGNS
    return _SIGNS[(tiny_max, tiny_available)]


_NO_SIGNS: frozenset[str] = frozenset()
_SIGNS = {(True, False): frozenset({"tiny max limit"}),
          (False, True): frozenset({"tiny available amount"}),
          (True, True): frozenset({"tiny max limit", "tiny available amount"})}


def _new(user_no: str, at: float, cap: int) -> _Rival:
    """A rival first seen at `at`, keeping at most `cap` events of each kind."""
    return _Rival(user_no, first_seen=at, changes=deque(maxlen=cap), prices=deque(maxlen=cap),
                  chances=deque(maxlen=cap), answers=deque(maxlen=cap))


def _trim(r: _Rival, since: float) -> None:
    """Forget what is older than the window (the deques keep at most `max_events` each)."""
    while r.minutes and r.minutes[0][0] < since // 60:
        gone = r.minutes.popleft()
        for i in (SEEN, NEAR, TOPS, TINY):
            r.totals[i] -= gone[i]
        if not r.totals[TINY]:
            r.signs.clear()
    while r.chances and r.chances[0] < since:
        r.chances.popleft()
    for timed in (r.changes, r.prices, r.answers):
        while timed and timed[0][0] < since:
            timed.popleft()


def _count(r: _Rival, what: int) -> int:
    """Snapshots of one kind in the window (SEEN, NEAR, TOPS or TINY)."""
    return r.totals[what]


def _median(values: Iterable[Decimal]) -> Decimal | None:
    """`Decimal(statistics.median(values))`, None for none: the same middle (or mean of the two
    middle values) without sorting them a second time inside `statistics.median`."""
    got = sorted(values)
    n = len(got)
    if not n:
        return None
    return Decimal(got[n // 2] if n % 2 else (got[n // 2 - 1] + got[n // 2]) / 2)


def _median_float(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


class RivalBooks:
    """One `RivalBook` per (asset, fiat, our ad's side): what the pricing engine keeps."""

    def __init__(self, settings: RivalSettings | None = None) -> None:
        self.settings = settings or RivalSettings()
        self.books: dict[tuple[str, str, str], RivalBook] = {}

    def book(self, key: tuple[str, str, str]) -> RivalBook:
        """The book of a market, created on first use (key: asset, fiat, our ad's side)."""
        got = self.books.get(key)
        if got is None:
            got = self.books[key] = RivalBook(Side(key[2]), self.settings)
        return got


class Profiles(Mapping[str, RivalProfile]):
    """A book's profiles by user id, each built when a strategy first reads it: a decision
    pays only for the rivals it looks at (`PricingContext.rivals`)."""

    def __init__(self, book: RivalBook) -> None:
        self._book = book
        self._built: dict[str, RivalProfile] = {}

    def __getitem__(self, user_no: str) -> RivalProfile:
        got = self._built.get(user_no)
        if got is None:
            r = self._book.rivals[user_no]  # KeyError for a rival never seen, as a Mapping does
            got = self._built[user_no] = self._book.built(r)
        return got

    def get(self, user_no: str, default: Any = None) -> Any:
        """`Mapping.get` without raising and catching a KeyError for a rival never seen (most
        competitors a strategy asks about, on a young book)."""
        got = self._built.get(user_no)
        if got is None:
            r = self._book.rivals.get(user_no)
            if r is None:
                return default
            got = self._built[user_no] = self._book.built(r)
        return got

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._book.rivals))

    def __len__(self) -> int:
        return len(self._book.rivals)
