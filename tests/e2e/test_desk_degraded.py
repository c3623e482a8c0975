"""The desk while Binance leaves endpoints unregistered (-2008): it waits, says so, and resumes."""

from __future__ import annotations

from typing import Any

from bot.chat.session import ChatTimings
from simulator.app import run_simulator
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
from tests.e2e.test_desk_chat import STILL

SPEED = 150.0  # simulated seconds per real second: these tests wait for probes and expiry
TIMINGS = ChatTimings(keepalive=60, silence=60, ack=60, rest_poll=15, retry_first=1, retry_cap=10)


async def _row(run: DeskRun, order: str, status: str, action: str = "chat") -> Any:
    return await run.desk.outbox.get(order, status, action)


async def _state(run: DeskRun, order: str, status: str) -> str | None:
    row = await _row(run, order, status)
    return None if row is None else row.state


def _in(run: DeskRun, order: str, status: str, state: str) -> Any:
    """A condition for `until`: the (order, status, chat) row is in `state`."""
    async def check() -> bool:
        return await _state(run, order, status) == state
    return check


def _scenario() -> Any:
    return scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)


async def test_greetings_wait_while_chat_is_unregistered_and_go_out_once_it_is_back(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS) as sim:
        sim.set_registration("chat_credential", "unregistered")
        async with desk_bot(sim, tmp_path, config_text(), timings=TIMINGS) as run:
            order = await open_order(sim)
            await until(lambda: _state(run, order, "new"), what="the greeting queued")
            sim.world.push_counterparty(order, "hello? anyone?")
            await until(lambda: run.desk.chats.count("in"), what="reading over REST")
            later = sim.clock.now() + 90
            await until(lambda: sim.clock.now() >= later, what="90 simulated seconds")
            assert run.desk.chat.mode == "rest"
            assert await _state(run, order, "new") == "pending"
            assert await accepted_sent(sim) == []
            sim.set_registration("chat_credential", None)  # Binance enables it
            await until(_in(run, order, "new", "done"), limit=15, what="the greeting")
        sent = await accepted_sent(sim)
    assert [s["orderNo"] for s in sent] == [order]


async def test_a_greeting_that_waited_too_long_expires_and_is_never_sent(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS) as sim:
        sim.set_registration("chat_credential", "unregistered")
        async with desk_bot(sim, tmp_path, config_text(expiry_minutes=1), timings=TIMINGS) as run:
            order = await open_order(sim)
            await until(_in(run, order, "new", "expired"), what="the greeting expired")
            sim.set_registration("chat_credential", None)
            await until(lambda: run.desk.chat.ready.is_set(), limit=15, what="the websocket")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})
            await until(_in(run, order, "buyer_paid", "done"), what="the paid message")
            greeting = await _row(run, order, "new")
        sent = await accepted_sent(sim)
    assert [s["content"] for s in sent] == [f"Payment noted for {order}, checking."]
    assert greeting.attempts == 0 and greeting.answer == "not sent within outbox_expiry_minutes"


async def test_with_the_order_endpoints_unregistered_the_desk_says_so_and_resumes(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS) as sim:
        for endpoint in ("order_summary", "list_orders", "chat_credential"):
            sim.set_registration(endpoint, "unregistered")
        async with desk_bot(sim, tmp_path, config_text(), timings=TIMINGS) as run:
            desk = run.desk
            await until(lambda: desk.notes.was_sent("capability:orders:lost"), what="the alert")
            await until(lambda: desk.poller.parked, what="the poller parked")
            order = await open_order(sim)
            later = sim.clock.now() + 60
            await until(lambda: sim.clock.now() >= later, what="a simulated minute")
            assert await desk.orders.get(order) is None  # nothing can see it
            sim.set_registration("list_orders", None)
            await until(lambda: desk.orders.get(order), limit=15, what="the order followed")
            assert not desk.poller.parked
            assert await desk.notes.was_sent("capability:orders:restored")
            assert await _state(run, order, "new") == "pending"  # the chat is still down
            assert (await desk.orders.get(order)).source in ("list", "detail")


async def test_with_only_the_summary_the_desk_alerts_on_counts(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS) as sim:
        for endpoint in ("list_orders", "chat_credential"):
            sim.set_registration(endpoint, "unregistered")
        async with desk_bot(sim, tmp_path, config_text(), timings=TIMINGS) as run:
            desk = run.desk
            await until(lambda: desk.registry.route("orders") == "summary", what="summary only")
            order = await open_order(sim)
            before = desk.poller.ticks
            await until(lambda: desk.poller.ticks > before + 1, what="two polls")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})
            await until(lambda: desk.notes.was_sent("summary:paid:1"), what="the count alert")
