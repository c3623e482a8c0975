"""The order desk's store: migration 3, orders with their transitions and outbox rows, chat, alerts."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from state.chat import ChatStore, StoredMessage
from state.db import Store
from state.migrations import MIGRATIONS
from state.notifications import NotificationLog
from state.orders import OrderRecord, OrderStore, Plan, Step
from state.outbox import DONE, EXPIRED, PENDING, SENDING, Outbox, OutboxItem

ORDER = "22812345678901234567"  # 20 digits: more than SQLite INTEGER holds


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "s.db")
    yield s
    await s.close()


def test_migration_3_is_appended(tmp_path: Path) -> None:
    assert len(MIGRATIONS) >= 3 and "CREATE TABLE outbox" in MIGRATIONS[2]


async def test_a_store_at_schema_2_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:2]:
            conn.executescript(script)
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        conn.execute("PRAGMA user_version=2")
    store = await Store.open(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert (await store.fetchone("SELECT value FROM meta WHERE key = 'k'"))[0] == "v"
        cols = {r[1]: r[2] for r in await store.fetchall("PRAGMA table_info(orders)")}
        assert cols["order_number"] == "TEXT" and cols["adv_no"] == "TEXT"
        assert cols["amount"] == "TEXT" and cols["status"] == "INTEGER"
    finally:
        await store.close()


async def test_an_order_its_transitions_and_outbox_rows_are_written_together(store: Store) -> None:
    orders, outbox = OrderStore(store), Outbox(store)
    rec = OrderRecord(ORDER, 2, asset="USDT", amount=Decimal("0.12345678"), total=Decimal("11.41"),
                      source="list")
    items = (OutboxItem(ORDER, "new", "chat", {"uuid": "u-1", "content": "hi"}),)
    plan = Plan(rec, (Step(None, 1, True), Step(1, 2)), items)
    await orders.advance(ORDER, lambda stored: plan, 100.0)
    got = await orders.get(ORDER)
    assert got is not None and got.amount == Decimal("0.12345678") and got.updated_at == 100.0
    assert [(t.old, t.new, t.inferred) for t in await orders.transitions(ORDER)] == [
        (None, 1, True), (1, 2, False)]
    (row,) = await outbox.in_state(PENDING)
    assert (row.order_number, row.status, row.action, row.payload) == (ORDER, "new", "chat",
                                                                      {"uuid": "u-1", "content": "hi"})


async def test_a_failure_while_deciding_writes_nothing(store: Store) -> None:
    orders = OrderStore(store)

    def boom(stored: OrderRecord | None) -> Plan:
        raise RuntimeError("crash between read and write")

    with pytest.raises(RuntimeError):
        await orders.advance(ORDER, boom, 1.0)
    assert await orders.get(ORDER) is None
    assert await Outbox(store).counts() == {}


async def test_the_same_reaction_is_stored_once(store: Store) -> None:
    outbox = Outbox(store)
    item = OutboxItem(ORDER, "new", "chat", {"uuid": "u-1", "content": "hi"})
    assert await outbox.add([item], 1.0) == 1
    assert await outbox.add([OutboxItem(ORDER, "new", "chat", {"uuid": "u-2", "content": "x"})], 2.0) == 0
    assert (await outbox.get(ORDER, "new", "chat")).payload["uuid"] == "u-1"  # type: ignore[union-attr]


async def test_the_states_of_several_orders_rows_are_read_at_once(store: Store) -> None:
    outbox = Outbox(store)
    sent, waiting, other = "20000000000000000001", "20000000000000000002", "20000000000000000003"
    await outbox.add([OutboxItem(sent, "new", "chat"), OutboxItem(waiting, "new", "chat"),
                      OutboxItem(other, "buyer_paid", "chat"), OutboxItem(other, "new", "notify")],
                     1.0)
    row = await outbox.get(sent, "new", "chat")
    assert row is not None and await outbox.claim(row.id, 2.0)
    assert await outbox.finish(row.id, DONE, "message 1", 3.0)
    assert await outbox.states([sent, waiting, other, "29"], "new", "chat") == {
        sent: DONE, waiting: PENDING}  # no greeting row for `other`, nor for an unknown order
    assert await outbox.states([], "new", "chat") == {}


async def test_outbox_rows_move_pending_sending_done_and_never_back(store: Store) -> None:
    outbox = Outbox(store)
    await outbox.add([OutboxItem(ORDER, "new", "chat", {})], 1.0)
    (row,) = await outbox.in_state(PENDING)
    assert await outbox.claim(row.id, 2.0)
    assert not await outbox.claim(row.id, 2.5)  # claimed once
    assert await outbox.release(row.id, 3.0, "not in chat history")
    assert await outbox.claim(row.id, 4.0)
    assert await outbox.finish(row.id, DONE, "message 2123456789012345678", 5.0)
    assert not await outbox.finish(row.id, EXPIRED, "late", 6.0)
    got = await outbox.get(ORDER, "new", "chat")
    assert got is not None and (got.state, got.attempts, got.answer) == (
        DONE, 2, "message 2123456789012345678")
    with pytest.raises(ValueError):
        await outbox.finish(row.id, SENDING, "", 7.0)


async def test_open_orders_orders_changed_since_and_time_in_status(store: Store) -> None:
    orders = OrderStore(store)
    for no, status, at in (("20000000000000000001", 1, 10.0), ("20000000000000000002", 2, 20.0),
                           ("20000000000000000003", 4, 30.0)):
        rec = OrderRecord(no, status, created_at=at, source="list")
        await orders.advance(no, lambda s, r=rec: Plan(r, (Step(None, r.status),)), at)
    assert [o.order_number[-1] for o in await orders.open_orders()] == ["1", "2"]
    assert [o.order_number[-1] for o in await orders.touched_since(25.0)] == ["1", "2", "3"]
    assert [(o.order_number[-1], at) for o, at in await orders.in_status_since(2, 25.0)] == [("2", 20.0)]
    assert await orders.in_status_since(2, 15.0) == []
    assert await orders.count_open() == 2


async def test_chat_messages_are_stored_once_and_found_by_uuid_or_content(store: Store) -> None:
    chats = ChatStore(store)
    msg = StoredMessage("2123456789012345678", ORDER, "out", "text", "Hello!", 50.0, "u-1")
    assert await chats.add(msg) and not await chats.add(msg)
    assert (await chats.find_own(ORDER, "u-1", "other", 0.0)) == msg
    assert (await chats.find_own(ORDER, "u-9", "Hello!", 40.0)) == msg  # Binance's own uuid
    assert await chats.find_own(ORDER, "u-9", "Hello!", 60.0) is None  # sent before the row
    assert await chats.find_own("29999999999999999999", "u-1", "Hello!", None) is None
    assert await chats.count("out") == 1


async def test_a_message_read_again_is_not_written_again(store: Store) -> None:
    """History reads return messages already stored: each costs no write transaction, even
    in a second ChatStore on the same file (a restarted bot) after the first write."""
    writes: list[str] = []
    transaction = store.transaction

    def counted() -> Any:
        writes.append("tx")
        return transaction()

    store.transaction = counted  # type: ignore[method-assign]
    chats = ChatStore(store)
    msgs = [StoredMessage(f"21{i}", ORDER, "in", "text", f"m{i}", float(i), None) for i in range(3)]
    assert [await chats.add(m) for m in msgs] == [True, True, True]
    assert [await chats.add(m) for m in msgs] == [False, False, False]
    assert len(writes) == 3 and await chats.count() == 3
    again = ChatStore(store)  # knows nothing yet: the store answers, once per message
    assert [await again.add(m) for m in msgs] == [False, False, False]
    assert [await again.add(m) for m in msgs] == [False, False, False]
    assert len(writes) == 6


async def test_notifications_are_counted_per_channel(store: Store) -> None:
    log = NotificationLog(store)
    await log.record("a", "new", 100.0, ["log", "telegram"])
    await log.record("b", "new", 200.0, ["log"])
    assert await log.last_sent("a") == 100.0 and await log.last_sent("c") is None
    assert await log.sent_on("telegram", 0.0) == 1 and await log.sent_on("log", 150.0) == 1
    assert await log.sent_on("tele", 0.0) == 0
