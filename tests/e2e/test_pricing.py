"""The pricing loop end to end: the real bot against the simulator, in simulated time."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from simulator.app import run_simulator
from tests.e2e.helpers import BUY_AD, SELL_AD, after, running_bot, when, write_config

FAST = 400.0  # simulated seconds per real second


async def test_undercut_wins_rank_in_a_price_war_and_keeps_its_bounds(tmp_path) -> None:
    floor, ceiling = D("91.00"), D("96.00")
    config = write_config(tmp_path, SELL_AD.format(floor=floor, ceiling=ceiling))
    async with run_simulator("price_war", speed=FAST, seed=7) as sim:
        async with running_bot(sim, config, tmp_path / "b.db") as bot:
            hour = after(bot, 3600)
            await asyncio.wait_for(hour.wait(), timeout=60)
            assert bot.ads[0].own is not None
            updates = [r for r in sim.requests("update_ad") if r["status"] == 200]
            ranks = await _ranks(bot)
        prices = [D(r["body"]["price"]) for r in updates]
        assert len(prices) > 20
        assert all(floor <= p <= ceiling for p in prices)
        assert 1 in ranks[:30], ranks  # rank 1 reached within the first few minutes
        settled = ranks[len(ranks) // 12:]  # after the first five minutes
        share = sum(1 for r in settled if r == 1) / len(settled)
        # the simulator's bots answer within 1 s and the bot searches every 10 s: rank 1 at
        # most search times is winning; measured 0.59 for this seed (bench/price_war.py)
        assert share >= 0.5, (share, ranks)


async def _ranks(bot) -> list[int | None]:  # type: ignore[no-untyped-def]
    rows = await bot.decisions.recent(limit=10_000)  # a repeated hold stands for `repeats` searches
    return [row.trace.get("standing") for row in reversed(rows) if row.trace for _ in range(row.repeats)]


async def test_search_unregistered_holds_with_a_reason_and_resumes(tmp_path) -> None:
    config = write_config(tmp_path, SELL_AD.format(floor="90", ceiling="96"))
    async with run_simulator("calm", speed=FAST, seed=3) as sim:
        sim.set_registration("search", "unregistered")
        async with running_bot(sim, config, tmp_path / "h.db") as bot:
            held = when(bot, lambda ad, row: "market data unavailable" in row.reason)
            await asyncio.wait_for(held.wait(), timeout=30)
            assert "-2008" in bot.ads[0].last.reason
            assert bot.registry.route("market") is None
            sim.set_registration("search", "registered")
            resumed = when(bot, lambda ad, row: row.trace.get("rank") is not None)
            await asyncio.wait_for(resumed.wait(), timeout=30)  # the next probe brings it back
            assert bot.registry.route("market") == "search"


async def test_follow_reference_runs_on_the_derived_reference(tmp_path) -> None:
    config = write_config(tmp_path, BUY_AD)
    async with run_simulator("calm", speed=FAST, seed=5) as sim:
        sim.set_registration("reference_price", "unregistered")
        async with running_bot(sim, config, tmp_path / "r.db") as bot:
            derived = when(bot, lambda ad, row: (row.trace.get("reference") or {}).get("source")
                           == "derived" and row.result in ("applied", "held"))
            await asyncio.wait_for(derived.wait(), timeout=30)
            assert bot.registry.route("reference_price") == "derived"
            row = bot.ads[0].last
            assert row is not None and "derived" in row.trace["decision"]["reason"]


async def test_dry_run_sends_no_update(tmp_path) -> None:
    config = write_config(tmp_path, SELL_AD.format(floor="90", ceiling="96"), bot="dry_run = true")
    async with run_simulator("price_war", speed=FAST, seed=2) as sim:
        async with running_bot(sim, config, tmp_path / "d.db") as bot:
            would = when(bot, lambda ad, row: row.result == "dry_run")
            await asyncio.wait_for(would.wait(), timeout=30)
            await asyncio.wait_for(after(bot, 300).wait(), timeout=30)
        assert sim.requests("update_ad") == []
