"""The order desk against the simulator for a simulated day of trading on three ads.

The bot lives in simulated time on the simulator's stepped clock (SteppedClock, moved
by tests.e2e.support.Stepper): the same day on a slow or a fast machine, in a fraction of
the real time a scaled clock needs. Every order must get exactly one greeting and
exactly one message per status it went through, as the simulator recorded them
(GET /_sim/world/chat/sent); every transition is stored, none inferred.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from bot.chat.session import ChatTimings
from bot.orders.reactions import render
from bot.orders.track import REACTION_OF
from simulator.app import run_simulator
from state.outbox import DONE
from tests.e2e.support import (
    REACTIONS,
    START_MS,
    Lives,
    Stepper,
    accepted_sent,
    config_text,
    loop_watch,
    scenario,
)

pytestmark = pytest.mark.slow  # a simulated day of orders on three ads

HOURS = 24.0  # a simulated day
STUCK_MINUTES = 20
CLOSING_MS = 3 * 3600 * 1000  # at most, after the day: the open orders run out



async def test_a_day_of_orders_on_three_ads_gets_each_reaction_exactly_once(
        tmp_path, inline_store) -> None:  # type: ignore[no-untyped-def]
    scen = scenario(speed=0, orders={
        "rate_per_hour": 4, "pay_seconds": [60, 600], "release_seconds": [60, 1800],
        "appeal_probability": "0.1", "appeal_seconds": [300, 900], "cancel_probability": "0.1",
        "timeout_probability": "0.05"}, chat={"noise": True, "message_probability": "0.5"})
    timings = ChatTimings(keepalive=120, silence=90, ack=120, rest_poll=60)
    async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
        config = tmp_path / "bot.toml"
        # without the recording: the day is about orders (its flush woke the loop every 30 s)
        config.write_text(config_text(orders_interval=30, stuck=STUCK_MINUTES)
                          + "\n[recording]\nenabled = false\n")
        lives = Lives(sim, config, tmp_path / "bot.db", 7, timings)
        stepper = Stepper(sim)
        with loop_watch(lives):
            life = lives.start()
            end = START_MS + int(HOURS * 3600_000)
            await stepper.to(end)
            book = sim.world.orders
            book.cfg = book.cfg.model_copy(update={"rate_per_hour": Decimal(0)})  # closing time
            assert life.bot is not None
            run = type("Run", (), {"sim": sim, "desk": life.bot.desk})()
            while not await _settled(run):
                assert sim.clock.now_ms() < end + CLOSING_MS, "orders still open or unsent"
                await stepper.to(sim.clock.now_ms() + 60_000)
            orders = {o.order_number: o for o in await run.desk.orders.recent(10_000)}
            transitions = await run.desk.orders.transitions()
            rows = [r for o in orders for r in await run.desk.outbox.for_order(o)]
            incoming = await run.desk.chats.count("in")
            await lives.stop()
            assert life.error is None, life.error
        sent = await accepted_sent(sim)
        history = {no: [s for _, s in o.history] for no, o in sim.world.orders.orders.items()}
        said = sum(1 for msgs in sim.world.chatlog.by_order.values() for m in msgs
                   if m.type == "text" and not m.self_)
    print(f"\norders {len(history)}; messages {len(sent)}; transitions {len(transitions)}")
    assert len(history) >= 60, "the day was too quiet to prove anything"
    assert set(orders) == set(history)
    by_order: dict[str, list[str]] = {}
    for s in sent:
        by_order.setdefault(s["orderNo"], []).append(s["content"])
    for no, statuses in history.items():
        expected = [render(REACTIONS[REACTION_OF[s]], orders[no]) for s in statuses]
        assert Counter(by_order.get(no, [])) == Counter(expected), no
        assert by_order[no][0] == expected[0]  # the greeting comes first
        stored = [t.new for t in transitions if t.order_number == no]
        assert stored == statuses, no
    assert not any(t.inferred for t in transitions)
    assert {r.state for r in rows} == {DONE}
    stuck = {r.order_number for r in rows if r.status == "stuck"}
    paid_long = {no for no, o in sim.world.orders.orders.items() if _paid_for(o) > STUCK_MINUTES * 60 + 120}
    paid_short = {no for no, o in sim.world.orders.orders.items() if _paid_for(o) < STUCK_MINUTES * 60 - 120}
    assert paid_long and paid_long <= stuck and not stuck & paid_short
    assert incoming == said > 0


def _paid_for(order) -> float:  # type: ignore[no-untyped-def]
    times = dict((s, t) for t, s in order.history)
    if 2 not in times:
        return 0.0
    after = [t for t, s in order.history if t > times[2]]
    return ((after[0] if after else times[2]) - times[2]) / 1000


async def _settled(run) -> bool:  # type: ignore[no-untyped-def]
    if any(o.status in (1, 2, 3) for o in run.sim.world.orders.orders.values()):
        return False
    if await run.desk.orders.count_open():  # first: a row is queued with the change
        return False
    counts = await run.desk.outbox.counts()
    return not counts.get("pending") and not counts.get("sending")
