"""A new store and orders already open at the exchange: recorded, never greeted twice.

A store lost (deleted, or replaced by an empty one) while the exchange kept its open
orders starts again empty: what the lost store's run sent is unknown. The orders created
before the new store are recorded as they are, without reactions; what happens to them
afterwards gets its reactions; an existing store restarted greets as it always did. The
simulator's record of accepted chat messages is the judge.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from simulator.app import Simulator, run_simulator
from tests.e2e.support import (
    START_MS,
    DeskRun,
    accepted_sent,
    config_text,
    desk_bot,
    open_order,
    scenario,
    sim_post,
    until,
)

SPEED = 50.0
STILL = {"pay_seconds": [100000, 100000], "release_seconds": [100000, 100000],
         "cancel_probability": "0", "timeout_probability": "0", "appeal_probability": "0"}
# the first words of each reaction's chat message in tests.e2e.support.REACTIONS
KIND = {"Hello": "new", "Payment": "buyer_paid", "Thank": "completed"}


def _scenario() -> Any:
    return scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)


async def _row_done(run: DeskRun, order: str, status: str) -> bool:
    row = await run.desk.outbox.get(order, status, "chat")
    return row is not None and row.state == "done"


async def _status(run: DeskRun, order: str) -> int | None:
    rec = await run.desk.orders.get(order)
    return None if rec is None else rec.status


async def _move(sim: Simulator, order: str, status: int) -> None:
    await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": status})


async def _said(sim: Simulator) -> Counter[tuple[str, str]]:
    """(order, reaction) of every message the exchange accepted, counted."""
    return Counter((s["orderNo"], KIND[s["content"].split()[0].rstrip("!,")])
                   for s in await accepted_sent(sim))


async def test_a_new_store_records_open_orders_without_reactions_and_follows_them_after(
        tmp_path: Path) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    try:
        async with run_simulator(_scenario(), start_ms=START_MS) as sim:
            trading, paid = await open_order(sim), await open_order(sim)
            await _move(sim, paid, 2)  # paid before the bot (and its store) existed
            async with desk_bot(sim, tmp_path, config_text()) as run:
                await until(lambda: _status(run, trading), what="the trading order recorded")
                await until(lambda: _status(run, paid), what="the paid order recorded")
                later = await open_order(sim)  # created after the store: greeted
                await until(lambda: _row_done(run, later, "new"), what="the new order's greeting")
                first = await _said(sim)
                rows = {o: await run.desk.outbox.for_order(o) for o in (trading, paid)}
                await _move(sim, trading, 2)
                await _move(sim, paid, 4)
                await until(lambda: _row_done(run, trading, "buyer_paid"), what="the paid message")
                await until(lambda: _row_done(run, paid, "completed"), what="the thanks")
                recorded = (await run.desk.orders.get(trading), await run.desk.orders.get(paid))
            after = await _said(sim)
            down = await open_order(sim)  # while the bot is stopped
            await _move(sim, trading, 4)
            async with desk_bot(sim, tmp_path, config_text()) as run:  # the same store
                await until(lambda: _row_done(run, down, "new"), what="the greeting after restart")
                await until(lambda: _row_done(run, trading, "completed"), what="the thanks")
            restarted = await _said(sim)
    finally:
        logger.remove(sink)
    assert first == Counter({(later, "new"): 1})  # nothing for the orders already open
    assert rows == {trading: [], paid: []}  # no alert either: nothing was queued for them
    assert [r.status for r in recorded if r is not None] == [2, 4]  # followed all the same
    assert after == Counter({(later, "new"): 1, (trading, "buyer_paid"): 1, (paid, "completed"): 1})
    assert restarted == after + Counter({(down, "new"): 1, (trading, "completed"): 1})
    told = [line for line in lines if line.startswith("new store:")]
    assert told == [f"new store: 2 order(s) already open at the exchange were recorded without "
                    f"reactions (created before this store): {trading}, {paid}"]


@pytest.mark.parametrize("lost", ["while running", "while stopped"])
async def test_a_store_lost_and_created_again_greets_no_one_twice(tmp_path: Path, lost: str) -> None:
    """The issue's crash: the store's files deleted; the next start must not re-greet."""
    async with run_simulator(_scenario(), start_ms=START_MS) as sim:
        async with desk_bot(sim, tmp_path, config_text()) as run:
            order = await open_order(sim)
            await until(lambda: _row_done(run, order, "new"), what="the greeting")
            await _move(sim, order, 2)
            await until(lambda: _row_done(run, order, "buyer_paid"), what="the paid message")
            if lost == "while running":
                _delete_store(tmp_path)
                await until(lambda: run.task.done(), what="the bot stopping on its lost store")
                assert run.bot.fatal is not None and "was deleted" in run.bot.fatal
        if lost == "while stopped":
            _delete_store(tmp_path)
        async with desk_bot(sim, tmp_path, config_text()) as run:
            await until(lambda: _status(run, order), what="the order recorded again")
            fresh = await open_order(sim)
            await until(lambda: _row_done(run, fresh, "new"), what="the new order's greeting")
            await _move(sim, order, 4)
            await until(lambda: _row_done(run, order, "completed"), what="the thanks")
        said = await _said(sim)
    assert said == Counter({(order, "new"): 1, (order, "buyer_paid"): 1, (fresh, "new"): 1,
                            (order, "completed"): 1})


def _delete_store(folder: Path) -> None:
    files = list(folder.glob("bot.db*"))
    assert files
    for path in files:
        path.unlink()
