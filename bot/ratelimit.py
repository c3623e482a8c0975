"""The rate-limit governor: one weight budget per account, shared by every sender.

It counts the weight it lets through in a sliding minute and believes the
exchange's used-weight headers when they say more. The request scheduler
(bot.binance.scheduler) awaits `acquire(w)` for each request it lets go, in priority
order; when the budget is spent they wait for the window to free. The 429/418 pauses
live in that scheduler too.

The governor also learns: a 429 says the real limit is lower than what was used, so
the limit it keeps below becomes that used weight x BACKOFF, and grows back by
RECOVERY of the budget for every minute without a 429, never above the budget
(`[bot] weight_budget`). The growth is a share of the budget, not of the learned
limit: the 429s of a flaky exchange (not caused by weight) must not ratchet it down
for good.
"""

from __future__ import annotations

from collections import deque

from bot.clock import Clock, SystemClock

WINDOW = 60.0
BACKOFF = 0.8  # after a 429: keep below this share of the weight used when it came
RECOVERY = 0.05  # share of the budget the learned limit grows back each minute without a 429


class RateGovernor:
    """A sliding-minute weight budget."""

    def __init__(self, budget_per_minute: int = 6000, clock: Clock | None = None) -> None:
        if budget_per_minute <= 0:
            raise ValueError("the weight budget must be positive")
        self.budget = budget_per_minute
        self.clock: Clock = clock or SystemClock()
        self._spent: deque[tuple[float, int]] = deque()
        self._spent_sum = 0  # the weights in `_spent`, kept as they come and go (never re-summed)
        self._reported = 0  # the exchange's latest used-weight figure
        self._reported_at = 0.0
        self.waits = 0
        self._learned: float | None = None  # the limit set by the last 429
        self._learned_at = 0.0

    def limit(self) -> int:
        """The weight a minute it keeps below now: the budget, or less after a 429."""
        if self._learned is None:
            return self.budget
        minutes = (self.clock.monotonic() - self._learned_at) / WINDOW
        grown = self._learned + RECOVERY * self.budget * minutes
        if grown >= self.budget:
            self._learned = None
            return self.budget
        return max(1, int(grown))

    def rate_limited(self) -> int:
        """A 429 came: keep below BACKOFF of the weight used now (returns the new limit)."""
        learned = min(self.limit(), max(1.0, self.used() * BACKOFF))
        self._learned, self._learned_at = learned, self.clock.monotonic()
        return self.limit()

    def _expire(self, now: float) -> None:
        while self._spent and now - self._spent[0][0] >= WINDOW:
            self._spent_sum -= self._spent.popleft()[1]
        if now - self._reported_at >= WINDOW:
            self._reported = 0

    def used(self) -> int:
        """Weight used in the current minute (the larger of our count and the exchange's)."""
        now = self.clock.monotonic()
        self._expire(now)
        return max(self._spent_sum, self._reported)

    def utilisation(self) -> float:
        """Used share of the limit kept now (the budget, or the learned one), 0..1+
        (pollers stretch their intervals by it)."""
        return self.used() / self.limit()

    async def acquire(self, weight: int = 1) -> None:
        """Wait until `weight` fits in the budget, then count it."""
        while True:
            now = self.clock.monotonic()
            self._expire(now)
            limit = self.limit()
            if self.used() + weight <= limit or weight > limit:
                self._spent.append((now, weight))
                self._spent_sum += weight
                return
            self.waits += 1
            await self.clock.sleep(self._until_room(now))

    def _until_room(self, now: float) -> float:
        frees = [WINDOW - (now - self._spent[0][0])] if self._spent else []
        if self._reported:
            frees.append(WINDOW - (now - self._reported_at))
        return max(0.05, min(frees) if frees else 0.05)

    def report(self, used_weight: int) -> None:
        """Take the exchange's used-weight header into account."""
        self._reported = used_weight
        self._reported_at = self.clock.monotonic()
