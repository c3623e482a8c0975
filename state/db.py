"""The store: one aiosqlite connection, WAL, numbered migrations, one writer at a time.

The store holds counterparties' chat text: a new store is created mode 600 whatever the
umask, and SQLite gives its `-wal` and `-shm` files the mode of the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from state.migrations import MARK_CREATED, MIGRATIONS

LOW_SPACE = 1 << 20  # bytes: below this much free space a write failure is a full disk


class StoreError(Exception):
    """The store cannot be opened or used (path, permissions, corruption)."""


class StoreFull(StoreError):
    """The disk holding the store is full: nothing was written (the transaction rolled back)."""


def is_full(exc: BaseException, path: Path | str) -> bool:
    """Whether `exc` (from SQLite or the OS) means the disk holding `path` has no room left."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error):
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc):
            return True
        # SQLite reports a WAL or shm file it cannot grow as a plain I/O error
        return "disk I/O error" in str(exc) and free_space(path) < LOW_SPACE
    return False


def free_space(path: Path | str) -> int:
    """Bytes free on the filesystem of `path` (its folder when it does not exist yet)."""
    folder = Path(path).resolve().parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return LOW_SPACE * 1024


def full_message(path: Path | str) -> str:
    """What a merchant needs to act on a full disk: where, how much is left, what to free."""
    folder = Path(path).resolve().parent
    return (f"the disk holding the store {path} is full ({free_space(path) // 1024} KiB free in "
            f"{folder}): free some space there (old log files, old backups); nothing was "
            "half-written")


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class Store:
    """The connection and its write lock. Classes per concern (state/*.py) hold the SQL."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else path
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._identity: tuple[int, int] | None = None  # the file opened (a replaced store differs)
        self.full_since: float | None = None  # set by a write the full disk refused; cleared by one that lands
        self.on_full: list[Callable[[bool], Any]] = []  # called with True when full, False when writable again

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
            if isinstance(self.path, Path):
                self._identity = identity(self.path)
            await self._migrate()
        except (aiosqlite.Error, OSError) as exc:
            await self.close()
            if is_full(exc, self.path):
                raise StoreFull(f"cannot open the store: {full_message(self.path)}") from None
            if isinstance(exc, OSError):
                raise
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
                if number == 1:  # this open creates the store (state.meta.Meta.orders_since)
                    await db.execute(MARK_CREATED, (repr(time.time()),))
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
            except BaseException as exc:
                with contextlib.suppress(aiosqlite.Error):
                    await self.db.execute("ROLLBACK")
                if is_full(exc, self.path):
                    self._full(True)
                    raise StoreFull(full_message(self.path)) from None
                raise
            try:
                await self.db.execute("COMMIT")
            except aiosqlite.Error as exc:
                if not is_full(exc, self.path):
                    raise
                with contextlib.suppress(aiosqlite.Error):
                    await self.db.execute("ROLLBACK")
                self._full(True)
                raise StoreFull(full_message(self.path)) from None
            if self.full_since is not None:
                self._full(False)

    def _full(self, full: bool) -> None:
        """Note a full disk (or its end) once, and tell the listeners."""
        if full == (self.full_since is not None):
            return
        self.full_since = asyncio.get_running_loop().time() if full else None
        for listener in self.on_full:
            listener(full)

    def replaced(self) -> str | None:
        """Why the file at the store's path is no longer the one this process opened, or None.

        A store deleted or swapped under a running bot is written to an unlinked file: its
        record of what was sent is lost at the next start, and orders would be greeted twice.
        """
        if not isinstance(self.path, Path) or self._identity is None:
            return None
        now = identity(self.path)
        if now is None:
            return f"the store {self.path} was deleted while the bot was running"
        if now != self._identity:
            return f"the store {self.path} was replaced by another file while the bot was running"
        return None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write statement in its own transaction."""
        async with self.transaction() as db:
            await db.execute(sql, params)

    async def statement(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """One write statement, atomic by itself (no BEGIN/COMMIT round trips: one trip to the
        connection's thread instead of three), serialised with every other writer; returns the
        cursor's lastrowid. A full disk is a StoreFull, as in `transaction`."""
        async with self._write_lock:
            try:
                cur = await self.db.execute(sql, params)
            except aiosqlite.Error as exc:
                if not is_full(exc, self.path):
                    raise
                self._full(True)
                raise StoreFull(full_message(self.path)) from None
            if self.full_since is not None:
                self._full(False)
            return cur.lastrowid

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
