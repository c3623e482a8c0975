"""`history` prints endpoint outages, price updates and order events from a real run."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.events import OrderChanged
from p2pbot.cli import main
from simulator.app import run_simulator
from state.endpoints import EndpointLog
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


async def test_history_shows_endpoints_prices_and_orders(tmp_path, monkeypatch, capsys) -> None:
    config = write_config(tmp_path, SELL_AD.format(floor="80", ceiling="99") +
                          '\n[orders.on.new]\nchat = "Hello {nickname}, order {order_no}"\n')
    db = tmp_path / "h.db"
    async with run_simulator("calm", speed=200, seed=11) as sim:
        sim.set_registration("categories", "unregistered")
        async with running_bot(sim, config, db) as bot:
            seen = asyncio.Event()

            async def on_order(ev: OrderChanged) -> None:
                seen.set()

            bot.bus.subscribe(OrderChanged, on_order, name="test")
            greeted: list[float] = []
            greeting = asyncio.Event()
            bot.desk.observers.append(lambda kind, s: (greeted.append(s), greeting.set()))
            applied = when(bot, lambda ad, row: row.result == "applied")
            await asyncio.wait_for(applied.wait(), timeout=30)
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{sim.base_url}/_sim/world/orders",
                                     json={"side": "SELL", "asset": "USDT", "fiat": "RUB"}) as r:
                    assert r.status == 200, await r.text()
            await asyncio.wait_for(seen.wait(), timeout=30)
            await asyncio.wait_for(greeting.wait(), timeout=30)
            assert 0 <= greeted[0] < 120  # seconds from the order's creation to its greeting
            await bot.registry.probe("categories")
    monkeypatch.setenv("P2PBOT_DB", str(db))
    code = await asyncio.to_thread(main, ["history"])
    out = capsys.readouterr().out
    assert code == 0
    assert "categories" in out and "-2008" in out  # the endpoint timeline
    assert "applied" in out  # a price update
    assert "trading" in out  # the order's first status
    code = await asyncio.to_thread(main, ["history", "--show", "orders", "--json"])
    assert code == 0


@pytest.mark.slow
async def test_history_tells_the_truth_in_the_realistic_scenario(tmp_path) -> None:
    """The real exchange's habits (-9000 wrappers, quantity refusals, clientType, read lag, a
    moving band) are answers, not outages: a simulated half hour of `realistic` leaves no
    endpoint down in the stored history, while the bot kept repricing. On the stepped clock:
    at a scaled 200x, a loaded machine's latency made stale timestamps (-1021 outages)."""
    config = write_config(tmp_path, SELL_AD.format(floor="80", ceiling="99") + BUY_AD)
    async with run_simulator("realistic", seed=7, start_ms=START_MS, stepped=True) as sim:
        async with stepped_bot(sim, config, tmp_path / "r.db") as run:
            bot = run.bot
            await run.wait(after(bot, 1800), 1900, "half an hour of decisions")
            rows = await EndpointLog(bot.store).transitions(None, None, None)
            applied = bot.engine.counts.get("applied", 0)
    down = [(t.endpoint, t.new, t.code) for t in rows if t.new != "available"]
    assert down == [], down
    assert applied > 5
