"""Order tracking without I/O: status order, inferred paths, and orders read from replies.

Statuses only move forward: trading (1) -> paid (2) -> appeal (3) -> final (4, 6, 7).
A status that is not further along than the stored one is stale and ignored, so
out-of-order answers (a poll that started before a chat message arrived) never
move an order backwards. A jump over a status that must have happened (trading
to completed implies paid) is filled in with inferred steps.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from bot.binance.models import OrderDetail, OrderRow, OrderStatus
from state.orders import OrderRecord, Step

RANK: dict[int, int] = {1: 0, 2: 1, 3: 2, 4: 3, 6: 3, 7: 3}
# the status an order must have passed through to reach a status
BEFORE: dict[int, int] = {2: 1, 3: 2, 4: 2, 6: 1, 7: 1}

REACTION_OF: dict[int, str] = {1: "new", 2: "buyer_paid", 3: "appeal", 4: "completed",
                               6: "cancelled", 7: "cancelled"}
"""The `[orders.on.<name>]` reaction of each status (6 and 7 are both `cancelled`)."""

STATUS_NAME: dict[int, str] = {1: "trading", 2: "paid", 3: "appeal", 4: "completed",
                               6: "cancelled", 7: "cancelled (timeout)"}

def is_final(status: int) -> bool:
    """Completed or cancelled."""
    return RANK.get(status, -1) == 3


def infer_path(old: int | None, new: int) -> list[Step]:
    """The steps from `old` (None: never seen) to `new`; empty when `new` is stale or the same.

    Steps the order must have taken on the way are marked inferred; the last step,
    the one actually seen, never is.
    """
    if new not in RANK:
        return []
    if old is not None and (RANK.get(old, 3) >= RANK[new] or is_final(old)):
        return []
    chain = [new]
    while chain[0] in BEFORE:
        before = BEFORE[chain[0]]
        if old is not None and RANK[before] <= RANK[old]:
            break
        chain.insert(0, before)
    steps, prev = [], old
    for i, status in enumerate(chain):
        steps.append(Step(prev, status, inferred=i < len(chain) - 1))
        prev = status
    return steps


def tidy(value: Decimal | None) -> Decimal | None:
    """An amount without the exchange's padding: 100.00000000 -> 100.00, 0.00123400 -> 0.001234."""
    if value is None:
        return None
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return normal


def record_from_row(row: OrderRow, source: str) -> OrderRecord | None:
    """An order list row (or detail) as a record; None for a status this bot does not know."""
    if OrderStatus.from_int(row.order_status) is None:
        return None
    side = (row.trade_type or "").upper() or None
    other = row.buyer_nickname if side == "SELL" else row.seller_nickname
    price = None
    if isinstance(row, OrderDetail) and row.price is not None:
        price = row.price
    elif row.amount:
        price = (row.total_price / row.amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    pay = None
    if isinstance(row, OrderDetail):
        pay = _pay_method(row)
    return OrderRecord(
        order_number=row.order_number, status=row.order_status, adv_no=row.adv_no, side=side,
        asset=row.asset, fiat=row.fiat, amount=tidy(row.amount), total=tidy(row.total_price),
        price=tidy(price), counterparty=other, pay_method=pay,
        created_at=None if row.create_time is None else row.create_time / 1000, source=source)


def _pay_method(detail: OrderDetail) -> str | None:
    for method in detail.pay_methods or []:
        selected = detail.selected_pay_id is not None and str(method.get("id")) == detail.selected_pay_id
        if selected or len(detail.pay_methods or []) == 1:
            name = method.get("tradeMethodName") or method.get("identifier")
            if name:
                return str(name)
    return detail.pay_type
