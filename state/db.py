"""The store: one aiosqlite connection, WAL, numbered migrations, one writer at a time.

The store holds counterparties' chat text: a new store is created mode 600 whatever the
umask, and SQLite gives its `-wal` and `-shm` files the mode of the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from state.migrations import MIGRATIONS


class StoreError(Exception):
    """The store cannot be opened or used (path, permissions, corruption)."""


class Store:
    """The connection and its write lock. Classes per concern (state/*.py) hold the SQL."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating if needed) and migrate the store."""
        store = cls(path)
        await store._connect()
        return store

    async def _connect(self) -> None:
        if isinstance(self.path, Path) and self.path.parent and not self.path.parent.exists():
            raise StoreError(f"the folder of the store {self.path} does not exist")
        try:
            if isinstance(self.path, Path):
                _create_private(self.path)
            self._db = await aiosqlite.connect(str(self.path), isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA foreign_keys=ON")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
        except (aiosqlite.Error, OSError) as exc:
            await self.close()
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        except BaseException:
            await self.close()  # an open connection's thread would keep the process alive
            raise

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        if self._db is None:
            raise StoreError("the store is closed")
        return self._db

    async def _migrate(self) -> None:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the store {self.path} is at schema {version}, newer than this bot ({len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            async with self.transaction() as db:
                for statement in _statements(script):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version={number}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE), serialised with every other writer."""
        async with self._write_lock:
            try:
                await self.db.execute("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                # the BEGIN is queued on aiosqlite's thread and runs anyway: undo it, or the
                # connection stays inside a transaction and every later write fails
                with contextlib.suppress(aiosqlite.Error):
                    await self.db.execute("ROLLBACK")
                raise
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            else:
                await self.db.execute("COMMIT")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write statement in its own transaction."""
        async with self.transaction() as db:
            await db.execute(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        """Rows of one read query."""
        self.db.row_factory = aiosqlite.Row
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """The first row of one read query, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def schema_version(self) -> int:
        """PRAGMA user_version."""
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()


def where(**conditions: Any) -> tuple[str, list[Any]]:
    """A WHERE clause from `column__op=value` pairs (op: eq, ge, le, in); None values are skipped."""
    ops = {"eq": "=", "ge": ">=", "le": "<="}
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in conditions.items():
        if value is None or value == "" or value == ():
            continue
        column, _, op = key.partition("__")
        if op == "in":
            clauses.append(f"{column} IN ({','.join('?' * len(value))})")
            params.extend(value)
        else:
            clauses.append(f"{column} {ops[op or 'eq']} ?")
            params.append(value)
    return ((" WHERE " + " AND ".join(clauses)) if clauses else ""), params


def _create_private(path: Path) -> None:
    """Create an empty store file readable by its owner only (an existing one is left as it is)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _statements(script: str) -> Iterable[str]:
    for part in script.split(";"):
        if part.strip():
            yield part.strip()
