"""The merchant's orders: Poisson arrivals on online own ads, status timers, and the order endpoints."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.answers import WrittenRows, dumps_text
from simulator.errors import SimError, missing
from simulator.world.account import OwnAd
from simulator.world.config import OrdersConfig
from simulator.world.data import (
    PAY_METHOD_NAMES,
    SIDES,
    Ids,
    Scales,
    as_mapping,
    fmt,
    get_int,
    get_str,
    page_of,
    q,
    q_down,
)

STATUS_NAMES = {1: "TRADING", 2: "BUYER_PAYED", 3: "IN_APPEAL", 4: "COMPLETED", 6: "CANCELLED",
                7: "CANCELLED_BY_SYSTEM"}
FINAL = frozenset({4, 6, 7})
LEGAL = {1: frozenset({2, 6, 7}), 2: frozenset({3, 4}), 3: frozenset({4, 6})}
LIST_CAP = 20
_GREETINGS = ("Hello! I want to buy.", "Hi, is this still available?", "Good day",
              "Hello, I'm making the transfer now", "Hi! Which bank exactly?")
_PAID_LINES = ("I have paid, please release", "Payment sent, check please", "Done, sent the money")
_RECEIVED_LINES = ("Thank you, checking the payment", "Got it, one moment")


@dataclass(slots=True)
class Party:
    """A side of an order as the order shows it."""

    nickname: str
    user_no: str
    real_name: str


@dataclass(slots=True)
class Order:
    """One order on an own ad."""

    order_no: str
    ad: OwnAd
    scales: Scales
    price: Decimal
    amount: Decimal
    total: Decimal
    commission: Decimal
    counterparty: Party
    pay_method: str
    pay_id: int
    create_ms: int
    notify_pay_end_ms: int
    status: int = 1
    pay_ms: int | None = None
    confirm_pay_end_ms: int | None = None
    close_ms: int | None = None
    next_ms: int | None = None
    next_status: int | None = None
    says: list[tuple[int, str]] = field(default_factory=list)
    history: list[tuple[int, int]] = field(default_factory=list)

    @property
    def side(self) -> str:
        """The merchant's side of the order."""
        return self.ad.side


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something the chat must hear about: created, a status change, or a counterparty line."""

    order: Order
    kind: str  # "created" | "status" | "say"
    old_status: int | None = None
    text: str = ""


class OrderBook:
    """Every order of the merchant and the clock-driven life of each."""

    def __init__(self, cfg: OrdersConfig, *, rng: random.Random, ids: Ids, merchant: Party,
                 message_probability: Decimal, unread: Callable[[str], int]) -> None:
        self.cfg = cfg
        self._rng, self._ids, self.merchant = rng, ids, merchant
        self._say_p = float(message_probability)
        self._unread = unread
        self.orders: dict[str, Order] = {}
        self._active: list[Order] = []
        self._newest: list[Order] = []  # newest_first's last answer
        self._rows: dict[str, list[Any]] = {}  # order -> _written_row

    # ----- moving ------------------------------------------------------------------------

    def arrivals(self, now_ms: int, ads: Sequence[tuple[OwnAd, Scales]]) -> list[OrderEvent]:
        """One step of Poisson arrivals: rate_per_hour × rank_decay^(rank-1) per online ad."""
        events: list[OrderEvent] = []
        base = float(self.cfg.rate_per_hour) / 3600.0
        decay = float(self.cfg.rank_decay)
        for ad, scales in ads:
            if ad.status != 1 or ad.rank is None:
                continue
            if self._rng.random() < base * decay ** (ad.rank - 1) and ad.tradable():
                events += self.create(ad, scales, now_ms)
        return events

    def create(self, ad: OwnAd, scales: Scales, now_ms: int,
               total: Decimal | None = None) -> list[OrderEvent]:
        """Open an order on `ad` now (a fiat `total` within the ad's limits, or a random one)."""
        rng = self._rng
        if total is None:
            low, high = math.ceil(ad.min_amount), math.floor(ad.available_fiat())
            total = Decimal(rng.randint(low, max(low, high)))
        elif not ad.min_amount <= total <= ad.available_fiat():
            raise ValueError(f"ad {ad.adv_no} takes {ad.min_amount} to {ad.available_fiat()} {ad.fiat}")
        amount = q_down(total / ad.price, scales.asset_scale)
        if amount <= 0 or amount > ad.surplus:
            raise ValueError(f"ad {ad.adv_no} cannot fill {total} {ad.fiat}")
        methods = ad.pay_methods or ["BANK"]
        index = rng.randrange(len(methods))
        order = Order(
            order_no=self._ids.order_no(), ad=ad, scales=scales, price=ad.price, amount=amount,
            total=q(amount * ad.price, 2), commission=q(amount * self.cfg.commission_rate, 8),
            counterparty=Party(self._ids.nickname(), self._ids.user_no(), self._ids.real_name()),
            pay_method=methods[index], pay_id=10_000_000 + index, create_ms=now_ms,
            notify_pay_end_ms=now_ms + ad.pay_time_limit * 60_000)
        ad.surplus -= amount
        if self.cfg.restock and not ad.tradable():
            ad.surplus = ad.init_amount
        self.orders[order.order_no] = order
        self._active.append(order)
        order.history.append((now_ms, 1))
        self._plan(order, now_ms)
        if rng.random() < self._say_p:
            order.says.append((now_ms + rng.randint(5, 60) * 1000, rng.choice(_GREETINGS)))
        return [OrderEvent(order, "created")]

    def step(self, now_ms: int) -> list[OrderEvent]:
        """Fire every timer due by `now_ms`: counterparty lines and status changes."""
        events: list[OrderEvent] = []
        for order in list(self._active):
            if order.says and any(s[0] <= now_ms for s in order.says):
                due = [s for s in order.says if s[0] <= now_ms]
                order.says = [s for s in order.says if s[0] > now_ms]
                events += [OrderEvent(order, "say", text=text) for _, text in due]
            if order.next_ms is not None and order.next_status is not None \
                    and order.next_ms <= now_ms:
                events.append(self._enter(order, order.next_status, now_ms))
            if order.status in FINAL and not order.says:
                self._active.remove(order)
        return events

    def force(self, order_no: str, status: int, now_ms: int) -> OrderEvent:
        """Move an order to `status` now (control API); ValueError/KeyError when not allowed."""
        order = self.orders[order_no]
        if status not in LEGAL.get(order.status, frozenset()):
            raise ValueError(f"order {order_no}: {order.status} -> {status} is not a legal move")
        event = self._enter(order, status, now_ms)
        if order not in self._active:
            self._active.append(order)
        return event

    def _enter(self, order: Order, status: int, now_ms: int) -> OrderEvent:
        old, order.status = order.status, status
        order.history.append((now_ms, status))
        order.next_ms = order.next_status = None
        if status == 2:
            order.pay_ms = now_ms
            order.confirm_pay_end_ms = now_ms + order.ad.pay_time_limit * 60_000
        if status in FINAL:
            order.close_ms = now_ms
        if status in (6, 7):
            order.ad.surplus += order.amount
        self._plan(order, now_ms)
        return OrderEvent(order, "status", old_status=old)

    def _plan(self, order: Order, now_ms: int) -> None:
        """Choose what happens next to `order` and when."""
        rng, cfg = self._rng, self.cfg
        if order.status == 1:
            deadline = order.notify_pay_end_ms
            pay_at = min(now_ms + rng.randint(*cfg.pay_seconds) * 1000, deadline - 1000)
            draw = rng.random()
            if draw < float(cfg.cancel_probability):
                cancel_at = now_ms + rng.randint(30, max(30, cfg.pay_seconds[1])) * 1000
                self._next(order, max(now_ms + 1000, min(cancel_at, deadline - 1000)), 6)
            elif draw < float(cfg.cancel_probability + cfg.timeout_probability):
                self._next(order, deadline, 7)
            else:
                self._next(order, max(now_ms + 1000, pay_at), 2)
        elif order.status == 2:
            if rng.random() < self._say_p:
                lines = _PAID_LINES if order.side == "SELL" else _RECEIVED_LINES
                order.says.append((now_ms + rng.randint(2, 20) * 1000, rng.choice(lines)))
            if rng.random() < float(cfg.appeal_probability):
                self._next(order, now_ms + rng.randint(60, 600) * 1000, 3)
            elif cfg.odd_status_probability and rng.random() < float(cfg.odd_status_probability):
                odd = rng.choice(cfg.odd_statuses)
                self._next(order, now_ms + rng.randint(*cfg.release_seconds) * 500, odd)
            else:
                self._next(order, now_ms + rng.randint(*cfg.release_seconds) * 1000, 4)
        elif order.status == 3:
            self._next(order, now_ms + rng.randint(*cfg.appeal_seconds) * 1000, 4)
        elif order.status not in STATUS_NAMES:  # an odd status: it ends in completion
            self._next(order, now_ms + rng.randint(*cfg.release_seconds) * 1000, 4)

    @staticmethod
    def _next(order: Order, at_ms: int, status: int) -> None:
        order.next_ms, order.next_status = at_ms, status

    def open_per_ad(self) -> dict[str, int]:
        """Open orders (trading, paid, in appeal) per ad number: what hides an ad (docs/exchange.md §11.6)."""
        counts: dict[str, int] = {}
        for order in self._active:
            if order.status not in FINAL:
                counts[order.ad.adv_no] = counts.get(order.ad.adv_no, 0) + 1
        return counts

    # ----- endpoints ---------------------------------------------------------------------

    def summary(self) -> dict[str, int]:
        """getUserOrderSummary: counts of open orders (inProcessCount = all three)."""
        counts = {1: 0, 2: 0, 3: 0}
        for order in self.orders.values():  # one pass: a day's statistics frames ask often
            if order.status in counts:
                counts[order.status] += 1
        return {"buyerPayedCount": counts[2], "inAppealCount": counts[3],
                "inProcessCount": counts[1] + counts[2] + counts[3], "tradingCount": counts[1]}

    def list_orders(self, body: Any) -> tuple[list[dict[str, Any]], int]:
        """listOrders: newest first, filtered, a page at a time."""
        src = as_mapping(body)
        statuses = _status_list(src.get("orderStatusList"))
        side = get_str(src, "tradeType", choices=SIDES)
        asset, adv_no = get_str(src, "asset"), get_str(src, "advNo")
        start, end = get_int(src, "startDate", default=0), get_int(src, "endDate", default=0)
        found = [o for o in self.newest_first()
                 if (not statuses or o.status in statuses) and (side is None or o.side == side)
                 and (asset is None or o.ad.asset == asset) and (adv_no is None or o.ad.adv_no == adv_no)
                 and (not start or o.create_ms >= start) and (not end or o.create_ms <= end)]
        rows = [self._written_row(o) for o in page_of(found, src, cap=LIST_CAP, required=True)]
        return WrittenRows([dict(row[1]) for row in rows], [self._row_text(row) for row in rows]), \
            len(found)

    def detail(self, body: Any) -> dict[str, Any]:
        """getUserOrderDetail by `adOrderNo` (or `orderNumber`); another account's order is 83998."""
        src = as_mapping(body)
        order_no = get_str(src, "adOrderNo") or get_str(src, "orderNumber")
        if order_no is None:
            raise missing("adOrderNo")
        order = self.orders.get(order_no)
        if order is None:
            raise SimError(83998, "operation is illegal")
        return self.detail_json(order)

    def history(self, query: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """listUserOrderHistory: string statuses, unitPrice, counterPartNickName; span <= 30 days."""
        side = get_str(query, "tradeType", choices=SIDES)
        if self.cfg.history_window_required:
            for name in ("startTimestamp", "endTimestamp"):
                if not query.get(name):
                    raise missing(name)
        start = get_int(query, "startTimestamp", default=0)
        end = get_int(query, "endTimestamp", default=0)
        if start and end and end - start > 30 * 86_400_000:
            raise SimError(-1100, "Illegal parameter: the time span must not exceed 30 days.")
        found = [o for o in self.newest_first() if (side is None or o.side == side)
                 and (not start or o.create_ms >= start) and (not end or o.create_ms <= end)]
        rows = page_of(found, query, default_rows=100, cap=100)
        return [self.history_row(o) for o in rows], len(found)

    def newest_first(self) -> list[Order]:
        """Every order, newest first (sorted again only after a new order: an order's time and
        number never change)."""
        if len(self._newest) != len(self.orders):
            self._newest = sorted(self.orders.values(), key=lambda o: (o.create_ms, o.order_no),
                                  reverse=True)
        return list(self._newest)

    # ----- serialisation -----------------------------------------------------------------

    def _parties(self, order: Order) -> tuple[Party, Party]:
        """(seller, buyer)."""
        if order.side == "SELL":
            return self.merchant, order.counterparty
        return order.counterparty, self.merchant

    def row(self, order: Order) -> dict[str, Any]:
        """An order row as listOrders returns it (no unit price)."""
        return dict(self._written_row(order)[1])

    def _written_row(self, order: Order) -> list[Any]:
        """[facts, row, text or None]: the row written again only when one of the facts it is
        written from changed (the desk lists the same orders every poll)."""
        seller, buyer = self._parties(order)
        facts = (order.order_no, order.ad.adv_no, order.side, order.ad.asset, order.ad.fiat,
                 order.scales, order.amount, order.total, order.status, order.create_ms,
                 order.notify_pay_end_ms, order.confirm_pay_end_ms, seller.nickname,
                 buyer.nickname, self._unread(order.order_no), order.commission,
                 self.cfg.commission_rate)
        written = self._rows.get(order.order_no)
        if written is None or written[0] != facts:
            written = self._rows[order.order_no] = [facts, self._row(order, seller, buyer), None]
        return written

    @staticmethod
    def _row_text(written: list[Any]) -> str:
        if written[2] is None:
            written[2] = dumps_text(written[1])
        return str(written[2])

    def _row(self, order: Order, seller: Party, buyer: Party) -> dict[str, Any]:
        return {
            "orderNumber": order.order_no, "advNo": order.ad.adv_no, "tradeType": order.side,
            "asset": order.ad.asset, "fiat": order.ad.fiat, "fiatSymbol": order.scales.fiat_symbol,
            "amount": fmt(order.amount), "totalPrice": fmt(order.total),
            "orderStatus": order.status, "createTime": order.create_ms,
            "notifyPayEndTime": order.notify_pay_end_ms,
            "confirmPayEndTime": order.confirm_pay_end_ms,
            "sellerNickname": seller.nickname, "buyerNickname": buyer.nickname,
            "chatUnreadCount": self._unread(order.order_no), "commission": fmt(order.commission),
            "commissionRate": fmt(self.cfg.commission_rate), "additionalKycVerify": 0,
        }

    def detail_json(self, order: Order) -> dict[str, Any]:
        """The order detail: the row plus price, names, payment and times."""
        seller, buyer = self._parties(order)
        name = PAY_METHOD_NAMES.get(order.pay_method, order.pay_method)
        return self.row(order) | {
            "price": fmt(order.price, order.scales.price_scale),
            "sellerName": seller.real_name, "buyerName": buyer.real_name,
            "payType": order.pay_method, "selectedPayId": order.pay_id,
            "payMethods": [{"id": order.pay_id, "identifier": order.pay_method,
                            "tradeMethodName": name, "fields": []}],
            "notifyPayTime": order.pay_ms, "confirmPayTime": order.close_ms
            if order.status == 4 else None, "remark": order.ad.remarks,
            "takerUserNo": order.counterparty.user_no, "takerNickname": order.counterparty.nickname,
            "makerUserNo": self.merchant.user_no, "payTimeLimit": order.ad.pay_time_limit,
        }

    def history_row(self, order: Order) -> dict[str, Any]:
        """A row of the documented trade history."""
        return {
            "orderNumber": order.order_no, "advNo": order.ad.adv_no, "tradeType": order.side,
            "asset": order.ad.asset, "fiat": order.ad.fiat, "fiatSymbol": order.scales.fiat_symbol,
            "amount": fmt(order.amount), "totalPrice": fmt(order.total),
            "unitPrice": fmt(order.price, order.scales.price_scale),
            "orderStatus": STATUS_NAMES.get(order.status, f"STATUS_{order.status}"),
            "createTime": order.create_ms,
            "commission": fmt(order.commission), "counterPartNickName": order.counterparty.nickname,
            "advertisementRole": "MAKER", "payMethodName": order.pay_method,
        }

    def to_control(self) -> list[dict[str, Any]]:
        """Every order in full, newest first, with its status timeline."""
        return [self.detail_json(o) | {"statusHistory": [{"time": t, "status": s}
                                                         for t, s in o.history],
                                       "nextStatus": o.next_status, "nextTime": o.next_ms}
                for o in self.newest_first()]


def _status_list(value: Any) -> set[int]:
    if value is None:
        return set()
    if not isinstance(value, list):
        raise SimError(-1100, "Illegal parameter 'orderStatusList': a list is expected.")
    try:
        return {int(v) for v in value if not isinstance(v, bool)}
    except (TypeError, ValueError):
        raise SimError(-1100, "Illegal parameter 'orderStatusList'.") from None
