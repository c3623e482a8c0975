"""Small key/value facts that must survive a restart (an IP ban's end, ...)."""

from __future__ import annotations

import math

from state.db import Store
from state.migrations import STORE_CREATED_AT

BAN_UNTIL = "ip_ban_until"
ORDERS_SINCE = "orders_since"


class Meta:
    """Key/value rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, key: str) -> str | None:
        """The value of `key`, or None."""
        row = await self.store.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def prefixed(self, prefix: str) -> dict[str, str]:
        """Every key starting with `prefix`, with its value (one read)."""
        rows = await self.store.fetchall(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        return {str(k): str(v) for k, v in rows}

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

    async def orders_since(self, now: float) -> float | None:
        """When this store began to follow orders (epoch seconds of the bot's clock), or None.

        None for a store created before this bot version kept the mark (`store_created_at`,
        written by the open that creates a store): it keeps the behaviour it always had.
        Otherwise the time of the first start of an order desk on it, `now` at that first
        call (to the millisecond, the exchange's unit), kept for every later start: an order
        created before it was open before this store existed, and what happened to it then
        (a greeting, a payment noted) is not known here.
        """
        if await self.get(STORE_CREATED_AT) is None:
            return None
        await self.store.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                                 (ORDERS_SINCE, repr(math.floor(now * 1000) / 1000)))
        value = await self.get(ORDERS_SINCE)
        try:
            return float(value) if value else None
        except ValueError:
            return None
