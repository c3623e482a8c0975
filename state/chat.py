"""Chat messages of orders, in both directions, stored once by the exchange's message id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from state.db import Store

_COLUMNS = "id, order_number, direction, type, content, created_at, uuid"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One chat message: direction is `in` (counterparty), `out` (ours) or `system`."""

    id: str
    order_number: str
    direction: str
    type: str
    content: str
    created_at: float | None
    uuid: str | None


def _message(r: Sequence[Any]) -> StoredMessage:
    return StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


KNOWN_IDS = 4096  # ids of messages this process stored or found stored, newest kept


class ChatStore:
    """Writes and reads chat_messages."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # every history read returns the order's latest messages, most of them stored already:
        # those are answered from here, without a write transaction each (a day of the desk
        # read 14,000 messages to store 3,000)
        self._known: dict[str, None] = {}

    async def add(self, msg: StoredMessage) -> bool:
        """Store a message; False when its id is already stored (websocket and REST merge)."""
        if msg.id in self._known:
            return False
        async with self.store.transaction() as db:
            cur = await db.execute(
                f"INSERT OR IGNORE INTO chat_messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (msg.id, msg.order_number, msg.direction, msg.type, msg.content, msg.created_at,
                 msg.uuid))
            new = bool(cur.rowcount and cur.rowcount > 0)
        self._known[msg.id] = None  # committed (a failed write raised before this line)
        if len(self._known) > KNOWN_IDS:
            del self._known[next(iter(self._known))]
        return new

    async def for_order(self, order_number: str) -> list[StoredMessage]:
        """An order's messages, oldest first."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM chat_messages WHERE order_number = ?"
            " ORDER BY created_at, id", (order_number,))
        return [_message(r) for r in rows]

    async def find_own(self, order_number: str, uuid: str, content: str,
                       since: float | None = None) -> StoredMessage | None:
        """Our message in an order with this uuid, or with exactly this content (at/after `since`)."""
        r = await self.store.fetchone(
            f"SELECT {_COLUMNS} FROM chat_messages WHERE order_number = ? AND direction = 'out'"
            " AND (uuid = ? OR (content = ? AND (? IS NULL OR created_at >= ?)))"
            " ORDER BY uuid = ? DESC LIMIT 1",
            (order_number, uuid, content, since, since, uuid))
        return _message(r) if r else None

    async def count(self, direction: str | None = None) -> int:
        """How many messages are stored (optionally of one direction)."""
        if direction is None:
            r = await self.store.fetchone("SELECT COUNT(*) FROM chat_messages")
        else:
            r = await self.store.fetchone(
                "SELECT COUNT(*) FROM chat_messages WHERE direction = ?", (direction,))
        return int(r[0]) if r else 0
