"""The report matches the simulator's record of orders after a stepped simulated night.

The whole bot runs eight simulated hours of trading on three ads, 20:00 to 04:00 in the
merchant's time zone, so the orders fall on two local days (tests.e2e.support, the stepped
clock); then `p2pbot report`'s core reads the store and is compared with the simulator
world's orders: counts, completed and cancelled, volume and fiat by ad, side and day,
average prices, and the merchant's release times. A second read with orders missing from
the store shows the order history filling them in.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from bot.chat.session import ChatTimings
from bot.commands.report import make_report
from config.settings import Settings
from simulator.app import Simulator, run_simulator
from state.db import Store
from tests.e2e.support import (
    START_MS,
    Lives,
    Stepper,
    config_text,
    loop_watch,
    scenario,
)

pytestmark = pytest.mark.slow  # a simulated night of orders and its report


TZ = ZoneInfo("America/Sao_Paulo")
START = START_MS + 13 * 3600_000  # 20:00 local (START_MS is 07:00 in Sao Paulo)
HOURS = 8.0  # to 04:00: both sides of the local midnight
ORDERS_INTERVAL = 30
CLOSING_MS = 3 * 3600_000


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, TZ).date()


def expected(sim: Simulator) -> dict[tuple[date, str, str], dict[str, Any]]:
    """The simulator's record grouped as the report groups it."""
    groups: dict[tuple[date, str, str], dict[str, Any]] = defaultdict(
        lambda: {"orders": 0, "completed": 0, "cancelled": 0, "volume": Decimal(0),
                 "fiat": Decimal(0)})
    for o in sim.world.orders.orders.values():
        g = groups[(day_of(o.create_ms), o.ad.adv_no, o.side)]
        g["orders"] += 1
        if o.status == 4:
            g["completed"] += 1
            g["volume"] += o.amount
            g["fiat"] += o.total
        elif o.status in (6, 7):
            g["cancelled"] += 1
    return dict(groups)


def got(report: Any) -> dict[tuple[date, str, str], dict[str, Any]]:
    return {(r.day, r.adv_no, r.side): {"orders": r.bucket.orders, "completed": r.bucket.completed,
                                        "cancelled": r.bucket.cancelled,
                                        "volume": r.bucket.volume, "fiat": r.bucket.fiat}
            for r in report.rows}


def settings(sim: Simulator, db: Path) -> Settings:
    return Settings(db=db, base_url=sim.base_url, api_key=SecretStr(sim.api_key),
                    api_secret=SecretStr(sim.api_secret or ""))


async def test_the_report_matches_the_simulators_orders(tmp_path: Path, inline_store: None) -> None:
    scen = scenario(speed=0, orders={
        "rate_per_hour": 4, "pay_seconds": [60, 600], "release_seconds": [60, 1800],
        "appeal_probability": "0.05", "appeal_seconds": [300, 900], "cancel_probability": "0.1",
        "timeout_probability": "0.05"})
    timings = ChatTimings(keepalive=600, silence=600, ack=120, rest_poll=300)
    db = tmp_path / "bot.db"
    async with run_simulator(scen, start_ms=START, stepped=True) as sim:
        config = tmp_path / "bot.toml"
        config.write_text(config_text(orders_interval=ORDERS_INTERVAL, chat={}).replace(
            "[bot]\n", '[bot]\ntimezone = "America/Sao_Paulo"\n'))
        lives = Lives(sim, config, db, 11, timings)
        stepper = Stepper(sim)
        with loop_watch(lives):
            life = lives.start()
            end = START + int(HOURS * 3600_000)
            await stepper.to(end)
            book = sim.world.orders
            book.cfg = book.cfg.model_copy(update={"rate_per_hour": Decimal(0)})  # closing time
            await stepper.to(end + CLOSING_MS)
            assert not any(o.status in (1, 2, 3) for o in book.orders.values())
            await stepper.to(end + CLOSING_MS + 5 * ORDERS_INTERVAL * 1000)  # last ends seen
            await lives.stop()
            assert life.error is None, life.error
        first, last = day_of(START), day_of(end + CLOSING_MS)
        assert (last - first).days == 1
        report, note = await make_report(settings(sim, db), first, last, TZ, exchange=False)
        truth = expected(sim)
        assert note == ""
        assert sum(g["orders"] for g in truth.values()) >= 30, "too quiet a night to prove anything"
        assert {day for day, _, _ in truth} == {first, last}  # orders on both local days
        assert got(report) == truth
        assert report.sources == {"store": report.total.orders}
        _check_prices_and_releases(report, sim)

        # orders the store never saw: the order history fills them in
        missing = sorted(sim.world.orders.orders)[::3]
        store = await Store.open(db)
        for no in missing:
            await store.execute("DELETE FROM orders WHERE order_number = ?", (no,))
        await store.close()
        partial, _ = await make_report(settings(sim, db), first, last, TZ, exchange=False)
        assert partial.total.orders == report.total.orders - len(missing)
        filled, note = await make_report(settings(sim, db), first, last, TZ, exchange=True)
        assert note == ""
        assert got(filled) == truth
        assert filled.sources == {"store": report.total.orders - len(missing),
                                  "history": len(missing)}
        assert sim.requests("order_history"), "read from the exchange"


def _check_prices_and_releases(report: Any, sim: Simulator) -> None:
    orders = list(sim.world.orders.orders.values())
    for side, bucket in (("SELL", report.spreads[0].sell), ("BUY", report.spreads[0].buy)):
        done = [o for o in orders if o.side == side and o.status == 4]
        assert bucket.volume == sum(o.amount for o in done)
        assert bucket.average == sum(o.total for o in done) / sum(o.amount for o in done)
    # the merchant's release time (SELL), as the bot saw it: within a poll of the truth
    true = [(o.close_ms - dict((s, t) for t, s in o.history)[2]) / 1000 for o in orders
            if o.side == "SELL" and o.status == 4 and 2 in dict((s, t) for t, s in o.history)]
    seen = report.releases[0]
    assert len(seen.seconds) >= len(true) * 0.9
    assert abs((seen.median() or 0) - statistics.median(true)) <= 2 * ORDERS_INTERVAL
