"""The real Bot on a driven simulator (simulator.clock.DrivenClock): simulated hours in seconds.

Time stands still while anything is in flight and jumps to the next wake-up when all is
quiet, so the simulator's latency faults and held requests take simulated time, not real
time, and a run is the same discrete sequence of events however fast the machine is.
Used by tests/test_bans.py (a few simulated hours) and bench/bans.py (a simulated day).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bot.app import Bot
from config.loader import load_config
from simulator.app import run_simulator
from simulator.clock import DrivenClock
from state.db import Store
from tests.e2e.helpers import sim_client

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "example.toml"


@dataclass(frozen=True, slots=True)
class Tally:
    """What a run did to the exchange's limits."""

    hours: float
    requests: int  # requests the bot put on the wire
    rate_limited: int  # 429s it received
    bans: int  # 418 bans the simulator imposed
    faults_429: int  # 429s the scenario's faults injected
    real_seconds: float


async def run_driven(db: Path, *, scenario: str = "stormy", hours: float = 3.0,
                     seed: int | None = None, config: Path = EXAMPLE) -> Tally:
    """Run the bot on `scenario` for `hours` of simulated time; count requests, 429s, bans."""
    began = time.perf_counter()
    async with run_simulator(scenario, speed=0, seed=seed) as sim:
        clock = DrivenClock(sim.clock)
        client = sim_client(sim, clock)
        clock.busy = lambda: client.in_flight > sim.gateway.waiting
        store = await Store.open(db)
        driver = asyncio.create_task(clock.run(clock.time() + hours * 3600))
        stop = asyncio.Event()
        try:
            bot = Bot(load_config(config), client, store, clock=clock)
            await bot.start()
            task = asyncio.create_task(bot.run(stop))
            await driver
            stop.set()
            await asyncio.wait_for(task, 30)
        finally:
            driver.cancel()
            stop.set()
            await client.close()
            await store.close()
        bans = sum(int(o["bans"]) for o in sim.gateway.limiter.snapshot(0)["bans"].values())
        faults = sum(f.hits for f in sim.gateway.faults.faults if f.spec.kind == "http429")
    return Tally(hours, client.requests_sent, client.rate_limited, bans, faults,
                 time.perf_counter() - began)
