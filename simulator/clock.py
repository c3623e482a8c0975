"""The simulator's virtual clock: runs at `speed` times real time, and tests can move it."""

from __future__ import annotations

import asyncio
import time


class VirtualClock:
    """Simulated epoch time. `speed=0` freezes it so only `advance()` moves it (tests)."""

    def __init__(self, start_ms: int | None = None, speed: float = 1.0) -> None:
        self._start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._real0 = time.monotonic()
        self._speed = speed
        self._offset_ms = 0

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
        return self.now_ms()


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
