"""The outbox: every side effect of the order desk, keyed by (order, status, action).

A row is written in the same transaction as the order transition that caused it
(`insert_rows` takes the open connection), claimed (`pending` -> `sending`)
before it is sent, and finished (`done`, `failed`, `expired`) with the answer.
A row left `sending` by a crash is reconciled at the next start. A chat message that
drew neither its echo nor an error frame is `sent`: taken as sent, and confirmed
(`done`) or sent again (`pending`) once the order's chat history has been read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from state.db import Store

PENDING, SENDING, DONE, FAILED, EXPIRED = "pending", "sending", "done", "failed", "expired"
DRY_RUN = "dry_run"  # finished without sending: `[bot] dry_run` was on; the answer says what
SENT = "sent"  # went out without an echo or an error frame: to be confirmed from the chat history
STATES = (PENDING, SENDING, SENT, DONE, FAILED, EXPIRED, DRY_RUN)
FINISHED = (DONE, FAILED, EXPIRED, DRY_RUN)

_COLUMNS = ("id, order_number, status, action, payload, state, created_at, updated_at, attempts,"
            " answer")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A side effect to record: what the row will hold before it is sent."""

    order_number: str
    status: str  # the reaction: new, buyer_paid, completed, cancelled, appeal, stuck
    action: str  # chat | notify
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored outbox row."""

    id: int
    order_number: str
    status: str
    action: str
    payload: dict[str, Any]
    state: str
    created_at: float
    updated_at: float
    attempts: int
    answer: str | None

    @property
    def key(self) -> str:
        """The row's identity as text: order:status:action."""
        return f"{self.order_number}:{self.status}:{self.action}"


def _row(r: Sequence[Any]) -> OutboxRow:
    return OutboxRow(int(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], int(r[8]),
                     r[9])


async def insert_rows(db: aiosqlite.Connection, items: Iterable[OutboxItem], now: float) -> int:
    """Insert rows inside an open transaction; an existing (order, status, action) is kept."""
    added = 0
    for item in items:
        cur = await db.execute(
            "INSERT OR IGNORE INTO outbox (order_number, status, action, payload, state, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.order_number, item.status, item.action, json.dumps(item.payload), PENDING, now,
             now),
        )
        added += cur.rowcount if cur.rowcount and cur.rowcount > 0 else 0
    return added


class Outbox:
    """Reads and moves outbox rows."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.writes = 0  # rows added or moved through this object, committed (as OrderStore's)

    async def add(self, items: Iterable[OutboxItem], now: float) -> int:
        """Insert rows in their own transaction; returns how many were new."""
        async with self.store.transaction() as db:
            added = await insert_rows(db, items, now)
        self.writes += 1
        return added

    async def in_state(self, state: str, action: str | None = None,
                       limit: int = 500) -> list[OutboxRow]:
        """Rows in `state` (optionally of one action), oldest first."""
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE state = ?"
        params: list[Any] = [state]
        if action is not None:
            sql += " AND action = ?"
            params.append(action)
        rows = await self.store.fetchall(sql + " ORDER BY id LIMIT ?", [*params, limit])
        return [_row(r) for r in rows]

    async def finished_between(self, state: str, since: float | None = None,
                               until: float | None = None, limit: int = 1000) -> list[OutboxRow]:
        """Rows finished in `state` within [since, until], oldest first (the last `limit`)."""
        sql = f"SELECT {_COLUMNS} FROM outbox WHERE state = ? AND updated_at >= ? AND updated_at <= ?"
        rows = await self.store.fetchall(
            f"SELECT * FROM ({sql} ORDER BY updated_at DESC, id DESC LIMIT ?)"
            " ORDER BY updated_at, id",
            (state, -1.0 if since is None else since,
             1e300 if until is None else until, limit))
        return [_row(r) for r in rows]

    async def get(self, order_number: str, status: str, action: str) -> OutboxRow | None:
        """The row for (order, status, action), if any."""
        r = await self.store.fetchone(
            f"SELECT {_COLUMNS} FROM outbox WHERE order_number = ? AND status = ? AND action = ?",
            (order_number, status, action))
        return _row(r) if r else None

    async def states(self, order_numbers: Sequence[str], status: str,
                     action: str) -> dict[str, str]:
        """The state of the (order, status, action) row of each order that has one, in one
        read (the terminal view asks it of the last few orders after every order poll)."""
        if not order_numbers:
            return {}
        marks = ",".join("?" * len(order_numbers))
        rows = await self.store.fetchall(
            f"SELECT order_number, state FROM outbox WHERE order_number IN ({marks})"
            " AND status = ? AND action = ?", (*order_numbers, status, action))
        return {str(r[0]): str(r[1]) for r in rows}

    async def for_order(self, order_number: str) -> list[OutboxRow]:
        """Every row of an order, oldest first."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM outbox WHERE order_number = ? ORDER BY id", (order_number,))
        return [_row(r) for r in rows]

    async def _move(self, row_id: int, to: str, now: float, from_states: tuple[str, ...],
                    answer: str | None = None, attempt: bool = False) -> bool:
        marks = ",".join("?" * len(from_states))
        bump = ", attempts = attempts + 1" if attempt else ""
        keep = "answer" if answer is None else "?"
        async with self.store.transaction() as db:
            cur = await db.execute(
                f"UPDATE outbox SET state = ?, updated_at = ?, answer = {keep}{bump}"
                f" WHERE id = ? AND state IN ({marks})",
                (to, now, *(() if answer is None else (answer,)), row_id, *from_states))
            moved = bool(cur.rowcount)
        self.writes += 1
        return moved

    async def claim(self, row_id: int, now: float) -> bool:
        """pending -> sending (one more attempt); False when another path moved it first."""
        return await self._move(row_id, SENDING, now, (PENDING,), attempt=True)

    async def finish(self, row_id: int, state: str, answer: str, now: float) -> bool:
        """pending/sending/sent -> done, failed or expired, with the answer."""
        if state not in FINISHED:
            raise ValueError(f"not a final outbox state: {state}")
        return await self._move(row_id, state, now, (PENDING, SENDING, SENT), answer)

    async def mark_sent(self, row_id: int, now: float, answer: str) -> bool:
        """sending -> sent: out without an echo; the chat history confirms it later."""
        return await self._move(row_id, SENT, now, (SENDING,), answer)

    async def release(self, row_id: int, now: float, answer: str) -> bool:
        """sending/sent -> pending: it was not sent after all (reconciled)."""
        return await self._move(row_id, PENDING, now, (SENDING, SENT), answer)

    async def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        rows = await self.store.fetchall("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {r[0]: int(r[1]) for r in rows}
