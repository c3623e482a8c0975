"""Dry run is read-only: an order arrives and is paid, the bot follows it and sends nothing.

The simulator's own record is the judge: no chat frame reached it and no ad update;
the store, the status document and `history` say what the bot would have sent.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from bot.ops import status_api as status
from simulator.app import run_simulator
from state.notifications import NotificationLog
from tests.e2e.support import (
    SELL_ADV,
    START_MS,
    DeskRun,
    config_text,
    desk_bot,
    open_order,
    scenario,
    sim_get,
    sim_post,
    until,
)
from tests.support import run_command

SPEED = 50.0
STILL = {"pay_seconds": [100000, 100000], "release_seconds": [100000, 100000],
         "cancel_probability": "0", "timeout_probability": "0", "appeal_probability": "0"}
# the SELL ad sits at 93.00: a fixed 92.80 is a reprice the engine would make
AD = f"""
[[ads]]
name = "sell"
adv_no = "{SELL_ADV}"
strategy = "fixed"
[ads.params]
price = "92.80"
[ads.guards]
floor = "90.00"
ceiling = "96.00"
min_interval = 0
"""


def dry_config() -> str:
    """Every reaction with a chat message and alerts, an ad to reprice, and dry_run on."""
    return config_text().replace("[bot]\n", "[bot]\ndry_run = true\nmarket_interval = 5\n", 1) + AD


async def _state(run: DeskRun, order: str, status_: str, action: str = "chat") -> str | None:
    row = await run.desk.outbox.get(order, status_, action)
    return None if row is None else row.state


@pytest.mark.slow
async def test_a_dry_run_follows_an_order_to_paid_and_sends_nothing(tmp_path: Any) -> None:
    scen = scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    async with run_simulator(scen, start_ms=START_MS) as sim:
        async with desk_bot(sim, tmp_path, dry_config()) as run:
            order = await open_order(sim)
            await until(lambda: _state(run, order, "new"), what="the greeting's row")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})

            async def paid_done() -> bool:
                return (await _state(run, order, "buyer_paid") == "dry_run"
                        and await _state(run, order, "buyer_paid", "notify") == "done")

            await until(paid_done, what="the paid reactions")
            await until(lambda: any(a.last is not None and a.last.result == "dry_run"
                                    for a in run.bot.ads), what="a dry-run price decision")
            recorded = await run.desk.orders.get(order)
            rows = await run.desk.outbox.for_order(order)
            doc = await status.build(run.bot)
            alerted = await NotificationLog(run.store).last_sent(f"order:{order}:new")
            await run.desk.refresh_view()
            view = [(r.order_number, r.greeting) for r in run.desk.view]
        sent = (await sim_get(sim, "/_sim/world/chat/sent"))["sent"]
        updates = sim.requests("update_ad")
    # the simulator's record: nothing reached a counterparty, nothing changed at the exchange
    assert sent == [] and updates == []
    assert recorded is not None and recorded.status == 2  # the order was followed all the same
    chat_rows = [r for r in rows if r.action == "chat"]
    assert [(r.status, r.state) for r in chat_rows] == [("new", "dry_run"), ("buyer_paid", "dry_run")]
    assert all(r.answer and r.answer.startswith("dry run: would send: ") for r in chat_rows)
    assert alerted is not None  # alerts still reach the merchant
    assert view == [(order, "would send")]  # the terminal view's greeting column
    assert doc["dry_run"] is True
    would = [(w["order_number"], w["status"]) for w in doc["would_send"]]
    assert would == [(order, "buyer_paid"), (order, "new")]  # newest first
    assert doc["would_send"][1]["content"].startswith("Hello ")
    # history shows what the dry run would have done
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    env["P2PBOT_DB"] = str(tmp_path / "bot.db")
    code, out, err = await run_command(env, tmp_path, "history", "--show", "prices,orders")
    assert code == 0, err
    assert "dry_run" in out and "92.80" in out  # the price it would have set
    assert f"dry run: would send to order {order} (new): Hello " in out
    code, out, err = await run_command(env, tmp_path, "history", "--show", "orders", "--json")
    doc_json = json.loads(out)
    assert [(w["order_number"], w["status"]) for w in doc_json["would_send"]] == [
        (order, "new"), (order, "buyer_paid")]


async def test_dry_run_alerts_say_that_nothing_was_sent(tmp_path: Any) -> None:
    scen = scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    async with run_simulator(scen, start_ms=START_MS) as sim:
        async with desk_bot(sim, tmp_path, dry_config()) as run:
            delivered: list[str] = []
            original = run.desk.notes.deliver

            async def deliver(note: Any) -> str:
                delivered.append(note.text)
                return await original(note)

            run.desk.notes.deliver = deliver  # type: ignore[method-assign]
            order = await open_order(sim)
            await until(lambda: _state(run, order, "new", "notify"), what="the new-order alert")
            await until(lambda: delivered, what="the alert delivered")
    [text] = delivered
    assert text.startswith(f"New order: order {order}")
    assert "dry run: the bot sent nothing to the counterparty and changed nothing at the " \
           "exchange; it would send: \"Hello " in text
