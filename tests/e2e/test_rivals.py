"""Competitor profiles end to end: the real Bot on the simulator's driven clock, on the calm
market with the simulator's fast rival and mirror bots added, reads what each ad is."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

from bot.app import Bot
from config.loader import load_config
from simulator.app import run_simulator
from simulator.clock import DrivenClock
from simulator.scenario import load_scenario
from state.db import Store
from tests.e2e.helpers import SELL_AD, sim_client, write_config


async def test_the_simulators_rival_bots_are_profiled_as_bots(tmp_path: Path) -> None:
    spec = load_scenario("calm")
    world = copy.deepcopy(spec.world)
    market = next(m for m in world["markets"] if m.get("asset", "USDT") == "USDT")
    market["rival_bots"], market["mirror_bots"] = 1, 1
    scenario = spec.model_copy(update={"world": world})
    config = write_config(tmp_path, SELL_AD.format(floor="91.00", ceiling="96.00"))
    async with run_simulator(scenario, speed=0, seed=3) as sim:
        clock = DrivenClock(sim.clock)
        client = sim_client(sim, clock)
        clock.busy = lambda: client.in_flight > sim.gateway.waiting
        store = await Store.open(tmp_path / "b.db")
        driver = asyncio.create_task(clock.run(clock.time() + 1800))
        stop = asyncio.Event()
        try:
            bot = Bot(load_config(config), client, store, clock=clock)
            await bot.start()
            task = asyncio.create_task(bot.run(stop))
            await asyncio.wait_for(driver, 120)
            stop.set()
            await asyncio.wait_for(task, 30)
        finally:
            driver.cancel()
            stop.set()
            await client.close()
            await store.close()
        listings = sim.world.markets[("USDT", "RUB")].books["SELL"]  # type: ignore[attr-defined]
        role = {ad.advertiser.user_no: ad.role for ad in listings}
    book = bot.engine.rivals.books[("USDT", "RUB", "SELL")]
    profiles = book.profiles()
    kinds = {u: p.kind for u, p in profiles.items()}
    fast = [u for u, r in role.items() if r in ("rival", "mirror")]
    assert fast and all(kinds.get(u) == "bot" for u in fast), (
        {u: (role[u], profiles[u]) for u in fast if u in profiles})
    decoys = [u for u, r in role.items() if r == "decoy" and u in profiles]
    assert decoys and all(kinds[u] == "decoy" for u in decoys)
    regulars = [u for u, r in role.items() if r == "regular" and u in profiles]
    assert regulars and not any(kinds[u] == "bot" for u in regulars)
    assert sum(kinds[u] == "human" for u in regulars) >= len(regulars) // 2
    # the status page's table: the rivals that matter, the fast bots among them
    shown = [p.user_no for p in book.top(5)]
    assert set(fast) <= set(shown)
