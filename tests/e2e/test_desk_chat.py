"""The chat websocket against the simulator: faults recover, gap messages are read, refusals stop.

The bot lives in simulated time at SPEED; the watchdog's seconds are simulated too,
the simulator's silence is real seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
import websockets
from websockets.protocol import State

from bot.chat.session import ChatTimings
from bot.events import ChatMessageReceived, ChatTakenOver
from bot.orders.reactions import render
from simulator.app import Simulator, run_simulator
from tests.e2e.support import (
    REACTIONS,
    START_MS,
    DeskRun,
    accepted_sent,
    config_text,
    desk_bot,
    open_order,
    scenario,
    sim_post,
    stepped_bot,
    until,
)

SPEED = 50.0
STILL = {"pay_seconds": [100000, 100000], "release_seconds": [100000, 100000],
         "cancel_probability": "0", "timeout_probability": "0", "appeal_probability": "0"}
TIMINGS = ChatTimings(keepalive=10, silence=10, ack=30, rest_poll=15, retry_first=1,
                      retry_cap=10, healthy_after=5)


async def _row_done(run: DeskRun, order: str, status: str) -> bool:
    row = await run.desk.outbox.get(order, status, "chat")
    return row is not None and row.state == "done"


def _refuse_next(sim: Simulator, times: int, reason: str = "invalid token") -> list[str]:
    """The websocket refuses the next `times` connections (HTTP 401 before the upgrade)."""
    creds = sim.world.credentials
    admit, refused = creds.admit, []

    def refusing(listen_key: str, token: str, now_ms: int) -> str | None:
        if len(refused) < times:
            refused.append(token)
            return reason
        return admit(listen_key, token, now_ms)

    creds.admit = refusing  # type: ignore[method-assign]
    return refused


def _expire_next(sim: Simulator) -> list[str]:
    """The next credential issued is already expired when the bot presents it."""
    creds, issued = sim.world.credentials, []
    issue = creds.issue

    def expiring(now_ms: int, *, tainted: bool = False) -> dict[str, str]:
        cred = issue(now_ms, tainted=tainted)
        if not issued:
            issued.append(cred["listenToken"])
            creds.expire_all(now_ms)
        return cred

    creds.issue = expiring  # type: ignore[method-assign]
    return issued


async def _inject(sim: Simulator, fault: str) -> Any:
    if fault == "silent":
        return await sim_post(sim, "/_sim/world/chat/silence", {"seconds": 1.0})
    if fault == "expired":
        await sim_post(sim, "/_sim/world/chat/expire")
        marker: Any = _expire_next(sim)
    elif fault == "refused":
        marker = _refuse_next(sim, 2)
    else:
        marker = None
    await sim_post(sim, "/_sim/world/chat/drop")
    return marker


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["dropped", "silent", "expired", "refused"])
async def test_the_chat_recovers_and_reads_what_was_said_meanwhile(tmp_path, fault: str) -> None:
    scen = scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    async with run_simulator(scen, start_ms=START_MS) as sim:
        async with desk_bot(sim, tmp_path, config_text(), timings=TIMINGS,
                               collect=(ChatMessageReceived,)) as run:
            chat, hub = run.desk.chat, sim.world.hub
            order = await open_order(sim)
            await until(lambda: _row_done(run, order, "new"), what="the greeting")
            connections, credentials = hub.connections, len(sim.requests("chat_credential"))
            marker = await _inject(sim, fault)
            sim.world.push_counterparty(order, f"are you there? ({fault})")  # while the socket is gone
            await until(lambda: hub.connections > connections and not hub.silent
                        and chat.ready.is_set(), what="a new connection")
            await until(lambda: run.events, what="the message said during the gap")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})
            await until(lambda: _row_done(run, order, "buyer_paid"), what="the paid message")
            stored = await run.desk.chats.for_order(order)
        sent = await accepted_sent(sim)
    record = (await _record(tmp_path, order))
    assert [s["content"] for s in sent] == [render(REACTIONS["new"], record),
                                            render(REACTIONS["buyer_paid"], record)]
    assert [e.message.content for e in run.events] == [f"are you there? ({fault})"]
    assert [m.content for m in stored if m.direction == "in"] == [f"are you there? ({fault})"]
    assert len(sim.requests("chat_credential")) > credentials  # a fresh one per connection
    assert chat.failures >= {"dropped": 1, "silent": 1, "expired": 2, "refused": 3}[fault]
    if fault in ("expired", "refused"):
        assert marker  # the refusal really happened


async def _record(tmp_path, order: str):  # type: ignore[no-untyped-def]
    from state.db import Store
    from state.orders import OrderStore

    store = await Store.open(tmp_path / "bot.db")
    try:
        return await OrderStore(store).get(order)
    finally:
        await store.close()


async def test_a_refused_message_is_reported_and_never_retried(tmp_path) -> None:
    scen = scenario(speed=SPEED, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    chat = dict(REACTIONS, buyer_paid="Join us at t.me/deals for better rates")
    async with run_simulator(scen, start_ms=START_MS) as sim:
        async with desk_bot(sim, tmp_path, config_text(chat=chat), timings=TIMINGS) as run:
            order = await open_order(sim)
            await until(lambda: _row_done(run, order, "new"), what="the greeting")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})

            async def failed() -> Any:
                row = await run.desk.outbox.get(order, "buyer_paid", "chat")
                return row if row is not None and row.state == "failed" else None

            row = await until(failed, what="the refusal")
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 4})
            await until(lambda: _row_done(run, order, "completed"), what="the thanks")
            alerted = await run.desk.notes.was_sent(f"chat_refused:{row.key}")
        tried = [s for s in sim.world.chatlog.sent if s["orderNo"] == order]
    assert row.answer == "refused: ILLEGAL_PARAM" and row.attempts == 1
    assert alerted
    assert [(s["accepted"], s["error"]) for s in tried] == [(True, None), (False, "ILLEGAL_PARAM"),
                                                            (True, None)]


async def test_a_chat_taken_over_by_another_client_is_left_to_it_with_one_alert(tmp_path) -> None:
    """Kicked off 3 times by another session: the bot stops reconnecting and reads over REST.

    On the stepped clock (tests.e2e.support.stepped_bot): the kicks, reconnect delays and
    REST reads happen in the same order on a slow or a fast machine."""
    scen = scenario(speed=0, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    config = tmp_path / "bot.toml"
    config.write_text(config_text())
    async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
        async with stepped_bot(sim, config, tmp_path / "bot.db", timings=TIMINGS,
                               collect=(ChatTakenOver, ChatMessageReceived)) as run:
            chat, hub = run.desk.chat, sim.world.hub
            order = await open_order(sim)
            await run.until(lambda: _row_done(run, order, "new"), 120, "the greeting")
            intruders = []
            try:
                for kick in range(3):
                    await run.until(lambda: chat.ready.is_set(), 120, f"the bot connected ({kick})")
                    cred = await run.bot.api.chat_credential()  # another client on the same key
                    intruders.append(await websockets.connect(cred.websocket_url(),
                                                              ping_interval=None))
                    await run.until(lambda: not chat.connected, 120, f"the bot kicked ({kick})")
                taken = await run.until(
                    lambda: [e for e in run.events if isinstance(e, ChatTakenOver)], 120,
                    "the bot giving way")
                connections = hub.connections
                later = sim.clock.now() + 120  # simulated: 12 times the longest reconnect delay
                sim.world.push_counterparty(order, "still there?")
                await run.until(lambda: [e for e in run.events if isinstance(e, ChatMessageReceived)],
                                120, "the message read over REST")
                await run.until(lambda: sim.clock.now() >= later, 120, "two simulated minutes")
                kept = intruders[-1].state is State.OPEN
                alerted = await run.desk.notes.log.store.fetchall(
                    "SELECT key FROM notifications WHERE kind = 'chat_taken_over'")
            finally:
                for ws in intruders:
                    await ws.close()
    assert len(taken) == 1 and taken[0].kicks == 3
    assert hub.connections == connections and kept  # no fight: the other client keeps the socket
    assert chat.mode == "rest" and not chat.connected
    assert [e.via for e in run.events if isinstance(e, ChatMessageReceived)] == ["rest"]
    assert [r[0] for r in alerted] == ["chat:taken_over"]


async def test_sends_without_echo_are_taken_as_sent_and_confirmed_from_history(tmp_path) -> None:
    """World switch `echo_drop_probability = 1`: no send is ever echoed. Each message is taken as
    sent after `ack`, the socket stays up, and the chat history confirms it: done, sent once."""
    scen = scenario(speed=SPEED, orders=STILL, three_ads=False,
                    chat={"message_probability": "0", "echo_drop_probability": "1"})
    timings = ChatTimings(keepalive=10, silence=10, ack=1.5, rest_poll=15)
    async with run_simulator(scen, start_ms=START_MS) as sim:
        async with desk_bot(sim, tmp_path, config_text(), timings=timings) as run:
            orders = [await open_order(sim) for _ in range(3)]
            for order in orders:
                await until(lambda o=order: _row_done(run, o, "new"), limit=20,
                            what="the greeting confirmed from the chat history")
            sent = await accepted_sent(sim)
            assert sorted(s["orderNo"] for s in sent) == sorted(orders)  # each once
            assert sim.world.chatlog.echoes_dropped == 3
            assert run.desk.chat.connects == 1 and sim.world.hub.connections == 1  # never cut
            row = await run.desk.outbox.get(orders[0], "new", "chat")
            assert "found in chat history" in (row.answer or "")


async def test_a_reload_takes_new_reaction_texts_and_the_orders_interval(tmp_path: Any) -> None:
    """SIGHUP after editing a greeting: the next order is greeted with the new text (a reload
    used to keep the texts, the order poll interval and the outbox expiry of the start)."""
    from config.loader import load_config

    scen = scenario(speed=0, orders=STILL)
    config = tmp_path / "bot.toml"
    config.write_text(config_text())
    async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
        async with stepped_bot(sim, config, tmp_path / "bot.db", timings=TIMINGS) as run:
            first = await open_order(sim)
            await run.until(lambda: _row_done(run, first, "new"), 120, "the first greeting")
            config.write_text(config_text(orders_interval=20, expiry_minutes=45,
                                          chat={**REACTIONS, "new": "Welcome back, {nickname}!"}))
            changes = await run.bot.reload(load_config(config))
            assert "[orders] and [chat] taken" in changes, changes
            assert run.desk.poller.interval == 20 and run.desk.worker.expiry == 45 * 60
            second = await open_order(sim)
            await run.until(lambda: _row_done(run, second, "new"), 120, "the second greeting")
            texts = {m["orderNo"]: m["content"] for m in await accepted_sent(sim)}
    assert texts[first].startswith("Hello ")
    assert texts[second].startswith("Welcome back, ")
