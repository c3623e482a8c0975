"""The simulator's virtual clock: runs at `speed` times real time, and tests can move it.

A frozen clock (speed 0) can let things sleep on simulated time, in two ways that
share one mechanism (a heap of sleepers woken by `advance()` in the order of their
deadlines, ties in the order they went to sleep):
- *stepped* (`stepped=True`): the test moves the clock explicitly with `advance()`;
  `SteppedClock` gives the bot's Clock protocol on it, `next_wake_ms()` tells the test
  where the next sleeper is. The same steps wake the same sleepers in the same order
  on a slow or a fast machine.
- *driven* (`DrivenClock`): a driver task moves the clock to the next wake-up whenever
  nothing is in flight, so a simulated day runs as fast as the CPU allows and no
  real-time latency reorders events.
In both, the simulator's own waits (latency, held requests: `pause`) take simulated time.
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

    def __init__(self, start_ms: int | None = None, speed: float = 1.0, *,
                 stepped: bool = False) -> None:
        if stepped and speed != 0:
            raise ValueError("a stepped clock has speed 0: only advance() moves it")
        self._start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._real0 = time.monotonic()
        self._speed = speed
        self._offset_ms = 0
        self.stepped = stepped
        self.driven = False  # set by DrivenClock
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []  # (deadline, seq, fut)
        self._seq = itertools.count()

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per real second."""
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Change the speed without a jump in simulated time."""
        if self.stepped and speed != 0:
            raise ValueError("a stepped clock has speed 0: only advance() moves it")
        now = self.now_ms()
        self._start_ms, self._real0, self._offset_ms, self._speed = now, time.monotonic(), 0, speed

    def now_ms(self) -> int:
        """Simulated epoch milliseconds."""
        if not self._speed:  # frozen or stepped: only advance() moves it (read very often)
            return self._start_ms + self._offset_ms
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
        self._wake(now)
        return now

    # --- sleeping on a stepped or driven clock -----------------------------------------

    @property
    def virtual(self) -> bool:
        """Whether sleepers wait on simulated time (stepped or driven), not real time."""
        return self.stepped or self.driven

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time: until advance() gets there (stepped or driven
        clock), or for seconds/speed real seconds (running clock)."""
        if not self.virtual:
            if self._speed <= 0:
                raise ValueError("nothing moves a frozen, unstepped clock: sleeping would hang")
            await asyncio.sleep(max(0.0, seconds) / self._speed)
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        deadline = self.now_ms() + max(1, math.ceil(seconds * 1000))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut  # a cancelled sleeper is dropped from the heap when it comes up

    async def pause(self, seconds: float) -> None:
        """How the simulator itself waits (latency, held requests): on the clock when it is
        stepped or driven, else in real seconds, as before either existed."""
        if self.virtual:
            await self.sleep(seconds)
        else:
            await asyncio.sleep(max(0.0, seconds))

    def next_wake_ms(self) -> int | None:
        """The deadline of the earliest sleeper still waiting, if any."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    @property
    def sleeping(self) -> int:
        """How many sleepers wait (cancelled ones not yet dropped included)."""
        return len(self._sleepers)

    def _wake(self, now_ms: int) -> None:
        while self._sleepers and self._sleepers[0][0] <= now_ms:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)


class SimTime:
    """The bot's Clock reading the simulator's time (wall and monotonic alike); how a sleep
    passes is each subclass's: scaled real time, a stepped wait, or moving the clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def time(self) -> float:
        """Simulated epoch seconds."""
        return self.clock.now()

    def monotonic(self) -> float:
        """Simulated seconds (never go back)."""
        return self.clock.now()


class AdvancingClock(SimTime):
    """Sleeping moves the simulator's clock at once: for tests where nothing else waits."""

    async def sleep(self, seconds: float) -> None:
        """Advance the virtual clock instead of waiting."""
        self.clock.advance(max(0.0, seconds))


class ScaledClock(SimTime):
    """The bot's Clock on a running simulator: its time, and sleeps shortened by the speed.

    With it the whole bot lives in simulated time (intervals, backoff, rate-limit
    windows, timestamps), so a simulated hour takes 3600/speed real seconds.
    """

    def __init__(self, clock: VirtualClock) -> None:
        if clock.speed <= 0:
            raise ValueError("ScaledClock needs a running simulator clock (speed > 0)")
        super().__init__(clock)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.clock.speed)


class SteppedClock(SimTime):
    """The bot's Clock on a stepped simulator clock: its time, and sleeps that wake only
    when the test advances the simulator (see VirtualClock)."""

    def __init__(self, clock: VirtualClock) -> None:
        if not clock.virtual:
            raise ValueError("SteppedClock needs a stepped simulator clock "
                             "(run_simulator(..., stepped=True))")
        super().__init__(clock)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        await self.clock.sleep(seconds)


QUIET_ROUNDS = 5  # loop turns in a row with nothing in flight before time moves


class DrivenClock(SteppedClock):
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
        self.clock = clock  # time, monotonic and sleep: SteppedClock's, on the driven clock
        self.busy: Callable[[], bool] = busy or (lambda: False)
        self.steps = 0

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
