"""One empty 200 from `listOrders`, which had answered properly (issue 11, item 9): the endpoint
is failing, not bogus, and the next poll retries it; greetings do not wait for a re-probe."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat.session import ChatTimings
from bot.events import CapabilityChanged, EndpointChanged
from simulator.app import run_simulator
from tests.e2e.support import START_MS, config_text, desk_bot, open_order, scenario, until
from tests.e2e.test_desk_chat import STILL

SPEED = 150.0
TIMINGS = ChatTimings(keepalive=60, silence=60, ack=60, rest_poll=60)
PROBE_FIRST = 900  # simulated seconds: no re-probe may rescue the desk in this test


async def _greeted(run, order: str) -> bool:
    row = await run.desk.outbox.get(order, "new", "chat")
    return row is not None and row.state == "done"


@pytest.mark.slow
async def test_one_empty_answer_from_list_orders_does_not_stop_greetings(tmp_path) -> None:
    scen = scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    async with run_simulator(scen, start_ms=START_MS) as sim:
        toml = config_text(probe_first=PROBE_FIRST)
        async with desk_bot(sim, tmp_path, toml, timings=TIMINGS,
                               collect=(EndpointChanged, CapabilityChanged)) as run:
            first = await open_order(sim)
            await until(lambda: _greeted(run, first), limit=20, what="the first greeting")
            empty = asyncio.Event()
            run.bot.registry.observers.append(
                lambda ep, out, _lat: empty.set() if (ep, out) == ("list_orders", "http 200") else None)
            sim.set_registration("list_orders", "empty")
            await asyncio.wait_for(empty.wait(), 20)
            sim.set_registration("list_orders", None)
            at = sim.clock.now()
            second = await open_order(sim)
            await until(lambda: _greeted(run, second), limit=20, what="the second greeting")
            await until(lambda: str(run.bot.registry.status("orders").state) == "enabled",
                        limit=20, what="orders on summary+list again")
            assert sim.clock.now() - at < PROBE_FIRST / 3  # retried by the next polls, not a probe
            assert str(run.bot.registry.state("list_orders")) == "available"
    moves = [(str(e.old), str(e.new)) for e in run.events
             if isinstance(e, EndpointChanged) and e.endpoint == "list_orders"]
    assert moves == [("unknown", "available"), ("available", "failing"), ("failing", "available")]
    orders = [str(e.new) for e in run.events
              if isinstance(e, CapabilityChanged) and e.capability == "orders"]
    assert orders == ["enabled", "degraded", "enabled"]  # seen working first (it starts unchecked)
