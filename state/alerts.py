"""Alerts that repeat until acknowledged: paid, appeal and stuck orders, unanswered chats.

One row per alert key (`order:<no>:buyer_paid`, `chat:<no>:waiting`...): its short id is what
a person acknowledges (`/ack 12`, `p2pbot ack 12`, the status page). An acknowledged alert
is never repeated; a resolved one (the order moved on, the chat was answered) neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from state.db import Store

_COLUMNS = "id, key, kind, text, first_at, last_at, sent, acked_at, acked_by, resolved_at"


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert and where it stands."""

    id: int
    key: str
    kind: str
    text: str
    first_at: float
    last_at: float  # when it was last sent
    sent: int  # how many times it was sent
    acked_at: float | None = None
    acked_by: str | None = None
    resolved_at: float | None = None

    @property
    def open(self) -> bool:
        """Neither acknowledged nor resolved: it repeats."""
        return self.acked_at is None and self.resolved_at is None


def _row(r: Sequence[Any]) -> AlertRow:
    return AlertRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4]), float(r[5]),
                    int(r[6]), None if r[7] is None else float(r[7]),
                    None if r[8] is None else str(r[8]), None if r[9] is None else float(r[9]))


class AlertStore:
    """Writes and reads the alerts table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, key: str) -> AlertRow | None:
        """The alert with this key, or None."""
        r = await self.store.fetchone(f"SELECT {_COLUMNS} FROM alerts WHERE key = ?", (key,))
        return _row(r) if r else None

    async def by_id(self, alert_id: int) -> AlertRow | None:
        """The alert with this id, or None."""
        r = await self.store.fetchone(f"SELECT {_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return _row(r) if r else None

    async def raise_(self, key: str, kind: str, text: str, at: float) -> AlertRow:
        """Record an alert first sent at `at` (a resolved one with the same key opens again)."""
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO alerts (key, kind, text, first_at, last_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET text = excluded.text, first_at = excluded.first_at,"
                " last_at = excluded.last_at, sent = 1, acked_at = NULL, acked_by = NULL,"
                " resolved_at = NULL WHERE alerts.resolved_at IS NOT NULL",
                (key, kind, text, at, at))
        row = await self.get(key)
        assert row is not None
        return row

    async def repeated(self, alert_id: int, at: float) -> None:
        """Note one more sending of the alert."""
        await self.store.execute(
            "UPDATE alerts SET last_at = ?, sent = sent + 1 WHERE id = ?", (at, alert_id))

    async def ack(self, alert_id: int, by: str, at: float) -> AlertRow | None:
        """Acknowledge an alert (once: a second ack keeps the first); None when unknown."""
        await self.store.execute(
            "UPDATE alerts SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL",
            (at, by, alert_id))
        return await self.by_id(alert_id)

    async def resolve(self, key: str, at: float) -> None:
        """The condition is over (the order moved on, the message was answered)."""
        await self.store.execute(
            "UPDATE alerts SET resolved_at = ? WHERE key = ? AND resolved_at IS NULL", (at, key))

    async def open(self) -> list[AlertRow]:
        """Alerts neither acknowledged nor resolved, oldest first."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM alerts WHERE acked_at IS NULL AND resolved_at IS NULL"
            " ORDER BY id")
        return [_row(r) for r in rows]

    async def recent(self, limit: int = 20) -> list[AlertRow]:
        """The latest alerts, newest first, whatever their state."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?", (limit,))
        return [_row(r) for r in rows]


CHUNK = 500  # ids per IN (...) list (SQLite's variable limit is far above)


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


class WatchReads:
    """The few batched reads the alert watch makes per check, whatever the number of orders:
    the alerts by key, when each desk alert was sent, and the last chat message of each order."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def alerts(self, keys: Sequence[str]) -> dict[str, AlertRow]:
        """The alert rows of these keys."""
        found: dict[str, AlertRow] = {}
        for part in _chunks(list(keys)):
            rows = await self.store.fetchall(
                f"SELECT {_COLUMNS} FROM alerts WHERE key IN ({','.join('?' * len(part))})", part)
            found.update((r.key, r) for r in map(_row, rows))
        return found

    async def sent(self, keys: Sequence[str]) -> dict[str, float]:
        """When each of these notification keys was last sent (keys never sent are absent)."""
        found: dict[str, float] = {}
        for part in _chunks(list(keys)):
            rows = await self.store.fetchall(
                "SELECT key, MAX(sent_at) FROM notifications"
                f" WHERE key IN ({','.join('?' * len(part))}) GROUP BY key", part)
            found.update((str(r[0]), float(r[1])) for r in rows)
        return found

    async def last_talk(self, orders: Sequence[str]) -> dict[str, tuple[str, str, str, float | None]]:
        """Per order, its last message in or out (not system): (direction, id, content, at)."""
        found: dict[str, tuple[str, str, str, float | None]] = {}
        for part in _chunks(list(orders)):
            rows = await self.store.fetchall(
                "SELECT order_number, direction, id, content, created_at FROM chat_messages"
                f" WHERE order_number IN ({','.join('?' * len(part))})"
                " AND direction IN ('in', 'out') ORDER BY created_at, id", part)
            for r in rows:  # oldest first: the last one per order stays
                found[str(r[0])] = (str(r[1]), str(r[2]), str(r[3]),
                                    None if r[4] is None else float(r[4]))
        return found
