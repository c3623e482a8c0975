"""The rate-limit governor: one weight budget per account, shared by every sender.

It counts the weight it lets through in a sliding minute and believes the
exchange's used-weight headers when they say more. Senders `await acquire(w)`
before each request; when the budget is spent they wait for the window to free.
429/418 pauses live in the SignedClient, which every sender shares.
"""

from __future__ import annotations

from collections import deque

from bot.binance.client import Clock, SystemClock

WINDOW = 60.0


class RateGovernor:
    """A sliding-minute weight budget."""

    def __init__(self, budget_per_minute: int = 6000, clock: Clock | None = None) -> None:
        if budget_per_minute <= 0:
            raise ValueError("the weight budget must be positive")
        self.budget = budget_per_minute
        self.clock: Clock = clock or SystemClock()
        self._spent: deque[tuple[float, int]] = deque()
        self._reported = 0  # the exchange's latest used-weight figure
        self._reported_at = 0.0
        self.waits = 0

    def _expire(self, now: float) -> None:
        while self._spent and now - self._spent[0][0] >= WINDOW:
            self._spent.popleft()
        if now - self._reported_at >= WINDOW:
            self._reported = 0

    def used(self) -> int:
        """Weight used in the current minute (the larger of our count and the exchange's)."""
        now = self.clock.monotonic()
        self._expire(now)
        return max(sum(w for _, w in self._spent), self._reported)

    def utilisation(self) -> float:
        """Used share of the budget, 0..1+ (pollers stretch their intervals by it)."""
        return self.used() / self.budget

    async def acquire(self, weight: int = 1) -> None:
        """Wait until `weight` fits in the budget, then count it."""
        while True:
            now = self.clock.monotonic()
            self._expire(now)
            if self.used() + weight <= self.budget or weight > self.budget:
                self._spent.append((now, weight))
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
