"""The market as each pricing decision saw it, the decisions and the orders won: the recording.

`export` writes it to a portable file and `backtest` replays it (p2pbot.backtest). One entry
per market snapshot a decision used (the search page as received: every row, so a backtest
can apply another config's filters), one per decision, one per order won. A flush stores its
entries together, a row per SPAN seconds of them (kind `batch`): their JSON compressed as one.
Consecutive pages of a market are much alike, so a flush of a price war's entries (30 s)
comes out 20 times smaller than its JSON, where each entry compressed alone came out 2.1
times smaller and cost twice the CPU (staging and writing a price-war hour: 1.6 -> 0.8 s).
Rows of one entry (kind market, decision, ...: the form before batches) are still read,
pruned and exported. Retention deletes rows whose entries are all older than
`retention_days`, then the oldest rows while the table is larger than `max_mb`, a bounded
number per pass.
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
STORED = "batch"  # the kind of a row holding several entries
SPAN = 60.0  # seconds between the oldest and newest entry of one row, at most
PER_ROW = 1000  # entries in one row, at most


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
    """The body of a stored row of one entry."""
    body: dict[str, Any] = json.loads(zlib.decompress(blob))
    return body


def _text(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def pack_entries(entries: list[tuple[float, str, str]]) -> bytes:
    """The stored form of a row of entries (at, kind, body as JSON text): a JSON list of
    [at, kind, body], zlib-compressed once for them all."""
    parts = ",".join(f"[{json.dumps(at)},{json.dumps(kind)},{text}]" for at, kind, text in entries)
    return zlib.compress(f"[{parts}]".encode(), 6)


def unpack_entries(blob: bytes) -> list[Entry]:
    """The entries of a stored row of several, in the order staged."""
    return [Entry(float(at), str(kind), body) for at, kind, body in json.loads(zlib.decompress(blob))]


def entries_of(kind: str, at: float, blob: bytes) -> list[Entry]:
    """The entries of any stored row: several (STORED) or one (a row from before batches)."""
    return unpack_entries(blob) if kind == STORED else [Entry(float(at), kind, unpack(blob))]


def rows_of(pending: list[tuple[float, str, str]]) -> list[list[tuple[float, str, str]]]:
    """Staged entries cut into rows: consecutive, at most SPAN seconds and PER_ROW entries each."""
    rows: list[list[tuple[float, str, str]]] = []
    low = high = 0.0
    for entry in pending:
        at = entry[0]
        if rows and len(rows[-1]) < PER_ROW and max(high, at) - min(low, at) <= SPAN:
            rows[-1].append(entry)
            low, high = min(low, at), max(high, at)
        else:
            rows.append([entry])
            low = high = at
    return rows


class RecordingLog:
    """Writes, prunes and reads the `recording` table."""

    def __init__(self, store: Store, *, retention_days: int = 14, max_mb: int = 256) -> None:
        self.store = store
        self.retention_days = retention_days
        self.max_bytes = max_mb * MB
        self._pending: list[tuple[float, str, str]] = []  # (at, kind, body as JSON text)
        self.written = 0  # entries, since start
        self.pruned = 0  # rows

    def stage(self, at: float, kind: str, body: dict[str, Any]) -> None:
        """Keep one entry for the next flush (order kept: a market entry precedes its decisions;
        the body is written as it is now)."""
        if kind not in KINDS:
            raise ValueError(f"unknown recording kind {kind!r}")
        self._pending.append((at, kind, _text(body)))

    @property
    def pending(self) -> int:
        """Entries staged and not yet written."""
        return len(self._pending)

    async def flush(self) -> int:
        """Write every staged entry in one transaction, a row per SPAN seconds of them (its
        `at` the newest entry's); returns how many entries."""
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        blobs = [(max(at for at, _, _ in row), pack_entries(row)) for row in rows_of(pending)]
        try:
            async with self.store.transaction() as db:
                await db.executemany(
                    "INSERT INTO recording (at, kind, body, size) VALUES (?, ?, ?, ?)",
                    [(at, STORED, blob, len(blob)) for at, blob in blobs])
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
        """One pass: rows whose entries are all older than the retention (a row's `at` is its
        newest entry's), then the oldest rows while over `max_mb`; returns how many rows went
        (at most `batch`). Rows, not entries: counting a row's entries means decompressing
        and parsing it, about 240 ms of the event loop for an hour of a price war."""
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
                   chunk: int = 500) -> AsyncIterator[Entry]:
        """Every entry in [since, until], in the order written (a row's entries lie up to
        SPAN seconds before its `at`)."""
        last = 0
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        while True:
            rows = await self.store.fetchall(
                "SELECT id, at, kind, body FROM recording WHERE id > ? AND at >= ? AND at <= ? "
                "ORDER BY id LIMIT ?", (last, lo, hi + SPAN, chunk))
            for row_id, at, kind, blob in rows:
                last = row_id
                for entry in entries_of(str(kind), float(at), blob):
                    if lo <= entry.at <= hi:
                        yield entry
            if len(rows) < chunk:
                return

