"""The engine's write path against the simulator: unknown outcomes are read back, never looped."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from bot.app import Bot
from bot.pricing.pollers import MarketPoller
from simulator.app import Simulator, run_simulator
from tests.e2e import support
from tests.e2e.support import SELL_AD


def started(sim: Simulator, tmp: Path, body: str, bot: str = "") -> Any:
    """support.started, its client timing out after 0.5 s (the timeout faults hold 2 s)."""
    return support.started(sim, tmp, body, bot, request_timeout=0.5)


async def decide(bot: Bot) -> Any:
    """One search and one decision for the first ad."""
    poller = next(p for p in bot.pollers if isinstance(p, MarketPoller))
    return await bot.engine.evaluate(bot.ads[0], await poller.fetch("search"))


def updates(sim: Simulator) -> list[dict[str, Any]]:
    return sim.requests("update_ad")


@pytest.mark.parametrize("fault", [
    {"kind": "http5xx", "count": 1},  # refused before the world saw it: read back, reissue
    {"kind": "timeout", "count": 1, "hold_seconds": 2},
])
@pytest.mark.slow
async def test_unknown_outcome_is_read_back_and_reissued_once(tmp_path, fault) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim:
        async with started(sim, tmp_path, SELL_AD.format(floor="80", ceiling="99")) as bot:
            sim.add_fault(endpoint="update_ad", **fault)
            row = await decide(bot)
            assert row.result == "applied" and "reissued after read-back" in row.reason
            assert len(updates(sim)) == 2
            assert len(sim.requests("ad_detail")) == 1


async def test_write_that_took_effect_is_confirmed_not_reissued(tmp_path) -> None:
    """Taken as any update is: logged as one, and its price teaches the band (it was only
    counted as applied before)."""
    from loguru import logger

    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="INFO")
    try:
        async with run_simulator("calm", speed=0, seed=4) as sim:
            async with started(sim, tmp_path, SELL_AD.format(floor="80", ceiling="99")) as bot:
                sim.add_fault("malformed", endpoint="update_ad", count=1)  # served, then garbled
                accepted: list[Any] = []
                taught = bot.engine.bands.accepted
                bot.engine.bands.accepted = lambda *a: (accepted.append(a), taught(*a))[1]
                row = await decide(bot)
                assert row.result == "applied" and "confirmed by read-back" in row.reason
                assert len(updates(sim)) == 1
    finally:
        logger.remove(sink)
    assert [a[1] for a in accepted] == [row.target]
    assert any(m.startswith("repriced ") and m.endswith(row.reason) for m in said), said


async def test_reissue_failing_again_is_unknown_and_not_looped(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim:
        async with started(sim, tmp_path, SELL_AD.format(floor="80", ceiling="99")) as bot:
            sim.add_fault("http5xx", endpoint="update_ad", count=5)
            row = await decide(bot)
            assert row.result == "unknown"
            assert len(updates(sim)) == 2  # the update and one reissue, never more


async def test_price_outside_the_exchange_band_is_refused_and_held(tmp_path) -> None:
    body = SELL_AD.format(floor="80", ceiling="99").replace('strategy = "undercut"', 'strategy = "fixed"')
    body = body.replace('[ads.params]\nstep = "0.01"', '[ads.params]\nprice = "70.00"')
    async with run_simulator("calm", speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body.replace('floor = "80"', 'floor = "60"')) as bot:
            row = await decide(bot)
            assert row.result == "failed" and row.code == 187055


async def test_step_finer_than_the_tick_still_beats_the_best_and_says_what_it_sent(tmp_path) -> None:
    """Issue 10 items 6 and 7: "beat by 0.001" on a 0.01 tick used to round up into a tie
    with the best competitor, and the reason still said "by 0.001 below" it."""
    from loguru import logger

    warned: list[str] = []
    sink = logger.add(lambda m: warned.append(m.record["message"]), level="WARNING")
    body = SELL_AD.format(floor="80", ceiling="99").replace('step = "0.01"', 'step = "0.001"')
    try:
        async with run_simulator("calm", speed=0, seed=4) as sim:
            async with started(sim, tmp_path, body) as bot:
                row = await decide(bot)
    finally:
        logger.remove(sink)
    assert any("step 0.001 is finer than the ad's price tick 0.01" in w for w in warned), warned
    best = row.trace["best"][0]
    sent, rival = row.target, D(best["price"])
    assert row.result == "applied" and sent == rival - D("0.01")  # strictly below, one tick
    assert row.trace["decision"]["price"] == str(rival - D("0.001"))  # what the strategy asked
    assert row.trace["decision"]["relation"] == "beat"
    assert "tick" in row.guards
    assert row.reason == (f"1st: {sent}, 0.01 below '{best['nickname']}' ({rival}); rounded from "
                          f"{rival - D('0.001')} to the 0.01 tick [guards: tick]")
    assert row.trace["sent"] == {"price": str(sent), "reason": row.reason}
    assert "0.001 below" not in row.reason


async def test_the_pollers_first_requests_are_spread_not_fired_at_once(tmp_path: Path) -> None:
    """Each poller's first request in its own slot, half a second apart. On the stepped clock:
    at 20x real time a loaded machine measured 396 ms between two slots."""
    import asyncio

    from tests.support import write_config as one_ad_config

    config = one_ad_config(tmp_path / "bot.toml", market_interval=5)
    polled = ("search", "reference_price", "order_summary", "my_ads")
    async with run_simulator("calm", stepped=True, start_ms=support.START_MS) as sim:
        async with support.stepped_bot(sim, config, tmp_path / "bot.db") as run:
            before = max(r["id"] for r in sim.requests())  # start()'s own reads are over
            seen: set[str] = set()
            every = asyncio.Event()

            def saw(endpoint: str, outcome: str, latency: float) -> None:
                seen.add(endpoint)
                if seen >= set(polled):
                    every.set()

            run.bot.registry.observers.append(saw)
            await run.wait(every, 10, "every poller's first request")
        firsts: dict[str, int] = {}
        for row in sim.requests(after=before):
            firsts.setdefault(row["endpoint"], row["time_ms"])
    times = sorted(firsts[e] for e in polled)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 500, (firsts, gaps)  # ms: each in its own slot
