"""The pricing loop end to end: the real bot against the simulator, in simulated time."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal as D
from pathlib import Path

import pytest

from simulator.app import run_simulator
from tests.e2e.support import (
    BUY_AD,
    SELL_AD,
    START_MS,
    after,
    running_bot,
    stepped_bot,
    when,
    write_config,
)

FAST = 400.0  # simulated seconds per real second
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


@pytest.mark.slow
async def test_undercut_wins_rank_in_a_price_war_and_keeps_its_bounds(tmp_path) -> None:
    """On the stepped clock: the same hour, the same ranks on a slow or a fast machine."""
    floor, ceiling = D("91.00"), D("96.00")
    config = write_config(tmp_path, SELL_AD.format(floor=floor, ceiling=ceiling))
    async with run_simulator("price_war", seed=7, start_ms=START_MS, stepped=True) as sim:
        async with stepped_bot(sim, config, tmp_path / "b.db") as run:
            bot = run.bot
            await run.wait(after(bot, 3600), within=3700, what="an hour of decisions")
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


@pytest.mark.slow
async def test_dry_run_sends_no_update(tmp_path) -> None:
    config = write_config(tmp_path, SELL_AD.format(floor="90", ceiling="96"), bot="dry_run = true")
    async with run_simulator("price_war", speed=FAST, seed=2) as sim:
        async with running_bot(sim, config, tmp_path / "d.db") as bot:
            would = when(bot, lambda ad, row: row.result == "dry_run")
            await asyncio.wait_for(would.wait(), timeout=30)
            await asyncio.wait_for(after(bot, 300).wait(), timeout=30)
        assert sim.requests("update_ad") == []


@pytest.mark.slow
async def test_example_edit_budget_is_paced_over_the_hour_of_the_price_war(tmp_path) -> None:
    """Issue 10 item 8: with config/example.toml the SELL ad used to spend its 30 updates in
    about 7 simulated minutes and sit at rank 8 for the rest of the hour. Now the budget is
    paced: at every update the updates so far are within the even pace plus the burst, the
    last quarter of the hour still has updates, and the budget left is on /api/status and
    on the terminal view. On the stepped clock (at a scaled 400x a loaded machine ran out of
    the real-time bound)."""
    import math

    import aiohttp

    from bot.ops.terminal import render
    from bot.pricing.guards import burst
    async with run_simulator("price_war", seed=7, start_ms=START_MS, stepped=True) as sim:
        async with stepped_bot(sim, EXAMPLE, tmp_path / "b.db", web=True) as r:
            bot, start = r.bot, r.bot.clock.time()
            await r.wait(after(bot, 3600), 3700, "an hour of decisions")
            sell = next(a for a in bot.ads if a.label == "sell-usdt")
            assert sell.own is not None
            async with aiohttp.ClientSession() as s, s.get(r.web.url + "/api/status") as resp:
                doc = await resp.json()
            screen = render(bot, bot.clock.time())
            rows = [row for row in reversed(await bot.decisions.recent(limit=100_000))
                    if row.adv_no == sell.own.adv_no and row.at <= start + 3600]
    limits = sell.loaded.config.guards
    n, window, extra = limits.max_updates, limits.update_window, burst(limits.max_updates)
    applied = [row.at - start for row in rows if row.result == "applied"]
    for k, at in enumerate(applied, 1):  # never ahead of the even pace plus the burst
        assert k <= math.ceil(n * at / window) + extra, (k, at, applied)
    assert not any("edit budget spent" in row.reason for row in rows)  # never starved
    assert any(at > 2700 for at in applied), applied  # still repricing in the last quarter
    standings = [row.trace.get("standing") for row in rows if row.trace]
    settled = standings[len(standings) // 12:]
    # measured 0.75 to 0.84 for this seed (bench/price_war.py --config config/example.toml);
    # before pacing 0.20: the budget was gone after 7 minutes
    assert sum(1 for s in settled if s == 1) / len(settled) >= 0.5, standings

    shown = next(a for a in doc["ads"] if a["label"] == "sell-usdt")["budget"]
    assert shown["max"] == n and shown["left"] == n - shown["used"] and shown["used"] >= 1
    assert shown["text"].startswith(f"{shown['left']} of {n} left in the window")
    seen = re.search(rf"budget: (\d+) of {n} left in the window \(3600 s\); the pace allows", screen)
    assert seen and 0 < int(seen.group(1)) < n, screen
