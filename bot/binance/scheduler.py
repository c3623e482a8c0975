"""The request scheduler: the one place that decides when a request goes on the wire.

Every request of an API key passes here just before it is sent (the signed client asks,
for ordinary calls, probes, retries and the clock sync alike), so one object owns:

- **priorities**: ad writes (0), then chat (1), then orders (2), then market, reference and
  every other read (3); a probe queues with its endpoint's class;
- **a concurrency limit per key**: at most `limit` requests on the wire (`[bot]
  max_in_flight`, default 3: what desks found works; bursts are what turn latency into 429s);
- **deadlines**: a queued read that would go out after its deadline is dropped
  (`NotSent`, counted as expired), not sent late: the market and reference pollers give their
  reads the interval they run at (`within`), since the next tick asks again anyway (and a
  pause does not end in a burst of stale reads). Writes and chat never expire: they wait
  their turn at the head of the queue; a request without a deadline waits as long as it takes;
- **load shedding**: with `max_queued` requests waiting, a newcomer makes room by dropping
  the queued request of the lowest priority (the oldest of that class), possibly itself;
  writes are never shed (each ad has at most one write queued: the registry's per-ad lock);
- **429/418 pacing**: a 429 pauses every sender for its `Retry-After` (2.5 s without one),
  a 418 stops all traffic until the ban ends (nothing is sent: `IpBanned` without a status);
  when either ends, exactly one request goes first and the others follow only once it came
  back without a 429, spread at random over RELEASE_SPREAD seconds;
- **the weight budget**: a granted request waits for room in the budget (the governor,
  `bot.ratelimit`), in priority order since it holds its slot meanwhile.

Pure asyncio on the injected clock: no wall-clock timers (deadlines are checked when a
request would be granted, and when the queue is full), so the stepped simulator clock
drives it in tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from bot.binance.endpoints import Endpoint
from bot.binance.errors import BinanceError, IpBanned, NotSent, RateLimited
from bot.clock import describe_until

if TYPE_CHECKING:
    from bot.clock import Clock

CLASSES = ("write", "chat", "orders", "read")  # priority 0..3, the label in /metrics
DEFAULT_MAX_IN_FLIGHT = 3  # requests on the wire at once per key (desks: about 3)
MAX_IN_FLIGHT = 10
DEFAULT_MAX_QUEUED = 200
RELEASE_SPREAD = 1.0  # seconds over which the senders held by a pause are let go
DEFAULT_RATE_LIMIT_SECONDS = 2.5  # a 429 without Retry-After (what desks found works)
DEFAULT_BAN_SECONDS = 120.0
# what the exchange asks is honoured up to a bound: a `Retry-After: 1e9` must not freeze the
# daemon for good, nor store a ban until 2058. Binance bans for 2 minutes up to 3 days.
MAX_PAUSE_SECONDS = 300.0
MAX_BAN_SECONDS = 3 * 86400.0
_BANNED_UNTIL = re.compile(r"until\s+(\d{13})")
_DEADLINE: ContextVar[float | None] = ContextVar("p2pbot_request_deadline", default=None)


class WeightBudget(Protocol):
    """The weight budget a granted request waits for (bot.ratelimit.RateGovernor)."""

    async def acquire(self, weight: int = 1) -> None:
        """Wait until `weight` fits, then count it."""
        ...


def priority(ep: Endpoint) -> int:
    """Who goes first when requests queue for a slot: ad writes (0), chat (1), orders (2),
    then market, reference and every other read (3). The clock sync goes with the writes:
    every signed request, a write too, may be waiting for it."""
    if ep.write or not ep.signed:
        return 0
    if "/chat/" in ep.path:
        return 1
    if "/orderMatch/" in ep.path:
        return 2
    return 3


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Requests started inside may wait at most `seconds` in the queue (reads and orders only:
    a write or a chat request is never dropped). The market poller gives its interval."""
    token = _DEADLINE.set(seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@dataclass(order=True)
class _Waiter:
    rank: int
    seq: int
    until: float | None = field(compare=False)  # monotonic; None: never dropped for age
    fut: asyncio.Future[None] = field(compare=False)


@dataclass
class Counts:
    """What the scheduler did, by class (the /metrics counters)."""

    shed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    expired: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    granted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))


class RequestScheduler:
    """Slots by priority, deadlines, shedding, 429/418 pacing and the weight budget of one key."""

    def __init__(self, clock: Clock, *, limit: int = DEFAULT_MAX_IN_FLIGHT,
                 max_queued: int = DEFAULT_MAX_QUEUED, rng: random.Random | None = None,
                 budget: WeightBudget | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.budget = budget
        self.max_queued = max_queued
        self._limit = DEFAULT_MAX_IN_FLIGHT
        self.limit = limit
        self.in_use = 0  # slots taken: on the wire, or granted and waiting for the weight budget
        self.on_wire = 0  # requests sent and not back yet
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        self.counts = Counts()
        self.paused_until = 0.0  # wall time; every sender waits for it (429)
        self.banned_until = 0.0  # wall time; nothing is sent before it (418)
        self.rate_limited = 0  # 429s received
        # after a pause or a ban: one request (the trial) goes first; the others wait for it
        self._recovering = False
        self._trial: asyncio.Future[bool] | None = None

    # --- the limit and the queue ------------------------------------------------------------

    @property
    def limit(self) -> int:
        """Requests on the wire at once (1 to MAX_IN_FLIGHT)."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        if not 1 <= value <= MAX_IN_FLIGHT:
            raise ValueError(f"max_in_flight must be between 1 and {MAX_IN_FLIGHT}")
        self._limit = value
        if hasattr(self, "_waiters"):  # a new limit (a reload): extra room goes to waiters
            self._wake()

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return sum(1 for w in self._waiters if not w.fut.done())

    def queued(self) -> dict[str, int]:
        """Requests queued now, by class."""
        out = dict.fromkeys(CLASSES, 0)
        for w in self._waiters:
            if not w.fut.done():
                out[CLASSES[w.rank]] += 1
        return out

    async def _acquire(self, rank: int, until: float | None) -> None:
        """Take a slot, behind higher-priority and earlier waiters; NotSent when shed or expired."""
        if self.in_use < self._limit and not self.waiting:
            self.in_use += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, _Waiter(rank, next(self._order), until, fut))
        self._shed()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # granted as it was cancelled: hand it on
                self._release()
            raise

    def _release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        now = self.clock.monotonic()
        while self._waiters and self.in_use < self._limit:
            w = heapq.heappop(self._waiters)
            if w.fut.done():
                continue
            if w.until is not None and now > w.until:
                self._drop(w, "expired")
                continue
            self.in_use += 1
            self.counts.granted[CLASSES[w.rank]] += 1
            w.fut.set_result(None)

    def _shed(self) -> None:
        """Over `max_queued`: drop the expired first, then the lowest class's oldest (never a write)."""
        live = [w for w in self._waiters if not w.fut.done()]
        if len(live) <= self.max_queued:
            return
        now = self.clock.monotonic()
        for w in live:
            if w.until is not None and now > w.until:
                self._drop(w, "expired")
        live = [w for w in live if not w.fut.done()]
        sheddable = sorted((w for w in live if w.rank > 0), key=lambda w: (-w.rank, w.seq))
        for w in sheddable[:max(0, len(live) - self.max_queued)]:
            self._drop(w, "shed")

    def _drop(self, w: _Waiter, why: str) -> None:
        name = CLASSES[w.rank]
        getattr(self.counts, why)[name] += 1
        said = ("the queue was full (lowest priority first)" if why == "shed"
                else "it waited past its deadline")
        w.fut.set_exception(NotSent(f"not sent: {said}", reason=why))

    # --- one request -------------------------------------------------------------------

    async def enter(self, ep: Endpoint) -> bool:
        """Wait for clearance, a slot and the weight; True when this request is the first
        after a pause or a ban (`leave` must be called with its outcome either way)."""
        rank = priority(ep)
        asked = _DEADLINE.get()  # writes and chat are never dropped for age
        until = None if asked is None or rank < 2 else self.clock.monotonic() + asked
        while True:
            await self._wait_for_clearance(ep)
            self._check_expired(rank, until)
            await self._acquire(rank, until)
            now = self.clock.time()
            try:
                self._check_ban(ep, now)
            except IpBanned:
                self._release()
                raise
            if self.paused_until <= now and self._trial is None:  # nothing changed meanwhile
                break
            self._release()
        trial = self._recovering
        if trial:
            self._trial = asyncio.get_running_loop().create_future()
        if self.budget is not None:
            try:
                await self.budget.acquire(ep.weight)
            except BaseException:
                self.on_wire += 1  # leave() counts it back
                self.leave(trial, None)
                raise
        self.on_wire += 1
        return trial

    def leave(self, trial: bool, status: int | None) -> None:
        """The request is back (`status` None: no answer at all); its slot goes to the next."""
        self.on_wire -= 1
        self._release()
        if trial:
            self._end_trial(status)

    def _check_expired(self, rank: int, until: float | None) -> None:
        if until is not None and self.clock.monotonic() > until:
            self.counts.expired[CLASSES[rank]] += 1
            raise NotSent("not sent: it waited past its deadline", reason="expired")

    async def _wait_for_clearance(self, ep: Endpoint) -> None:
        # a loop: while this sender sleeps, another may meet a longer 429 or a 418
        while True:
            now = self.clock.time()
            self._check_ban(ep, now)
            if self.paused_until > now:
                await self.clock.sleep(self.paused_until - now)
                continue
            trial = self._trial
            if trial is None:
                return
            if await asyncio.shield(trial):  # the first request after a pause came back fine
                await self.clock.sleep(self.rng.uniform(0.0, RELEASE_SPREAD))

    def _check_ban(self, ep: Endpoint, now: float) -> None:
        if self.banned_until > now:
            raise IpBanned(
                f"not sent: the IP ban lasts until {describe_until(self.banned_until, now)}",
                endpoint=ep.name,
                retry_after=self.banned_until - now,
            )

    def _end_trial(self, status: int | None) -> None:
        """The first request after a pause is back: an answer other than 429/418 lets the
        others go; a 429 or 418 keeps them (the new pause or the ban holds them); no answer
        at all (a timeout, a dropped connection) proves nothing: the next sender tries."""
        trial, self._trial = self._trial, None
        cleared = status is not None and status not in (418, 429)
        if cleared:
            self._recovering = False
        if trial is not None and not trial.done():
            trial.set_result(cleared)

    # --- what the exchange said about the limits ---------------------------------------------

    def note(self, exc: BinanceError) -> None:
        """A 429 pauses every sender; a 418 stops all traffic until the ban ends."""
        now = self.clock.time()
        if isinstance(exc, IpBanned):
            end = capped(self._ban_end(exc, now) - now, MAX_BAN_SECONDS, "418 ban", exc.endpoint)
            self.banned_until = max(self.banned_until, now + end)
            self._recovering = True  # when it ends, one request goes first

            logger.error("IP banned by the exchange until {}; all traffic stopped",
                         describe_until(self.banned_until, now))
        elif isinstance(exc, RateLimited):
            self.rate_limited += 1
            wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_SECONDS
            wait = capped(wait, MAX_PAUSE_SECONDS, "429 pause", exc.endpoint)
            self.paused_until = max(self.paused_until, now + wait)
            self._recovering = True  # when it ends, one request goes first
            logger.warning("{}: rate limited (429); every request waits {:.1f} s", exc.endpoint,
                           self.paused_until - now)

    @staticmethod
    def _ban_end(exc: BinanceError, now: float) -> float:
        """Retry-After, else the "banned until <ms>" the body names, else two minutes."""
        if exc.retry_after:
            return now + exc.retry_after
        match = _BANNED_UNTIL.search(exc.msg or "")
        if match:
            return int(match.group(1)) / 1000
        return now + DEFAULT_BAN_SECONDS

    def restore_ban(self, until: float) -> None:
        """Honour a ban persisted by an earlier run (at most MAX_BAN_SECONDS from now)."""
        left = capped(until - self.clock.time(), MAX_BAN_SECONDS, "stored 418 ban", None)
        self.banned_until = max(self.banned_until, self.clock.time() + left)

    def snapshot(self) -> dict[str, object]:
        """A JSON-ready picture: in flight, queued, shed and expired by class."""
        return {"limit": self._limit, "in_flight": self.in_use, "queued": self.queued(),
                "max_queued": self.max_queued, "shed": dict(self.counts.shed),
                "expired": dict(self.counts.expired)}


def capped(seconds: float, cap: float, what: str, endpoint: str | None) -> float:
    """`seconds` bounded to [0, cap]; a cut is logged, since the exchange asked for more."""
    if seconds != seconds or seconds > cap:  # NaN too
        where = f"{endpoint}: " if endpoint else ""
        logger.warning("{}the exchange asked for a {} of {:.0f} s; capped at {:.0f} s", where, what,
                       seconds, cap)
        return cap
    return max(0.0, seconds)
