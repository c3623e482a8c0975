"""The rate governor: a sliding-minute budget that learns a lower limit from a 429."""

from __future__ import annotations

from collections import deque

import pytest

from bot.ratelimit import RateGovernor
from tests.support import FakeClock


async def test_a_429_makes_it_keep_below_what_was_used_then_it_recovers_slowly() -> None:
    clock = FakeClock()
    governor = RateGovernor(1000, clock=clock)
    for _ in range(100):
        await governor.acquire(1)
    assert governor.rate_limited() == 80  # 100 used when the 429 came, x 0.8
    limited_at = clock.mono
    assert governor.utilisation() == pytest.approx(100 / 80)
    before = clock.mono
    await governor.acquire(1)  # over the learned limit: waits for the window to free
    assert governor.waits == 1 and clock.mono > before
    clock.advance(60)  # each minute without a 429: +5% of the budget (50)
    assert governor.limit() == int(80 + 50 * (clock.mono - limited_at) / 60)
    clock.advance(60 * 30)
    assert governor.limit() == 1000  # never above the budget


def test_a_second_429_lowers_it_again_and_never_raises_it() -> None:
    clock = FakeClock()
    governor = RateGovernor(1000, clock=clock)
    governor.report(500)
    assert governor.rate_limited() == 400
    governor.report(100)
    assert governor.rate_limited() == 80
    governor.report(900)  # a 429 while using more than the learned limit keeps the lower one
    assert governor.rate_limited() == 80


class _CountingDeque(deque[tuple[float, int]]):
    """A window that counts how often it is walked whole."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        type(self).walks += 1
        return super().__iter__()


async def test_the_used_weight_is_a_running_sum_not_a_walk_of_the_window() -> None:
    clock = FakeClock()
    governor = RateGovernor(100_000, clock=clock)
    governor._spent = _CountingDeque()
    for n in range(1, 3001):
        await governor.acquire(2)
        clock.advance(0.05)  # 3,000 requests over 150 s: the window slides, old weight leaves
        if n % 500 == 0:
            in_window = sum(1 for k in range(n) if clock.mono - (1000.0 + k * 0.05) < 60)
            assert governor.used() == 2 * in_window
    assert _CountingDeque.walks == 0  # neither acquire() nor used() walks the window
