"""Pricing decisions and their traces: why each price was (or was not) set.

A decision that sent nothing (held, dry run) and repeats the ad's previous one with
the same inputs and reason is not stored again: the stored row counts its repeats
(`repeats`, first at `first_at`, latest at `at`). At 50 ads searched every 10 s a
row per hold is half a gigabyte a day; a row per change is what a person reads.
Decisions of one market snapshot are written in one transaction (`stage`, then
`flush`), and rows older than the retention are deleted a bounded batch at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from state.db import Store, where

QUIET = frozenset({"held", "dry_run"})  # results that sent nothing: repeats are counted
VOLATILE = frozenset({"filtered_out", "kept"})  # trace counts of the book's tail, not inputs


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision of the pricing engine about one ad (the latest of `repeats` identical ones)."""

    at: float
    ad: str
    adv_no: str
    strategy: str
    price_before: Decimal
    target: Decimal | None
    result: str  # applied, dry_run, held, failed, unknown
    reason: str
    guards: tuple[str, ...] = ()
    code: int | None = None
    trace: dict[str, Any] = field(default_factory=dict)
    repeats: int = 1  # identical decisions this row stands for
    first_at: float | None = None  # the first of them (None: `at`, a single decision)

    @property
    def since(self) -> float:
        """When the first of the identical decisions was made."""
        return self.at if self.first_at is None else self.first_at


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


# json.dumps(trace, default=_json_default), without building an encoder for every row
_encode = json.JSONEncoder(default=_json_default).encode


def same_as(row: DecisionRow) -> tuple[Any, ...]:
    """What makes two decisions the same, compared as values (`same_key` without encoding it:
    the engine's traces hold strings, numbers and lists, never two spellings of one value)."""
    inputs = {k: v for k, v in row.trace.items() if k not in VOLATILE}
    return (row.ad, row.strategy, str(row.price_before), row.target and str(row.target),
            row.result, row.reason, tuple(row.guards), row.code, inputs)


def same(row: DecisionRow, other: DecisionRow) -> bool:
    """`same_as(row) == same_as(other)`, without building either: the fields that differ most
    often first, the trace whole before its inputs alone (equal traces have equal inputs), and
    the decimals as strings only when they are not one object. A repeated hold is most of a
    desk's decisions, and each is compared with its ad's run."""
    if row.reason != other.reason or row.result != other.result or row.ad != other.ad \
            or row.strategy != other.strategy or row.code != other.code:
        return False
    a, b = row.price_before, other.price_before
    if a is not b and str(a) != str(b):
        return False
    t, u = row.target, other.target
    if t is not u and (t and str(t)) != (u and str(u)):
        return False
    if row.guards != other.guards and tuple(row.guards) != tuple(other.guards):
        return False
    mine, theirs = row.trace, other.trace
    return mine is theirs or mine == theirs or _inputs(mine) == _inputs(theirs)


def _inputs(trace: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in trace.items() if k not in VOLATILE}


def repeated(row: DecisionRow, repeats: int, first_at: float | None) -> DecisionRow:
    """`replace(row, repeats=repeats, first_at=first_at)`, made directly (less than half the time)."""
    return DecisionRow(row.at, row.ad, row.adv_no, row.strategy, row.price_before, row.target,
                       row.result, row.reason, row.guards, row.code, row.trace, repeats, first_at)


def same_key(row: DecisionRow) -> str:
    """What makes two decisions the same: everything but the time (and the book's tail counts)."""
    inputs = {k: v for k, v in row.trace.items() if k not in VOLATILE}
    return json.dumps([row.ad, row.strategy, str(row.price_before), row.target and str(row.target),
                       row.result, row.reason, list(row.guards), row.code, inputs],
                      sort_keys=True, default=_json_default)


@dataclass(slots=True)
class _Run:
    """A stored row and the identical decisions it stands for; id is None until written."""

    row: DecisionRow
    quiet: bool  # it sent nothing: identical decisions extend it (`same`); else never extended
    repeats: int = 1
    last_at: float = 0.0
    id: int | None = None
    fixed: tuple[Any, ...] | None = None  # the row's columns but repeats and last_at, encoded
    staged: bool = False  # in DecisionLog._pending, to write at the next flush


_COLUMNS = ("at, ad, adv_no, strategy, price_before, target, result, reason, guards, code, trace,"
            " repeats, last_at")
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_BATCH = 70  # rows per statement: 14 values each, under SQLite's oldest limit of 999 variables


class DecisionLog:
    """Writes and reads price_decisions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._open: dict[str, _Run] = {}  # adv_no -> the run the next identical quiet decision extends
        self._pending: list[_Run] = []  # runs to write at the next flush, in order

    def stage(self, row: DecisionRow) -> DecisionRow:
        """Take one decision for the next flush; returns it with its repeat count."""
        quiet = row.result in QUIET
        run = self._open.get(row.adv_no)
        if quiet and run is not None and run.quiet and same(row, run.row):
            run.repeats += 1
            run.last_at = row.at
        else:
            run = _Run(row, quiet, last_at=row.at)
            self._open[row.adv_no] = run
        if not run.staged:
            run.staged = True
            self._pending.append(run)
        return repeated(row, run.repeats, run.row.at) if run.repeats > 1 else row

    async def flush(self) -> None:
        """Write every staged decision at once: one statement (an upsert: new rows inserted,
        repeats counted on their row) for up to _BATCH decisions, one transaction for more."""
        pending, self._pending = self._pending, []
        for run in pending:
            run.staged = False
        if not pending:
            return
        batches = [pending[at:at + _BATCH] for at in range(0, len(pending), _BATCH)]
        inserted: list[_Run] = []
        try:
            if len(batches) == 1:
                inserted += _took_ids(batches[0], await self.store.statement(*_upsert(batches[0])))
            else:
                async with self.store.transaction() as db:
                    for batch in batches:
                        cur = await db.execute(*_upsert(batch))
                        inserted += _took_ids(batch, cur.lastrowid)
        except BaseException:
            for run in inserted:  # rolled back: the row id is not theirs (SQLite reuses it)
                run.id = None
            raise

    async def record(self, row: DecisionRow) -> DecisionRow:
        """Stage and write one decision at once."""
        staged = self.stage(row)
        await self.flush()
        return staged

    async def recent(
        self, adv_no: str | None = None, limit: int = 50, since: float | None = None,
        results: tuple[str, ...] | None = None,
    ) -> list[DecisionRow]:
        """The latest decisions, newest first (a repeated one by its latest repeat)."""
        where_sql, params = where(adv_no=adv_no, last_at__ge=since, result__in=results)
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM price_decisions{where_sql} ORDER BY last_at DESC, id DESC"
            " LIMIT ?", [*params, limit],
        )
        return [
            DecisionRow(r[12], r[1], r[2], r[3], Decimal(r[4]), None if r[5] is None else Decimal(r[5]),
                        r[6], r[7], tuple(g for g in r[8].split(",") if g), r[9], json.loads(r[10]),
                        r[11], r[0] if r[11] > 1 else None)
            for r in rows
        ]

    async def prune(self, before: float, limit: int) -> int:
        """Delete at most `limit` decisions last made before `before`, oldest first; returns how many."""
        async with self.store.transaction() as db:
            cur = await db.execute(
                "DELETE FROM price_decisions WHERE id IN (SELECT id FROM price_decisions"
                " WHERE last_at < ? ORDER BY last_at LIMIT ?)", (before, limit))
            return max(0, cur.rowcount)


def _values(run: _Run) -> tuple[Any, ...]:
    if run.fixed is None:  # what never changes once written: encoded once per row
        row = run.row
        run.fixed = (row.at, row.ad, row.adv_no, row.strategy, str(row.price_before),
                     None if row.target is None else str(row.target), row.result, row.reason,
                     ",".join(row.guards), row.code, _encode(row.trace))
    return (run.id, *run.fixed, run.repeats, run.last_at)


def _upsert(batch: list[_Run]) -> tuple[str, list[Any]]:
    """One statement writing a batch: new runs are inserted (id NULL: the next ids, in order),
    runs already written (their id given) get their repeat count and latest time."""
    sql = (f"INSERT INTO price_decisions (id, {_COLUMNS}) VALUES " + ", ".join([_ROW] * len(batch))
           + " ON CONFLICT(id) DO UPDATE SET repeats = excluded.repeats, last_at = excluded.last_at")
    return sql, [v for run in batch for v in _values(run)]


def _took_ids(batch: list[_Run], last: int | None) -> list[_Run]:
    """Give the batch's new runs their row ids: one statement's inserted rows take consecutive
    ids (each the largest so far + 1) and `last` is the last one's; the updated rows take none."""
    new = [run for run in batch if run.id is None]
    if new:
        assert last is not None
        for n, run in enumerate(new):
            run.id = last - len(new) + 1 + n
    return new
