"""An order status this bot does not know (issue 11, item 8): carried as unknown, one alert,
its detail re-read on back-off (not on every poll), and followed again once it is known.

On the stepped clock (tests.e2e.support.stepped_bot): the counts of polls and reads are
the same on a slow or a fast machine; `within` bounds are simulated seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
from loguru import logger

from bot.chat.session import ChatTimings
from simulator.app import run_simulator
from tests.e2e.support import START_MS, config_text, open_order, scenario, stepped_bot
from tests.e2e.test_desk_chat import STILL

TIMINGS = ChatTimings(keepalive=60, silence=60, ack=60, rest_poll=60)
POLLS = 40  # orders_interval = 15 s: ten simulated minutes


async def test_an_unknown_status_is_alerted_once_and_read_on_back_off(tmp_path) -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    scen = scenario(speed=0, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    try:
        async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
            async with stepped_bot(sim, _config(tmp_path), tmp_path / "bot.db", timings=TIMINGS) as run:
                order = await open_order(sim)
                await run.until(lambda: run.desk.orders.get(order), 120, "the order stored")
                sim.world.orders.orders[order].status = 5  # a status Binance has not used before
                before = len(sim.requests("order_detail"))
                lists = len(sim.requests("list_orders"))
                await run.until(lambda: len(sim.requests("list_orders")) >= lists + 2 * POLLS,
                                POLLS * 15 * 2, f"{POLLS} polls")
                details = len(sim.requests("order_detail")) - before
                stored = await run.desk.orders.get(order)
                alerts = [w for w in warnings if w.startswith("ALERT [order_status_unknown]")]
                assert details <= 4, f"{details} detail reads in {POLLS} polls"
                assert stored is not None and stored.status == 1  # carried, not moved
                assert len(alerts) == 1 and "status 5" in alerts[0]
                assert run.desk.unknown_status(order) == 5

                sim.world.orders.orders[order].status = 4  # known again: completed
                await run.until(lambda: _status(run, order, 4), 600, "the order followed")
                assert run.desk.unknown_status(order) is None
    finally:
        logger.remove(sink)


def _config(tmp_path) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(config_text())
    return path


async def _status(run, order: str, status: int) -> bool:
    stored = await run.desk.orders.get(order)
    return stored is not None and stored.status == status


def _details_of(sim, order: str) -> int:
    return sum(1 for r in sim.requests("order_detail") if order in str(r))


@pytest.mark.slow
async def test_an_unlisted_order_in_an_unknown_status_is_re_read_on_back_off(tmp_path) -> None:
    scen = scenario(speed=0, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
        async with stepped_bot(sim, _config(tmp_path), tmp_path / "bot.db", timings=TIMINGS) as run:
            order = await open_order(sim)
            await run.until(lambda: run.desk.orders.get(order), 120, "the order stored")
            sim.world.orders.orders[order].status = 5
            for _ in range(20):  # newer orders push it off the first page of the order list
                await run.run_for(1)  # newer: the clock stands still unless the test moves it
                await open_order(sim)
            await run.until(lambda: run.desk.unknown_status(order) == 5, 600, "the detail read")
            start = sim.clock.now()
            first = _details_of(sim, order)
            await run.until(lambda: sim.clock.now() >= start + 1800, 1800, "30 simulated minutes")
            reads = _details_of(sim, order) - first
    # 120 polls in 30 minutes; re-read after 1, 2, 4, 8 and 16 minutes at most
    assert 1 <= reads <= 5, reads


@pytest.mark.slow
async def test_the_desk_follows_an_order_through_a_status_the_simulator_emits(tmp_path) -> None:
    """World switch `odd_status_probability`: a paid order passes through status 5 (the sister
    venue's "appeal") and completes; the desk carries it, alerts once, and follows it to the end."""
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    odd = {**STILL, "pay_seconds": [30, 30], "release_seconds": [600, 600],
           "odd_status_probability": "1", "odd_statuses": [5]}
    scen = scenario(speed=0, orders=odd, chat={"message_probability": "0"}, three_ads=False)
    try:
        async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
            async with stepped_bot(sim, _config(tmp_path), tmp_path / "bot.db", timings=TIMINGS) as run:
                order = await open_order(sim)
                await run.until(lambda: run.desk.unknown_status(order) == 5, 600,
                                    "the odd status seen")
                assert (await run.desk.orders.get(order)).status == 2  # carried, not moved
                await run.until(lambda: _status(run, order, 4), 1200, "the order completed")
                assert run.desk.unknown_status(order) is None
                assert [s for _, s in sim.world.orders.orders[order].history] == [1, 2, 5, 4]
                outbox = {r.status: r.state for r in await run.desk.outbox.for_order(order)
                          if r.action == "chat"}
                assert set(outbox) == {"new", "buyer_paid", "completed"}
        alerts = [w for w in warnings if w.startswith("ALERT [order_status_unknown]")]
        assert len(alerts) == 1 and "status 5" in alerts[0]
    finally:
        logger.remove(sink)
