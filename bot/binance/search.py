"""The lean parse of an ads search reply: only what pricing reads, straight into plain rows.

A market is searched every few seconds and each reply has about 20 rows of some 40
fields each; validating all of them through the strict models (`SearchItem`) costs
most of a pricing decision. `parse_search` reads only the fields a competitor is
made of, with the strict models' rules for those fields. Anything it does not
recognise at once (a missing field, a number as an odd type) goes to the strict
models: they name the bad field (`data[1].adv.price: field required`) as a
`BadResponse`, or accept what only looked odd, and the row is taken from them.
So the lean parse is never stricter than the models, and never more lenient on a
field it reads; the fields it does not read are not checked.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from bot.binance.models import SearchItem, parse

ZERO = Decimal(0)
# decimal strings already read, and their value: most amounts of a reply, and many of its prices,
# are the strings the last reply had ("1000.00000000"). Exact (a Decimal from a string does not
# depend on the context) and bounded: forgotten all at once when full.
_READ: dict[str, Decimal] = {}
_READ_MAX = 4096


class _Odd(Exception):
    """A value the lean parse does not take at once: the strict models decide."""


class SearchAd:
    """The ad of a search row: its id, price and what makes it a competitor."""

    __slots__ = ("adv_no", "available", "max_amount", "min_amount", "pay_methods", "price",
                 "price_floating_ratio")

    def __init__(self, adv_no: str, price: Decimal, price_floating_ratio: Decimal | None,
                 min_amount: Decimal, max_amount: Decimal, available: Decimal,
                 pay_methods: frozenset[str]) -> None:
        self.adv_no, self.price, self.price_floating_ratio = adv_no, price, price_floating_ratio
        self.min_amount, self.max_amount, self.available = min_amount, max_amount, available
        self.pay_methods = pay_methods


class SearchAdvertiser:
    """Who published a search row."""

    __slots__ = ("is_merchant", "month_orders", "nick_name", "completion_rate", "user_no")

    def __init__(self, user_no: str | None, nick_name: str, is_merchant: bool, month_orders: int,
                 completion_rate: Decimal) -> None:
        self.user_no, self.nick_name, self.is_merchant = user_no, nick_name, is_merchant
        self.month_orders, self.completion_rate = month_orders, completion_rate


class SearchRow:
    """One row of an ads search as pricing reads it (`row.adv.price`, `row.advertiser.user_no`)."""

    __slots__ = ("adv", "advertiser")

    def __init__(self, adv: SearchAd, advertiser: SearchAdvertiser) -> None:
        self.adv, self.advertiser = adv, advertiser


def parse_search(data: Any, endpoint: str = "search") -> list[SearchRow]:
    """The rows of a search reply's `data`; a reply that does not fit is a BadResponse."""
    if type(data) is list:
        try:
            return [_row(item) for item in data]
        except (_Odd, KeyError, TypeError, AttributeError):
            pass
    return [from_item(item) for item in parse(list[SearchItem], data, endpoint)]


def from_item(item: SearchItem) -> SearchRow:
    """A row from the strict model (what the lean parse did not take at once)."""
    adv, who = item.adv, item.advertiser
    ad = SearchAd(adv.adv_no, adv.price, adv.price_floating_ratio,
                  adv.min_single_trans_amount or ZERO,
                  adv.dynamic_max_single_trans_amount or adv.max_single_trans_amount or ZERO,
                  adv.tradable_quantity or adv.surplus_amount or ZERO,
                  frozenset(m.identifier for m in adv.trade_methods if m.identifier))
    return SearchRow(ad, SearchAdvertiser(who.user_no, who.nick_name, who.is_merchant,
                                          who.month_order_count or 0, who.month_finish_rate or ZERO))


def _row(item: dict[str, Any]) -> SearchRow:
    adv, who = item["adv"], item["advertiser"]
    if type(adv) is not dict or type(who) is not dict:
        raise _Odd
    price = _dec(adv["price"])
    nick = who["nickName"]
    if price is None or type(nick) is not str:
        raise _Odd
    g = adv.get
    ad = SearchAd(_id(adv["advNo"]), price, _dec(g("priceFloatingRatio")),
                  _dec(g("minSingleTransAmount")) or ZERO,
                  _dec(g("dynamicMaxSingleTransAmount")) or _dec(g("maxSingleTransAmount")) or ZERO,
                  _dec(g("tradableQuantity")) or _dec(g("surplusAmount")) or ZERO,
                  _methods(g("tradeMethods", ())))
    kind = who.get("userType")
    if kind is not None and type(kind) is not str:
        raise _Odd
    user_no = who.get("userNo")
    orders = who.get("monthOrderCount")
    if orders is not None and type(orders) is not int:
        raise _Odd
    return SearchRow(ad, SearchAdvertiser(None if user_no is None else _id(user_no), nick,
                                          (kind or "").lower() == "merchant", orders or 0,
                                          _dec(who.get("monthFinishRate")) or ZERO))


def _dec(value: Any) -> Decimal | None:
    """A decimal field as the models read it (bot.binance.models._to_decimal), or _Odd."""
    kind = type(value)
    if kind is str:
        known = _READ.get(value)
        if known is not None:
            return known
        if not value.strip():
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise _Odd from None
    elif kind is Decimal:
        number = value
    elif kind is int:
        number = Decimal(value)
    elif value is None:
        return None
    else:
        raise _Odd  # a float, a boolean, anything else: the models decide
    if not number.is_finite():
        raise _Odd
    if kind is str:
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        _READ[value] = number
    return number


def _id(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    if type(value) is int:
        return str(value)
    raise _Odd


def _methods(methods: Any) -> frozenset[str]:
    if type(methods) not in (list, tuple):
        raise _Odd
    found = set()
    for method in methods:
        identifier = method.get("identifier")
        if identifier is not None and type(identifier) is not str:
            raise _Odd
        if identifier:
            found.add(identifier)
    return frozenset(found)
