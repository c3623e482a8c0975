"""Competitor profiles end to end: the real Bot on the simulator's stepped clock, on the calm
market with the simulator's fast rival and mirror bots added, reads what each ad is."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bot.ops.status_api import build
from simulator.app import run_simulator
from simulator.scenario import load_scenario
from tests.e2e.support import SELL_AD, stepped_bot, write_config


@pytest.mark.slow
async def test_the_simulators_rival_bots_are_profiled_as_bots(tmp_path: Path) -> None:
    spec = load_scenario("calm")
    world = copy.deepcopy(spec.world)
    market = next(m for m in world["markets"] if m.get("asset", "USDT") == "USDT")
    market["rival_bots"], market["mirror_bots"] = 1, 1
    # the bots' floors close to a reference that moves: they keep crossing our price, so the
    # war goes on (far above it, a bot sits at its floor and has nothing to answer)
    market["bot_floor"], market["volatility"] = ["0", "0.0005"], "0.002"
    scenario = spec.model_copy(update={"world": world})
    # racing by one step, as a peer would, every ad but decoys counting: every bot gets the
    # chance to answer again and again
    body = SELL_AD.format(floor="91.00", ceiling="96.00").replace(
        'step = "0.01"', 'step = "0.01"\nbot_cushion = "0"').replace(
        "[ads.filters]", '[ads.filters]\noverlap_amount = false\npay_methods = "any"')
    config = write_config(tmp_path, body)
    async with run_simulator(scenario, seed=3, stepped=True) as sim:
        async with stepped_bot(sim, config, tmp_path / "b.db", seed=3) as run:
            await run.run_for(1800)
            bot = run.bot
            doc = await build(bot)
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
    assert regulars and not any(kinds[u] == "bot" for u in regulars), (
        [profiles[u] for u in regulars if kinds[u] == "bot"])
    assert sum(kinds[u] == "human" for u in regulars) >= len(regulars) // 2
    # the status page's table: the rivals that matter, the fast bots among them
    shown = doc["ads"][0]["rivals"]
    assert len(shown) == 5 and set(fast) <= {r["user_no"] for r in shown}
    assert all(r["kind"] == "bot" for r in shown if r["user_no"] in fast)
    assert all(isinstance(r["price"], str) for r in shown)  # exact decimals as text
