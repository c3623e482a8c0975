"""Keeping the store safe over weeks: an integrity check at start, consistent backups.

Both use the plain `sqlite3` module (call them in a thread from async code): the
check must run before the store is migrated, and a backup must not share the
daemon's connection. SQLite's online backup API copies a consistent snapshot
while the daemon keeps writing (WAL), so `backup` never stops the bot.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from state.db import StoreFull, full_message, is_full

BACKUP_PAGES = 256  # pages copied per step; the daemon may write between steps


class StoreDamaged(Exception):
    """`PRAGMA integrity_check` failed, or the file is not a database: exit status 2."""


def _restore_hint(db: Path) -> str:
    return (f"stop the bot, move {db} aside (with its -wal and -shm files) and copy your latest "
            f"backup in its place: cp BACKUP {db}   (backups are made with `p2pbot backup "
            "PATH`, also while the bot runs)")


def _read_only(db: Path, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)


def integrity_check(db: Path) -> None:
    """Raise StoreDamaged (naming the file and how to restore) unless the store is sound."""
    if not db.exists():
        return
    try:
        with contextlib.closing(_read_only(db, 5.0)) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if is_full(exc, db):  # a full disk is not a damaged store: never advise a restore
            raise StoreFull(full_message(db)) from None
        raise StoreDamaged(f"the store {db} is damaged ({exc}); {_restore_hint(db)}") from None
    problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
    if problems:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        raise StoreDamaged(f"the store {db} is damaged (integrity_check: {shown}); {_restore_hint(db)}")


def backup_path(target: Path, now: float | None = None) -> Path:
    """Where to write: `target` itself, or a time-stamped file inside it when it is a folder."""
    if target.is_dir():
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        return target / f"p2pbot-{stamp}.db"
    return target


def backup(db: Path, target: Path) -> Path:
    """Copy a consistent snapshot of `db` to `target` (atomically); returns the file written."""
    if not db.exists():
        raise FileNotFoundError(f"the store {db} does not exist")
    dest = backup_path(target)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"the folder {dest.parent} does not exist")
    if dest.resolve() == db.resolve():
        raise ValueError(f"the backup would overwrite the store itself ({db})")
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    with contextlib.closing(_read_only(db, 30.0)) as src, \
            contextlib.closing(sqlite3.connect(partial)) as dst:
        src.backup(dst, pages=BACKUP_PAGES)
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        rows = dst.execute("PRAGMA integrity_check").fetchall()
    if [str(r[0]) for r in rows] != ["ok"]:
        partial.unlink(missing_ok=True)
        raise StoreDamaged(f"the copy of {db} failed its integrity check: {rows[:3]}")
    os.chmod(partial, 0o600)
    os.replace(partial, dest)
    return dest
