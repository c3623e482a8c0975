"""Waiting on the injected clock: a timeout or a nap that an event can cut short."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from bot.binance.client import Clock

T = TypeVar("T")


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
