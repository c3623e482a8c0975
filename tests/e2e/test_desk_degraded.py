"""The desk while Binance leaves endpoints unregistered (-2008): it waits, says so, and resumes.

On the stepped clock (tests.e2e.support.stepped_bot): the probes, polls and expiry happen at
the same simulated times on any machine; a wait names its bound in simulated seconds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.chat.session import ChatTimings
from simulator.app import Simulator, run_simulator
from tests.e2e.support import (
    START_MS,
    SteppedRun,
    accepted_sent,
    config_text,
    open_order,
    scenario,
    sim_post,
    stepped_bot,
)
from tests.e2e.test_desk_chat import STILL

WITHIN = 1500.0  # simulated seconds a wait may take (probes back off to minutes)
TIMINGS = ChatTimings(keepalive=60, silence=60, ack=60, rest_poll=15, retry_first=1, retry_cap=10)


async def _row(run: SteppedRun, order: str, status: str, action: str = "chat") -> Any:
    return await run.desk.outbox.get(order, status, action)


async def _state(run: SteppedRun, order: str, status: str) -> str | None:
    row = await _row(run, order, status)
    return None if row is None else row.state


def _in(run: SteppedRun, order: str, status: str, state: str) -> Any:
    """A condition for `until`: the (order, status, chat) row is in `state`."""
    async def check() -> bool:
        return await _state(run, order, status) == state
    return check


def _scenario() -> Any:
    return scenario(speed=0, orders=STILL, chat={"message_probability": "0"}, three_ads=False)


@contextlib.asynccontextmanager
async def _desk(sim: Simulator, tmp_path: Path, toml: str) -> AsyncIterator[SteppedRun]:
    config = tmp_path / "bot.toml"
    config.write_text(toml)
    async with stepped_bot(sim, config, tmp_path / "bot.db", timings=TIMINGS) as run:
        yield run


async def test_greetings_wait_while_chat_is_unregistered_and_go_out_once_it_is_back(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS, stepped=True) as sim:
        sim.set_registration("chat_credential", "unregistered")
        async with _desk(sim, tmp_path, config_text()) as run:
            order = await open_order(sim)
            await run.until(lambda: _state(run, order, "new"), WITHIN, "the greeting queued")
            sim.world.push_counterparty(order, "hello? anyone?")
            await run.until(lambda: run.desk.chats.count("in"), WITHIN, "reading over REST")
            await run.run_for(90)
            assert run.desk.chat.mode == "rest"
            assert await _state(run, order, "new") == "pending"
            assert await accepted_sent(sim) == []
            sim.set_registration("chat_credential", None)  # Binance enables it
            await run.until(_in(run, order, "new", "done"), WITHIN, "the greeting")
        sent = await accepted_sent(sim)
    assert [s["orderNo"] for s in sent] == [order]


async def test_a_greeting_that_waited_too_long_expires_and_is_never_sent(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS, stepped=True) as sim:
        sim.set_registration("chat_credential", "unregistered")
        async with _desk(sim, tmp_path, config_text(expiry_minutes=1)) as run:
            order = await open_order(sim)
            await run.until(_in(run, order, "new", "expired"), WITHIN, "the greeting expired")
            sim.set_registration("chat_credential", None)
            await run.until(lambda: run.desk.chat.ready.is_set(), WITHIN, "the websocket")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})
            await run.until(_in(run, order, "buyer_paid", "done"), WITHIN, "the paid message")
            greeting = await _row(run, order, "new")
        sent = await accepted_sent(sim)
    assert [s["content"] for s in sent] == [f"Payment noted for {order}, checking."]
    assert greeting.attempts == 0 and greeting.answer == "not sent within outbox_expiry_minutes"


async def test_with_the_order_endpoints_unregistered_the_desk_says_so_and_resumes(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS, stepped=True) as sim:
        for endpoint in ("order_summary", "list_orders", "chat_credential"):
            sim.set_registration(endpoint, "unregistered")
        async with _desk(sim, tmp_path, config_text()) as run:
            desk = run.desk
            await run.until(lambda: desk.notes.was_sent("capability:orders:lost"), WITHIN, "the alert")
            await run.until(lambda: desk.poller.parked, WITHIN, "the poller parked")
            order = await open_order(sim)
            await run.run_for(60)
            assert await desk.orders.get(order) is None  # nothing can see it
            sim.set_registration("list_orders", None)
            await run.until(lambda: desk.orders.get(order), WITHIN, "the order followed")
            assert not desk.poller.parked
            assert await desk.notes.was_sent("capability:orders:restored")
            assert await _state(run, order, "new") == "pending"  # the chat is still down
            assert (await desk.orders.get(order)).source in ("list", "detail")


async def test_with_only_the_summary_the_desk_alerts_on_counts(tmp_path) -> None:
    async with run_simulator(_scenario(), start_ms=START_MS, stepped=True) as sim:
        for endpoint in ("list_orders", "chat_credential"):
            sim.set_registration(endpoint, "unregistered")
        async with _desk(sim, tmp_path, config_text()) as run:
            desk = run.desk
            await run.until(lambda: desk.registry.route("orders") == "summary", WITHIN, "summary only")
            order = await open_order(sim)
            before = desk.poller.ticks
            await run.until(lambda: desk.poller.ticks > before + 1, WITHIN, "two polls")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})
            await run.until(lambda: desk.notes.was_sent("summary:paid:1"), WITHIN, "the count alert")
