"""The market as each pricing decision saw it, the decisions and the orders won: the recording.

`export` writes it to a portable file and `backtest` replays it (p2pbot.backtest). One row per
market snapshot a decision used (the search page as received: every row, so a backtest
can apply another config's filters), one per decision, one per order won. Bodies are
zlib-compressed JSON: a searched page of 20 rows is about 2 KB as JSON and a fifth of that
compressed. Retention deletes rows older than `retention_days`, then the oldest rows
while the table is larger than `max_mb`, a bounded batch per pass.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from state.db import Store

KINDS = ("market", "decision", "order", "reference", "own")
BATCH = 2000  # rows deleted per pass at most
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded row: when, what kind, and its body."""

    at: float
    kind: str
    body: dict[str, Any]


def pack(body: dict[str, Any]) -> bytes:
    """The stored form of a body: compact JSON, zlib-compressed."""
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def unpack(blob: bytes) -> dict[str, Any]:
    """The body of a stored row."""
    body: dict[str, Any] = json.loads(zlib.decompress(blob))
    return body


class RecordingLog:
    """Writes, prunes and reads the `recording` table."""

    def __init__(self, store: Store, *, retention_days: int = 14, max_mb: int = 256) -> None:
        self.store = store
        self.retention_days = retention_days
        self.max_bytes = max_mb * MB
        self._pending: list[tuple[float, str, bytes]] = []
        self.written = 0  # rows, since start
        self.pruned = 0

    def stage(self, at: float, kind: str, body: dict[str, Any]) -> None:
        """Keep one row for the next flush (order kept: a market row precedes its decisions)."""
        if kind not in KINDS:
            raise ValueError(f"unknown recording kind {kind!r}")
        self._pending.append((at, kind, pack(body)))

    @property
    def pending(self) -> int:
        """Rows staged and not yet written."""
        return len(self._pending)

    async def flush(self) -> int:
        """Write every staged row in one transaction; returns how many."""
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            async with self.store.transaction() as db:
                await db.executemany(
                    "INSERT INTO recording (at, kind, body, size) VALUES (?, ?, ?, ?)",
                    [(at, kind, blob, len(blob)) for at, kind, blob in pending])
        except BaseException:
            self._pending = pending + self._pending  # tried again at the next flush
            raise
        self.written += len(pending)
        return len(pending)

    async def size(self) -> int:
        """Bytes of the stored bodies."""
        row = await self.store.fetchone("SELECT COALESCE(SUM(size), 0) FROM recording")
        return int(row[0]) if row is not None else 0

    async def prune(self, now: float, batch: int = BATCH) -> int:
        """One pass: rows older than the retention, then the oldest while over `max_mb`."""
        cutoff = now - self.retention_days * 86400.0
        async with self.store.transaction() as db:
            cur = await db.execute(
                "DELETE FROM recording WHERE id IN (SELECT id FROM recording WHERE at < ? "
                "ORDER BY id LIMIT ?)", (cutoff, batch))
            deleted = cur.rowcount or 0
        over = await self.size() - self.max_bytes
        if over > 0 and deleted < batch:
            deleted += await self._drop_oldest(over, batch - deleted)
        self.pruned += deleted
        return deleted

    async def _drop_oldest(self, over: int, batch: int) -> int:
        """Delete the oldest rows until `over` bytes are gone (at most `batch` rows)."""
        rows = await self.store.fetchall("SELECT id, size FROM recording ORDER BY id LIMIT ?",
                                         (batch,))
        freed, last = 0, None
        for row_id, size in rows:
            freed += int(size)
            last = row_id
            if freed >= over:
                break
        if last is None:
            return 0
        async with self.store.transaction() as db:
            cur = await db.execute("DELETE FROM recording WHERE id <= ?", (last,))
            return cur.rowcount or 0

    async def read(self, since: float | None = None, until: float | None = None,
                   chunk: int = 5000) -> AsyncIterator[Entry]:
        """Every row in [since, until], in the order written."""
        last = 0
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        while True:
            rows = await self.store.fetchall(
                "SELECT id, at, kind, body FROM recording WHERE id > ? AND at >= ? AND at <= ? "
                "ORDER BY id LIMIT ?", (last, lo, hi, chunk))
            for row_id, at, kind, blob in rows:
                last = row_id
                yield Entry(float(at), str(kind), unpack(blob))
            if len(rows) < chunk:
                return
