"""An order first heard of over the chat, whose detail could not be read then: the next system
message reads the detail again, so its greeting and the paid message still go out while it is
open (found by the chaos day: with the detail read only at the first sighting, such an order
was known in full only once final, and its reactions were never planned). On the stepped
clock: at a scaled 50x, a loaded machine let the order run past what the test arranged."""

from __future__ import annotations

from simulator.app import run_simulator
from tests.e2e.support import START_MS, config_text, open_order, scenario, sim_post, stepped_bot
from tests.e2e.test_desk_chat import STILL, TIMINGS


def _sent(sim, order: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [s["content"] for s in sim.world.chatlog.sent if s["orderNo"] == order and s["accepted"]]


async def test_an_order_heard_first_over_chat_gets_its_reactions_once_its_detail_reads(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    scen = scenario(speed=0, orders=STILL, chat={"message_probability": "0"}, three_ads=False)
    config = tmp_path / "bot.toml"
    config.write_text(config_text())
    async with run_simulator(scen, start_ms=START_MS, stepped=True) as sim:
        sim.set_registration("list_orders", "unregistered")  # orders only over summary + chat
        async with stepped_bot(sim, config, tmp_path / "bot.db", timings=TIMINGS) as run:
            await run.until(lambda: run.bot.registry.state("list_orders").value == "unregistered",
                            1000, "list_orders found unregistered")
            fault = sim.add_fault("http5xx", endpoint="order_detail", status=500)
            order = await open_order(sim)
            await run.until(lambda: run.desk.orders.get(order), 1000, "the order heard of")
            stored = await run.desk.orders.get(order)
            assert stored is not None and not stored.complete  # its detail could not be read
            assert _sent(sim, order) == []
            sim.clear_faults()
            await sim_post(sim, f"/_sim/world/orders/{order}/status", {"status": 2})
            await run.until(lambda: len(_sent(sim, order)) >= 2, 1000,
                            "the greeting and the paid message")
    texts = _sent(sim, order)
    assert len(texts) == 2 and texts[0].startswith("Hello")
    assert fault
