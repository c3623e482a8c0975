"""Alerts that repeat until acknowledged, unanswered chats (SLA), inventory, and the three
ways to acknowledge (console /ack is in tests/e2e/test_console.py): all on a stepped clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from bot.alerts.acks import UnknownAlert, acknowledge
from bot.alerts.watch import AlertWatch, InventoryWatch
from bot.notify import Note, Notifications
from config.models import AppConfig
from p2pbot.cli import main
from state.alerts import AlertStore
from state.chat import ChatStore, StoredMessage
from state.db import Store
from state.notifications import NotificationLog
from state.orders import OrderStore

ORDER = "22812345678901234567"
T0 = 1_800_000_000.0


class SteppedClock:
    """Time moves only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Phone:
    """A notification channel that keeps what it was sent."""

    name: str = "phone"
    got: list[Note] = field(default_factory=list)

    async def send(self, note: Note) -> str:
        self.got.append(note)
        return "ok"

    def texts(self) -> list[str]:
        return [n.text for n in self.got]


@dataclass
class Desk:
    store: Store
    clock: SteppedClock
    phone: Phone
    notes: Notifications
    watch: AlertWatch
    alerts: AlertStore
    chats: ChatStore


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    store = await Store.open(tmp_path / "alerts.db")
    clock, phone = SteppedClock(), Phone()
    notes = Notifications([phone], NotificationLog(store), clock, dedupe_minutes=0)
    app = AppConfig.model_validate({"alerts": {"repeat_minutes": 15,
                                               "chat_sla": {"paid": 3, "trading": 10}}})
    watch = AlertWatch(orders=OrderStore(store), alerts=AlertStore(store), notes=notes,
                       clock=clock, config=lambda: app)
    try:
        yield Desk(store, clock, phone, notes, watch, AlertStore(store), ChatStore(store))
    finally:
        await store.close()


async def order_in(d: Desk, status: int, number: str = ORDER) -> None:
    """An order stored in `status`, entered now."""
    await d.store.execute(
        "INSERT INTO orders (order_number, adv_no, side, asset, fiat, amount, total, price, status,"
        " counterparty, pay_method, created_at, updated_at, source) VALUES (?, '1', 'SELL', 'USDT',"
        " 'RUB', '100', '9250', '92.50', ?, 'bob', 'Tinkoff', ?, ?, 'list')"
        " ON CONFLICT(order_number) DO UPDATE SET status = excluded.status",
        (number, status, d.clock.now, d.clock.now))
    await d.store.execute("INSERT OR IGNORE INTO order_transitions (order_number, old, new, at,"
                          " source) VALUES (?, NULL, ?, ?, 'list')", (number, status, d.clock.now))


async def desk_alerted(d: Desk, name: str, number: str = ORDER) -> None:
    """The order desk's outbox sent the first alert (as bot.orders.outbox does)."""
    await d.notes.deliver(Note(name, f"order:{number}:{name}", f"{name} {number}", d.clock.now))


async def test_a_paid_alert_repeats_until_acknowledged(desk: Desk) -> None:
    await order_in(desk, 2)
    await desk_alerted(desk, "buyer_paid")
    await desk.watch.check()
    assert len(desk.phone.got) == 1  # the desk's own; registered, not repeated yet
    (row,) = await desk.alerts.open()
    assert row.kind == "buyer_paid"
    desk.clock.now += 14 * 60
    await desk.watch.check()
    assert len(desk.phone.got) == 1
    desk.clock.now += 60
    await desk.watch.check()
    assert len(desk.phone.got) == 2
    assert desk.phone.texts()[-1].startswith(f"[alert {row.id}, again (2)] Buyer paid: order {ORDER}")
    assert f"/ack {row.id}" in desk.phone.texts()[-1]
    await acknowledge(desk.alerts, str(row.id), "telegram:alice", desk.clock.now)
    for _ in range(4):
        desk.clock.now += 15 * 60
        await desk.watch.check()
    assert len(desk.phone.got) == 2  # acknowledged: never again
    acked = await desk.alerts.by_id(row.id)
    assert acked is not None and acked.acked_by == "telegram:alice"


async def test_an_alert_stops_when_the_order_moves_on(desk: Desk) -> None:
    await order_in(desk, 3)
    await desk_alerted(desk, "appeal")
    await desk.watch.check()
    await order_in(desk, 4)  # completed
    desk.clock.now += 60 * 60
    await desk.watch.check()
    assert len(desk.phone.got) == 1
    assert await desk.alerts.open() == []
    (row,) = await desk.alerts.recent()
    assert row.resolved_at == desk.clock.now


async def test_a_stuck_alert_repeats_and_an_order_number_acknowledges_it(desk: Desk) -> None:
    await order_in(desk, 2)
    await desk_alerted(desk, "buyer_paid")
    await desk_alerted(desk, "stuck")
    await desk.watch.check()
    assert {r.kind for r in await desk.alerts.open()} == {"buyer_paid", "stuck"}
    rows = await acknowledge(desk.alerts, ORDER, "cli:me", desk.clock.now)
    assert len(rows) == 2
    desk.clock.now += 60 * 60
    await desk.watch.check()
    assert len(desk.phone.got) == 2  # the two first alerts, no repeat
    with pytest.raises(UnknownAlert):
        await acknowledge(desk.alerts, "999", "cli:me", desk.clock.now)


async def say(d: Desk, direction: str, at: float, text: str = "hello?") -> None:
    await d.chats.add(StoredMessage(f"m{at}{direction}", ORDER, direction, "text", text, at, None))


async def test_an_unanswered_message_on_a_paid_order_alerts_after_its_sla(desk: Desk) -> None:
    await order_in(desk, 2)
    await say(desk, "in", desk.clock.now, "I paid, please release")
    desk.clock.now += 2 * 60
    await desk.watch.check()
    assert desk.phone.got == []  # 2 min: within the 3 min of a paid order
    desk.clock.now += 60
    await desk.watch.check()
    (text,) = desk.phone.texts()
    (row,) = await desk.alerts.open()
    assert text.startswith(f"[alert {row.id}] Unanswered chat: order {ORDER} (paid): bob wrote "
                           "3 min ago") and "I paid, please release" in text
    await say(desk, "out", desk.clock.now, "checking")
    desk.clock.now += 60 * 60
    await desk.watch.check()
    assert len(desk.phone.got) == 1 and await desk.alerts.open() == []  # answered: resolved


async def test_a_trading_order_has_its_own_sla_and_repeats(desk: Desk) -> None:
    await order_in(desk, 1)
    await say(desk, "in", desk.clock.now)
    desk.clock.now += 9 * 60
    await desk.watch.check()
    assert desk.phone.got == []
    desk.clock.now += 60
    await desk.watch.check()
    assert len(desk.phone.got) == 1
    desk.clock.now += 15 * 60
    await desk.watch.check()
    assert len(desk.phone.got) == 2 and "again (2)" in desk.phone.texts()[-1]


def test_the_cli_lists_and_acknowledges(tmp_path: Path, capsys, monkeypatch) -> None:
    import asyncio

    for name in list(os.environ):
        if name.startswith("P2PBOT_"):
            monkeypatch.delenv(name)
    db = tmp_path / "cli.db"

    async def seed() -> int:
        store = await Store.open(db)
        try:
            row = await AlertStore(store).raise_(f"order:{ORDER}:appeal", "appeal", "Appeal!", T0)
            return row.id
        finally:
            await store.close()

    alert_id = asyncio.run(seed())
    assert main(["alerts", "--db", str(db)]) == 0
    assert f"[alert {alert_id}] appeal (open, sent 1x): Appeal!" in capsys.readouterr().out
    assert main(["ack", str(alert_id), "--db", str(db)]) == 0
    assert "acknowledged: " in capsys.readouterr().out
    assert main(["alerts", "--db", str(db)]) == 0
    assert "no open alert" in capsys.readouterr().out
    assert main(["ack", "77", "--db", str(db)]) == 2
    assert "no alert 77" in capsys.readouterr().err


# --- inventory ---------------------------------------------------------------------------


async def test_inventory_alerts_once_when_an_ad_falls_toward_its_minimum_order(desk: Desk) -> None:
    from bot.binance.models import Ad
    from bot.events import OwnAdsUpdate
    from bot.pricing.engine import AdRuntime, to_own
    from config.loader import load_ad
    from config.models import AdConfig
    from strategies.base import Side

    cfg = AdConfig.model_validate({"name": "sell", "adv_no": "1", "strategy": "fixed",
                                   "params": {"price": "92.5"}, "guards": {"floor": "80"}})
    ad = AdRuntime(load_ad(0, cfg))
    app = AppConfig.model_validate({"inventory": {"alert_orders": 3}})
    watch = InventoryWatch(desk.notes, lambda: [ad], lambda: app)

    def read(left: str) -> OwnAdsUpdate:
        own = Ad.model_validate({"advNo": "1", "tradeType": "SELL", "asset": "USDT",
                                 "fiatUnit": "RUB", "price": "92.50", "surplusAmount": left,
                                 "minSingleTransAmount": "1000", "maxSingleTransAmount": "50000"})
        ad.own = to_own(own, Side.SELL)
        return OwnAdsUpdate(ads=(own,), at=desk.clock.now)  # type: ignore[call-arg]

    await watch.on_own_ads(read("100"))  # 9250 RUB: over 3 x 1000
    assert desk.phone.got == []
    await watch.on_own_ads(read("30"))  # 2775 RUB: under 3000
    await watch.on_own_ads(read("20"))
    (text,) = desk.phone.texts()
    assert text.startswith("Inventory: ad sell has 30 USDT left (2775.00 RUB, 2.8 minimum orders")
    await watch.on_own_ads(read("500"))  # refilled
    await watch.on_own_ads(read("10"))  # falls again: said again
    assert len(desk.phone.got) == 2
    assert Decimal(ad.own.available) == Decimal(10)  # type: ignore[union-attr]
