"""The simulator's virtual clock: runs at `speed` times real time, and tests can move it.

A frozen clock (speed 0) can also be *driven* (DrivenClock): everything that waits (the
bot's sleeps, the gateway's latency and held requests) waits on simulated time, and the
driver moves the clock to the next wake-up whenever nothing is in flight. A simulated
day then runs as fast as the CPU allows, and no real-time latency reorders events.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable


class VirtualClock:
    """Simulated epoch time. `speed=0` freezes it so only `advance()` moves it (tests)."""

    def __init__(self, start_ms: int | None = None, speed: float = 1.0) -> None:
        self._start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._real0 = time.monotonic()
        self._speed = speed
        self._offset_ms = 0
        self.driven = False  # see DrivenClock
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per real second."""
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Change the speed without a jump in simulated time."""
        now = self.now_ms()
        self._start_ms, self._real0, self._offset_ms, self._speed = now, time.monotonic(), 0, speed

    def now_ms(self) -> int:
        """Simulated epoch milliseconds."""
        real_elapsed = time.monotonic() - self._real0
        return self._start_ms + int(real_elapsed * 1000 * self._speed) + self._offset_ms

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self.now_ms() / 1000

    def advance(self, seconds: float) -> int:
        """Move simulated time forward; returns the new time in ms."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset_ms += int(seconds * 1000)
        now = self.now_ms()
        while self._sleepers and self._sleepers[0][0] <= now:
            *_, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
        return now

    async def wait(self, seconds: float) -> None:
        """Wait `seconds` of simulated time when driven; else real seconds (what the gateway's
        latency and held requests always took)."""
        if not self.driven:
            await asyncio.sleep(seconds)
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now_ms() + max(1, math.ceil(seconds * 1000)),
                                        next(self._order), fut))
        await fut

    def next_wake_ms(self) -> int | None:
        """When the earliest waiter wakes (driven), or None."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None


class ScaledClock:
    """The bot's Clock on a running simulator: its time, and sleeps shortened by the speed.

    With it the whole bot lives in simulated time (intervals, backoff, rate-limit
    windows, timestamps), so a simulated hour takes 3600/speed real seconds.
    """

    def __init__(self, clock: VirtualClock) -> None:
        if clock.speed <= 0:
            raise ValueError("ScaledClock needs a running simulator clock (speed > 0)")
        self.clock = clock

    def time(self) -> float:
        """Simulated epoch seconds."""
        return self.clock.now()

    def monotonic(self) -> float:
        """Simulated seconds."""
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.clock.speed)


QUIET_ROUNDS = 5  # loop turns in a row with nothing in flight before time moves


class DrivenClock:
    """The bot's Clock on a frozen simulator clock that moves only when all is quiet.

    `sleep` waits on simulated time; `run` (a task) moves the clock to the earliest wake-up
    each time nothing is in flight (`busy()` false for QUIET_ROUNDS loop turns: requests
    on the wire that are not themselves waiting on the clock in the gateway). Events at
    one simulated instant all happen before time moves on, as they would with no latency.
    """

    def __init__(self, clock: VirtualClock, busy: Callable[[], bool] | None = None) -> None:
        if clock.speed != 0:
            raise ValueError("DrivenClock needs a frozen simulator clock (speed 0)")
        clock.driven = True
        self.clock = clock
        self.busy: Callable[[], bool] = busy or (lambda: False)
        self.steps = 0

    def time(self) -> float:
        """Simulated epoch seconds."""
        return self.clock.now()

    def monotonic(self) -> float:
        """Simulated seconds."""
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await self.clock.wait(seconds)

    async def run(self, until: float, idle_step: float = 1.0) -> None:
        """Move time from wake-up to wake-up until `until` (epoch seconds), then return."""
        end_ms = int(until * 1000)
        while (now := self.clock.now_ms()) < end_ms:
            await self.quiet()
            wake = self.clock.next_wake_ms()
            target = min(wake if wake is not None else now + int(idle_step * 1000), end_ms)
            if target > now:
                self.clock.advance((target - now) / 1000)
            else:
                self.clock.advance(0)  # wake those due now
            self.steps += 1

    async def quiet(self) -> None:
        """Return once nothing has been in flight for QUIET_ROUNDS loop turns."""
        calm = spins = 0
        while calm < QUIET_ROUNDS:
            await asyncio.sleep(0)
            if self.busy():
                calm, spins = 0, spins + 1
                if spins % 100 == 0:  # a thread or the kernel has work: give it real time
                    await asyncio.sleep(0.001)
            else:
                calm += 1
