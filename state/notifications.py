"""Sent notifications: for de-duplication by key and the per-channel hourly limit."""

from __future__ import annotations

from state.db import Store


class NotificationLog:
    """Writes and reads the notifications table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, key: str, kind: str, at: float, channels: list[str]) -> None:
        """Remember that a notification with `key` went out on `channels` at `at`."""
        await self.store.execute(
            "INSERT INTO notifications (key, kind, sent_at, channels) VALUES (?, ?, ?, ?)",
            (key, kind, at, "," + ",".join(channels) + ","))

    async def last_sent(self, key: str) -> float | None:
        """When a notification with `key` last went out, or None."""
        r = await self.store.fetchone(
            "SELECT MAX(sent_at) FROM notifications WHERE key = ?", (key,))
        return float(r[0]) if r and r[0] is not None else None

    async def sent_on(self, channel: str, since: float) -> int:
        """How many notifications went out on `channel` since `since`."""
        r = await self.store.fetchone(
            "SELECT COUNT(*) FROM notifications WHERE sent_at >= ? AND channels LIKE ?",
            (since, f"%,{channel},%"))
        return int(r[0]) if r else 0
