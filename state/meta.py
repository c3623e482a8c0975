"""Small key/value facts that must survive a restart (an IP ban's end, ...)."""

from __future__ import annotations

from state.db import Store

BAN_UNTIL = "ip_ban_until"


class Meta:
    """Key/value rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, key: str) -> str | None:
        """The value of `key`, or None."""
        row = await self.store.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set(self, key: str, value: str) -> None:
        """Set `key` to `value`."""
        await self.store.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    async def ban_until(self) -> float:
        """The end of a persisted IP ban (epoch seconds), 0 when none."""
        value = await self.get(BAN_UNTIL)
        try:
            return float(value) if value else 0.0
        except ValueError:
            return 0.0

    async def set_ban_until(self, until: float) -> None:
        """Persist an IP ban's end."""
        await self.set(BAN_UNTIL, repr(until))

    async def clear_ban(self) -> None:
        """Forget a persisted IP ban (`p2pbot ban --clear`)."""
        await self.store.execute("DELETE FROM meta WHERE key = ?", (BAN_UNTIL,))
