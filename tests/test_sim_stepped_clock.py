"""The stepped simulator clock: sleepers wake in deadline order as the test advances it."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from simulator.app import run_simulator
from simulator.clock import SteppedClock, VirtualClock
from simulator.scenario import generate_credential
from tests.e2e.support import until
from tests.support import SIM_START_MS


async def test_sleepers_wake_in_deadline_order_and_only_when_the_clock_gets_there() -> None:
    clock = VirtualClock(start_ms=SIM_START_MS, speed=0, stepped=True)
    woke: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{clock.now_ms() - SIM_START_MS}")

    tasks = [asyncio.create_task(nap(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 1), ("d", 9))]
    await asyncio.sleep(0)
    assert clock.next_wake_ms() == SIM_START_MS + 1000
    clock.advance(0.999)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(5)  # one move past several deadlines: woken in deadline order, ties as slept
    await asyncio.sleep(0)
    assert woke == ["a@5999", "b@5999", "c@5999"]
    assert clock.next_wake_ms() == SIM_START_MS + 9000
    tasks[3].cancel()
    await asyncio.sleep(0)
    assert clock.next_wake_ms() is None  # a cancelled sleeper is dropped
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_bot_clock_needs_a_stepped_clock_and_a_frozen_clock_cannot_be_slept_on() -> None:
    with pytest.raises(ValueError, match="stepped"):
        SteppedClock(VirtualClock(speed=0))
    with pytest.raises(ValueError, match="speed 0"):
        VirtualClock(speed=10, stepped=True)
    with pytest.raises(ValueError, match="hang"):
        await VirtualClock(speed=0).sleep(1)
    bot_clock = SteppedClock(VirtualClock(start_ms=SIM_START_MS, speed=0, stepped=True))
    assert bot_clock.time() == bot_clock.monotonic() == SIM_START_MS / 1000


async def test_latency_on_a_stepped_simulator_is_simulated_time() -> None:
    async with run_simulator("calm", stepped=True, start_ms=SIM_START_MS,
                             api_key=generate_credential(),
                             api_secret=generate_credential()) as sim, aiohttp.ClientSession() as http:
        sim.add_fault("latency", latency_ms=60_000)  # a minute: only the test's advance ends it
        reply = asyncio.create_task(http.get(f"{sim.base_url}/api/v3/time"))
        await until(lambda: sim.clock.next_wake_ms() is not None, 5, "the request to sleep")
        assert sim.clock.next_wake_ms() == SIM_START_MS + 60_000 and not reply.done()
        sim.advance(60)
        async with await asyncio.wait_for(reply, 5) as resp:
            assert resp.status == 200
            assert (await resp.json())["serverTime"] == SIM_START_MS + 60_000
