"""An answer whose shape changed (issue 11, item 6): the orders capability goes down, /readyz
follows, one alert names the field, and everything recovers once the shape is right again.
On the stepped clock: the probes and polls happen at the same simulated times on any machine."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from loguru import logger

from simulator.app import Simulator, run_simulator
from tests.e2e.support import START_MS, SteppedRun, stepped_bot
from tests.support import outcome, write_config

ESSENTIAL_ORDERS = """
[capabilities]
essential = ["orders"]
probe_first = 5
probe_cap = 10
probe_jitter = 0
"""


async def _ready(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(url + "/readyz") as r:
        return r.status, await r.json()


async def _open_order(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{sim.base_url}/_sim/world/orders",
            json={"side": "SELL", "asset": "USDT", "fiat": "RUB"}) as r:
        assert r.status == 200, await r.text()


async def _state(r: SteppedRun, name: str, state: str, within: float) -> None:
    await r.until(lambda: str(r.bot.registry.status(name).state) == state, within,
                  f"capability {name} {state}")


async def test_a_renamed_field_takes_orders_down_with_one_alert_and_it_recovers(
        tmp_path: Path) -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    config = write_config(tmp_path / "bot.toml", market_interval=5, tail=ESSENTIAL_ORDERS,
                          bot="max_response_bytes = 1048576")
    try:
        async with run_simulator("calm", stepped=True, start_ms=START_MS) as sim, \
                stepped_bot(sim, config, tmp_path / "bot.db", web=True) as r:
            assert r.bot.client.max_response_bytes == 1048576  # [bot] max_response_bytes
            listed = outcome(r.bot, "list_orders", "ok")
            await _open_order(sim)
            await r.wait(listed, 60, "the order listed")
            for essential in ("market", "repricing", "orders"):  # ready once seen working
                await _state(r, essential, "enabled", 60)
            assert (await _ready(r.web.url))[0] == 200

            sim.add_fault("reshape", endpoint="list_orders", rename={"orderStatus": "status"})
            sim.add_fault("reshape", endpoint="order_summary", null_data=True)
            await _state(r, "orders", "disabled", 60)
            status, ready = await _ready(r.web.url)
            assert status == 503 and [d["capability"] for d in ready["down"]] == ["orders"]
            health = r.bot.registry.health["list_orders"]
            assert str(health.state) == "failing"
            assert health.message == ("the exchange's answer changed shape: "
                                      "data[0].orderStatus: field required")
            for _ in range(3):  # re-probed, still the wrong shape: nothing said again
                probed = outcome(r.bot, "list_orders", "ShapeChanged")
                await r.wait(probed, 60, "a probe of list_orders")
            alerts = [w for w in warnings if w.startswith("ALERT") and "data[0].orderStatus" in w]
            assert len(alerts) == 2 and "[bad_answer] list_orders" in alerts[0]
            assert "[capability_lost] Capability orders lost" in alerts[1]  # names its causes
            naming = [w for w in warnings if "data[0].orderStatus" in w]
            # said once each, never once per poll: the capability's change and the two alerts
            assert len(naming) == 3 and naming[0].startswith("capability orders")

            sim.clear_faults()
            await _state(r, "orders", "enabled", 60)
            assert (await _ready(r.web.url))[0] == 200
            assert str(r.bot.registry.health["list_orders"].state) == "available"
    finally:
        logger.remove(sink)
