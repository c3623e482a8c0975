"""What `p2pbot report` reads from the store: orders of a span with the times they were seen
paid and completed, the price edits applied per ad, and each ad's name."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from state.db import Store


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """An order created in the span, with the times its paid (2) and completed (4) status
    were stored (None when the bot did not see it)."""

    order_number: str
    status: int
    adv_no: str | None
    side: str | None
    asset: str | None
    fiat: str | None
    amount: Decimal | None
    total: Decimal | None
    created_at: float | None
    paid_at: float | None
    released_at: float | None


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


async def orders_between(store: Store, start: float, end: float) -> list[StoredOrder]:
    """Orders created in [start, end), oldest first, with their paid and completed times."""
    rows = await store.fetchall(
        "SELECT o.order_number, o.status, o.adv_no, o.side, o.asset, o.fiat, o.amount, o.total,"
        " o.created_at,"
        " (SELECT MIN(at) FROM order_transitions t WHERE t.order_number = o.order_number"
        "  AND t.new = 2),"
        " (SELECT MIN(at) FROM order_transitions t WHERE t.order_number = o.order_number"
        "  AND t.new = 4)"
        " FROM orders o WHERE o.created_at >= ? AND o.created_at < ?"
        " ORDER BY o.created_at, o.order_number", (start, end))
    return [StoredOrder(r[0], int(r[1]), r[2], r[3], r[4], r[5], _dec(r[6]), _dec(r[7]), r[8],
                        r[9], r[10]) for r in rows]


async def edits_between(store: Store, start: float, end: float) -> dict[str, int]:
    """Price edits the exchange accepted in [start, end), per ad name."""
    rows = await store.fetchall(
        "SELECT ad, COUNT(*) FROM price_decisions WHERE result = 'applied' AND at >= ? AND at < ?"
        " GROUP BY ad", (start, end))
    return {str(r[0]): int(r[1]) for r in rows}


async def ad_names(store: Store) -> dict[str, str]:
    """Each ad number's latest name in the pricing decisions."""
    rows = await store.fetchall(
        "SELECT adv_no, ad FROM price_decisions WHERE id IN"
        " (SELECT MAX(id) FROM price_decisions GROUP BY adv_no)")
    return {str(r[0]): str(r[1]) for r in rows}
