"""Order history is read in fixed windows (span <= 30 days, rows <= 100), against a simulator that
refuses open windows (`history_window_required`) and takes new orders between the bot's pages."""

from __future__ import annotations

from typing import Any

from bot.binance.p2p import P2PApi
from bot.capabilities.registry import EndpointState
from simulator.app import Simulator, run_simulator
from tests.e2e.support import SELL_ADV, START_MS, registry_on, scenario
from tests.support import ClientClock

DAY_MS = 86_400_000
ORDERS = {"history_window_required": True, "pay_seconds": [60, 60], "release_seconds": [60, 60],
          "cancel_probability": "0", "timeout_probability": "0", "appeal_probability": "0"}


def _open(sim: Simulator, at_ms: int) -> str:
    world: Any = sim.world
    ad = world.account.ads[SELL_ADV]
    (event,) = world.orders.create(ad, world.account.market_of(ad).scales, at_ms)
    return str(event.order.order_no)


def _orders_arrive_between_pages(sim: Simulator) -> list[str]:
    """Every order_history call lets a new order in first: the list moves between pages."""
    world: Any = sim.world
    handle, arrived = world.handle, []

    def moving(endpoint: str, query: dict[str, str], body: Any) -> Any:
        if endpoint == "order_history":
            arrived.append(_open(sim, sim.clock.now_ms() + 1000 * (1 + len(arrived))))
        return handle(endpoint, query, body)

    world.handle = moving
    return arrived


async def test_history_in_fixed_windows_reads_each_order_once_while_orders_arrive(tmp_path) -> None:
    async with run_simulator(scenario(speed=0, orders=ORDERS, three_ads=False),
                             start_ms=START_MS) as sim:
        end = sim.clock.now_ms()
        step = 40 * DAY_MS // 300  # 300 orders over 40 days: two windows, three pages in the first
        placed = [_open(sim, end - 40 * DAY_MS + i * step) for i in range(300)]
        arrived = _orders_arrive_between_pages(sim)
        async with registry_on(sim, ClientClock(sim.clock), tmp_path / "r.db") as (registry, _):
            api = P2PApi(registry)
            rows = await api.order_history_between("SELL", end - 40 * DAY_MS, end)
            state = await registry.probe("order_history")
    got = [r.order_number for r in rows]
    assert len(got) == len(set(got)) and set(got) == set(placed)  # none skipped, none twice
    assert arrived and not set(arrived) & set(got)  # the window's end is fixed
    calls = sim.requests("order_history")
    assert len(calls) >= 5  # 3 + 1 pages in two windows, and the probe
    assert all(int(c["query"]["endTimestamp"]) - int(c["query"]["startTimestamp"]) <= 30 * DAY_MS
               and int(c["query"]["rows"]) <= 100 for c in calls)
    assert state is EndpointState.AVAILABLE  # the probe reads a fixed window too
