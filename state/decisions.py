"""Pricing decisions and their traces: why each price was (or was not) set."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from state.db import Store, where


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision of the pricing engine about one ad."""

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


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


class DecisionLog:
    """Writes and reads price_decisions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, row: DecisionRow) -> None:
        """Store one decision with its trace."""
        await self.store.execute(
            "INSERT INTO price_decisions (at, ad, adv_no, strategy, price_before, target, result,"
            " reason, guards, code, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.at, row.ad, row.adv_no, row.strategy, str(row.price_before),
             None if row.target is None else str(row.target), row.result, row.reason,
             ",".join(row.guards), row.code, json.dumps(row.trace, default=_json_default)),
        )

    async def recent(
        self, adv_no: str | None = None, limit: int = 50, since: float | None = None,
        results: tuple[str, ...] | None = None,
    ) -> list[DecisionRow]:
        """The latest decisions, newest first."""
        where_sql, params = where(adv_no=adv_no, at__ge=since, result__in=results)
        rows = await self.store.fetchall(
            "SELECT at, ad, adv_no, strategy, price_before, target, result, reason, guards, code,"
            f" trace FROM price_decisions{where_sql} ORDER BY at DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [
            DecisionRow(r[0], r[1], r[2], r[3], Decimal(r[4]), None if r[5] is None else Decimal(r[5]),
                        r[6], r[7], tuple(g for g in r[8].split(",") if g), r[9], json.loads(r[10]))
            for r in rows
        ]
