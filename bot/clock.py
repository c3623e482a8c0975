"""Time, injected: the Clock protocol, the real clock, waits an event can cut short, backoff.

Everything in the bot that waits or reads the time takes a Clock, so tests and the
simulator's virtual clock can move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Iterator
from datetime import datetime
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Wall time, monotonic time and sleeping, injected so tests can move time."""

    def time(self) -> float:
        """Epoch seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds`."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        """Epoch seconds."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(seconds)


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` for at most `seconds` of the clock's time; TimeoutError after that."""
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            work.cancel()
    if work.done() and not work.cancelled():
        return work.result()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    raise TimeoutError(f"no answer within {seconds:g} s")


async def nap(clock: Clock, seconds: float, *wake: asyncio.Event) -> bool:
    """Sleep `seconds` of the clock's time unless one of `wake` is set first; True if woken."""
    if any(e.is_set() for e in wake):
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in wake]
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({timer, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (timer, *waiters):
            task.cancel()
    return any(e.is_set() for e in wake)


def backoff(
    first: float = 60.0,
    factor: float = 2.0,
    cap: float = 1800.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Delays first, first*factor, ... capped at `cap`, each moved by up to ±jitter of itself."""
    rng = rng or random.Random()
    delay = first
    while True:
        spread = delay * jitter
        yield max(0.0, min(cap * (1 + jitter), delay + rng.uniform(-spread, spread)))
        delay = min(cap, delay * factor)


def describe_until(until: float, now: float) -> str:
    """An end time as a person reads it: local time, and how long from now."""
    local = local_time(until)
    return local if local == FAR_FUTURE else f"{local} (in {describe_duration(until - now)})"


FAR_FUTURE = "the far future"


def local_time(at: float) -> str:
    """Epoch seconds as the merchant's local time, `2026-11-25 17:32:05 local time`."""
    try:
        return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S") + " local time"
    except (OverflowError, OSError, ValueError):  # a stored end no clock can show
        return FAR_FUTURE


def describe_duration(seconds: float) -> str:
    """`2 h`, `1 min 30 s`, `3 days 1 h`: the two largest units, at least one second."""
    left = max(1, round(seconds))
    parts = []
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {'day' if unit == 'days' and count == 1 else unit}")
    return " ".join(parts[:2])
