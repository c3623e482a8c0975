"""The event bus: coalescing, bounded queues, isolated failures, settling at shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.events import EventBus


@dataclass(frozen=True)
class Tick:
    market: str
    n: int

    @property
    def coalesce_key(self) -> str:
        return self.market


@dataclass(frozen=True)
class Plain:
    n: int


async def test_latest_wins_per_key_and_plain_events_queue() -> None:
    bus, got = EventBus(), []

    async def handler(e: object) -> None:
        got.append(e)

    bus.subscribe((Tick, Plain), handler)
    for n in range(5):
        bus.publish(Tick("a", n))
        bus.publish(Plain(n))
    bus.publish(Tick("b", 9))
    await bus.drain()
    assert [e for e in got if isinstance(e, Tick)] == [Tick("a", 4), Tick("b", 9)]
    assert [e.n for e in got if isinstance(e, Plain)] == [0, 1, 2, 3, 4]


async def test_bounded_queue_drops_the_oldest() -> None:
    bus, got = EventBus(), []

    async def handler(e: Plain) -> None:
        got.append(e.n)

    sub = bus.subscribe(Plain, handler, maxsize=3)
    for n in range(10):
        bus.publish(Plain(n))
    await bus.drain()
    assert got == [7, 8, 9] and sub.dropped == 7


async def test_a_failing_handler_does_not_stop_the_others() -> None:
    bus, got = EventBus(), []

    async def bad(e: Plain) -> None:
        raise RuntimeError("boom")

    async def good(e: Plain) -> None:
        got.append(e.n)

    failing = bus.subscribe(Plain, bad)
    bus.subscribe(Plain, good)
    bus.publish(Plain(1))
    bus.publish(Plain(2))
    await bus.drain()
    assert got == [1, 2] and failing.failures == 2


async def test_settle_waits_for_a_handler_in_flight() -> None:
    bus, release, done = EventBus(), asyncio.Event(), []

    async def slow(e: Plain) -> None:
        await release.wait()
        done.append(e.n)

    bus.subscribe(Plain, slow)
    runner = asyncio.create_task(bus.run())
    bus.publish(Plain(1))
    await asyncio.sleep(0)  # let the subscriber pick it up
    assert not await bus.settle(0.01)  # still in flight
    release.set()
    assert await bus.settle(5)
    assert done == [1]
    runner.cancel()
