"""Orders and their status transitions.

`advance` is the one write path: inside one BEGIN IMMEDIATE transaction it reads
the stored order, lets the caller decide (steps to record, outbox rows to add),
and writes the order, its transitions and the outbox rows together. So a
transition and its side effects are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any

from state.db import Store, where
from state.outbox import OutboxItem, insert_rows

OPEN_STATUSES = (1, 2, 3)

_COLUMNS = ("order_number, adv_no, side, asset, fiat, amount, total, price, status, counterparty,"
            " pay_method, created_at, updated_at, source")


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What the bot knows of one order. Money is Decimal; ids are strings; times epoch seconds."""

    order_number: str
    status: int
    adv_no: str | None = None
    side: str | None = None  # the merchant's side: SELL or BUY
    asset: str | None = None
    fiat: str | None = None
    amount: Decimal | None = None
    total: Decimal | None = None
    price: Decimal | None = None
    counterparty: str | None = None
    pay_method: str | None = None
    created_at: float | None = None
    updated_at: float = 0.0
    source: str = ""

    @property
    def complete(self) -> bool:
        """True when the amounts are known (enough for a message or an alert)."""
        return None not in (self.amount, self.total, self.asset)

    @property
    def is_open(self) -> bool:
        """True while the order is trading, paid or in appeal."""
        return self.status in OPEN_STATUSES

    def merged(self, newer: OrderRecord) -> OrderRecord:
        """This record with every field `newer` knows (None never erases a known value)."""
        known = {f.name: getattr(newer, f.name) for f in fields(newer)
                 if getattr(newer, f.name) is not None}
        return replace(self, **known)


@dataclass(frozen=True, slots=True)
class Step:
    """One status transition; `old` is None at the first sighting."""

    old: int | None
    new: int
    inferred: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What `advance`'s caller decided: the row to store, transitions, outbox rows."""

    record: OrderRecord
    steps: tuple[Step, ...] = ()
    items: tuple[OutboxItem, ...] = ()
    write: bool = True


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One stored transition."""

    order_number: str
    old: int | None
    new: int
    at: float
    inferred: bool
    source: str


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _record(r: Sequence[Any]) -> OrderRecord:
    return OrderRecord(
        order_number=r[0], adv_no=r[1], side=r[2], asset=r[3], fiat=r[4], amount=_dec(r[5]),
        total=_dec(r[6]), price=_dec(r[7]), status=int(r[8]), counterparty=r[9], pay_method=r[10],
        created_at=r[11], updated_at=r[12], source=r[13])


class OrderStore:
    """Writes and reads orders and order_transitions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # orders written through this object, committed: what its owner (the desk, the one
        # writer) read of the orders stays true while this is unchanged
        self.writes = 0

    async def advance(self, order_number: str, decide: Callable[[OrderRecord | None], Plan],
                      now: float) -> Plan:
        """Read the order, let `decide` plan, write the plan: all in one transaction."""
        async with self.store.transaction() as db:
            async with db.execute(f"SELECT {_COLUMNS} FROM orders WHERE order_number = ?",
                                  (order_number,)) as cur:
                found = await cur.fetchone()
            plan = decide(_record(found) if found else None)
            if not plan.write:
                return plan
            o = replace(plan.record, updated_at=now)
            await db.execute(
                f"INSERT INTO orders ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(order_number) DO UPDATE SET adv_no=excluded.adv_no,"
                " side=excluded.side, asset=excluded.asset, fiat=excluded.fiat,"
                " amount=excluded.amount, total=excluded.total, price=excluded.price,"
                " status=excluded.status, counterparty=excluded.counterparty,"
                " pay_method=excluded.pay_method, created_at=excluded.created_at,"
                " updated_at=excluded.updated_at, source=excluded.source",
                (o.order_number, o.adv_no, o.side, o.asset, o.fiat, _text(o.amount),
                 _text(o.total), _text(o.price), o.status, o.counterparty, o.pay_method,
                 o.created_at, o.updated_at, o.source))
            for step in plan.steps:
                await db.execute(
                    "INSERT OR IGNORE INTO order_transitions (order_number, old, new, at, inferred,"
                    " source) VALUES (?, ?, ?, ?, ?, ?)",
                    (order_number, step.old, step.new, now, int(step.inferred), o.source))
            await insert_rows(db, plan.items, now)
        self.writes += 1
        return replace(plan, record=o)

    async def get(self, order_number: str) -> OrderRecord | None:
        """The stored order, or None."""
        r = await self.store.fetchone(f"SELECT {_COLUMNS} FROM orders WHERE order_number = ?",
                                      (order_number,))
        return _record(r) if r else None

    async def open_orders(self, limit: int = 200) -> list[OrderRecord]:
        """Orders trading, paid or in appeal, oldest first."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM orders WHERE status IN (1, 2, 3)"
            " ORDER BY created_at, order_number LIMIT ?", (limit,))
        return [_record(r) for r in rows]

    async def touched_since(self, since: float, limit: int = 200) -> list[OrderRecord]:
        """Orders that are open or changed at or after `since`."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM orders WHERE status IN (1, 2, 3) OR updated_at >= ?"
            " ORDER BY created_at, order_number LIMIT ?", (since, limit))
        return [_record(r) for r in rows]

    async def recent(self, limit: int = 5) -> list[OrderRecord]:
        """The newest orders."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM orders ORDER BY created_at DESC, order_number DESC LIMIT ?",
            (limit,))
        return [_record(r) for r in rows]

    async def transitions(
        self, order_number: str | None = None, since: float | None = None,
        until: float | None = None,
    ) -> list[TransitionRow]:
        """Transitions in the order they were stored (all orders, or one; optionally a time span)."""
        where_sql, params = where(order_number=order_number, at__ge=since, at__le=until)
        rows = await self.store.fetchall(
            "SELECT order_number, old, new, at, inferred, source FROM order_transitions"
            f"{where_sql} ORDER BY id", params)
        return [TransitionRow(r[0], r[1], int(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    async def in_status_since(self, status: int, before: float) -> list[tuple[OrderRecord, float]]:
        """Orders now in `status` that entered it at or before `before`, with that time."""
        cols = ", ".join(f"o.{c.strip()}" for c in _COLUMNS.split(","))
        rows = await self.store.fetchall(
            f"SELECT {cols}, t.at FROM orders o JOIN order_transitions t"
            " ON t.order_number = o.order_number AND t.new = o.status"
            " WHERE o.status = ? AND t.at <= ? ORDER BY t.at", (status, before))
        return [(_record(r), float(r[14])) for r in rows]

    async def count_open(self) -> int:
        """How many stored orders are open."""
        r = await self.store.fetchone("SELECT COUNT(*) FROM orders WHERE status IN (1, 2, 3)")
        return int(r[0]) if r else 0
