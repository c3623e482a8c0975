"""Changes made from the console, kept on top of the TOML file across restarts.

One row per (scope, key): scope is an ad's selector (`adv_no 123...` or `USDT/RUB SELL`, how
the bot recognises an ad across reloads) or `*` for the whole bot; key is what changed
(`enabled`, `floor`, `ceiling`, `step`, `kill_switch`); value is its text (Decimal as written).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from state.db import Store

BOT_SCOPE = "*"


@dataclass(frozen=True, slots=True)
class Override:
    """One stored change: who made it and when (epoch seconds)."""

    scope: str
    key: str
    value: str
    set_by: str = ""
    set_at: float = 0.0


class OverrideStore:
    """Writes and reads the overrides table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def all(self) -> list[Override]:
        """Every stored override, by scope then key."""
        rows = await self.store.fetchall(
            "SELECT scope, key, value, set_by, set_at FROM overrides ORDER BY scope, key")
        return [Override(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]

    async def put(self, override: Override) -> None:
        """Store (or replace) one override."""
        await self.store.execute(
            "INSERT INTO overrides (scope, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value,"
            " set_by = excluded.set_by, set_at = excluded.set_at",
            (override.scope, override.key, override.value, override.set_by, override.set_at))

    async def delete(self, scope: str | None = None, key: str | None = None) -> int:
        """Forget overrides: all, one scope's, or one key of a scope; returns how many."""
        async with self.store.transaction() as db:
            if scope is None:
                cur = await db.execute("DELETE FROM overrides")
            elif key is None:
                cur = await db.execute("DELETE FROM overrides WHERE scope = ?", (scope,))
            else:
                cur = await db.execute("DELETE FROM overrides WHERE scope = ? AND key = ?",
                                       (scope, key))
            return max(0, cur.rowcount or 0)


def read_overrides(path: Path) -> list[Override]:
    """The overrides in the store at `path`, read-only and without migrating it (check-config:
    it sends nothing and writes nothing); [] when the store or its table does not exist yet."""
    if not path.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT scope, key, value, set_by, set_at FROM overrides ORDER BY scope, key"
            ).fetchall()
    except sqlite3.Error:
        return []
    return [Override(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]
