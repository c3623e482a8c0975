"""One market snapshot as pricing reads it, built once for all the ads of that market.

Every ad of a market looks at the same search rows: where each ad stands in them, the
competitors they are made of, the set of ids that are ours, the order best first for
the market's side, and which rows each filters table drops whatever the ad. Building
these once per snapshot instead of once per ad is what keeps a cycle of 1,000 ads
linear (bench/engine.py).
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from bot.binance.models import SearchItem
from bot.binance.search import SearchRow, from_item
from strategies.base import CompetitorAd, OwnAd, Reference, Side
from strategies.filters import CompetitorFilters, FilterResult

_new = object.__new__
_price = attrgetter("price")


def competitor(row: SearchRow) -> CompetitorAd:
    """A search row as the strategy sees it.

    Built without `CompetitorAd.__post_init__`: the parse already made every amount a
    Decimal and the methods a frozenset, which is all that check enforces (a test
    keeps the two ways equal), and a snapshot of 20 rows is built every few seconds.
    """
    adv, who = row.adv, row.advertiser
    ad: CompetitorAd = _new(CompetitorAd)
    ad.__dict__.update(
        adv_no=adv.adv_no, user_no=who.user_no or "", nickname=who.nick_name, price=adv.price,
        min_amount=adv.min_amount, max_amount=adv.max_amount, available=adv.available,
        pay_methods=adv.pay_methods, is_merchant=who.is_merchant, month_orders=who.month_orders,
        completion_rate=who.completion_rate)
    return ad


def best_trace(kept: Sequence[CompetitorAd]) -> list[dict[str, Any]]:
    """The first three competitors kept, as a decision's trace shows them."""
    return [{"adv_no": c.adv_no, "user_no": c.user_no, "nickname": c.nickname,
             "price": str(c.price)} for c in kept[:3]]


# (id of our ad ids, our user ids seen) -> (our ad ids, the two together): the same few each
# snapshot, and a union copies every one of our ad ids (a thousand on a large desk)
_UNIONS: dict[tuple[int, frozenset[str]], tuple[frozenset[str], frozenset[str]]] = {}


def _with_users(own_adv_nos: frozenset[str], users: frozenset[str]) -> frozenset[str]:
    """`own_adv_nos | users`, made once for each set of our user ids found in a market."""
    if not users:
        return own_adv_nos
    key = (id(own_adv_nos), users)
    got = _UNIONS.get(key)
    if got is None or got[0] is not own_adv_nos:
        if len(_UNIONS) >= 256:  # our ad ids replaced: forget them all
            _UNIONS.clear()
        got = _UNIONS[key] = (own_adv_nos, own_adv_nos | users)
    return got[1]


def rows_of(items: Iterable[Any]) -> list[SearchRow]:
    """The search rows of a snapshot (strict `SearchItem`s, as tests build them, are converted)."""
    return [i if isinstance(i, SearchRow) else from_item(i) for i in items
            if isinstance(i, SearchRow | SearchItem)]


class MarketBook:
    """A snapshot's rows and what every ad of the market derives from them alike."""

    def __init__(self, items: Iterable[Any], own_adv_nos: frozenset[str]) -> None:
        self.rows = rows_of(items)
        self.position: dict[str, int] = {}  # adv_no -> 1-based place in the rows (first seen)
        for n, row in enumerate(self.rows, 1):
            self.position.setdefault(row.adv.adv_no, n)
        self.competitors = tuple(competitor(r) for r in self.rows)
        users = frozenset(r.advertiser.user_no for r in self.rows
                          if r.adv.adv_no in own_adv_nos and r.advertiser.user_no)
        self.own_ids: frozenset[str] = _with_users(own_adv_nos, users)
        self._sorted: dict[Side, tuple[CompetitorAd, ...]] = {}
        self._screened: dict[tuple[Side, CompetitorFilters], tuple[str | None, ...]] = {}
        self._filtered: dict[tuple[Any, ...], FilterResult] = {}
        # the same, by the filters' identity first: each ad has its own table, most of them
        # equal, and hashing a table by value costs more than the rest of the lookup
        self._by_table: dict[tuple[Any, ...], tuple[CompetitorFilters, FilterResult]] = {}
        # per FilterResult (by id, each kept alive here): medians and read-only drop counts
        self._medians: dict[tuple[int, int], tuple[FilterResult, Decimal | None]] = {}
        self._dropped: dict[int, tuple[FilterResult, Mapping[str, int]]] = {}
        self._best: dict[int, tuple[FilterResult, list[dict[str, Any]]]] = {}
        self._derived: dict[tuple[int, int, Decimal], tuple[FilterResult, Reference]] = {}
        self._prices: list[Decimal] | None = None  # every row's price, ascending
        self._shown: dict[str, list[Decimal]] = {}  # adv_no -> the prices of its rows
        self._kept_prices: dict[int, tuple[FilterResult, list[Decimal]]] = {}  # id -> ascending

    def row(self, adv_no: str) -> SearchRow | None:
        """The first row showing this ad, or None."""
        at = self.position.get(adv_no)
        return None if at is None else self.rows[at - 1]

    def rank_at(self, side: Side, price: Decimal, mine: str) -> int:
        """1 + the rows other than `mine`'s that `price` does not beat (`side.better`): where an
        ad at `price` stands behind the ads at its price, as an update places it. Once per
        snapshot the prices are sorted; then each ad counts by bisection, not row by row."""
        prices = self._prices
        if prices is None:
            prices = self._prices = sorted(r.adv.price for r in self.rows)
            for r in self.rows:
                self._shown.setdefault(r.adv.adv_no, []).append(r.adv.price)
        if side is Side.SELL:  # not price < p: p <= price
            level_or_ahead = bisect_right(prices, price)
            ours = sum(1 for p in self._shown.get(mine, ()) if p <= price)
        else:  # not price > p: p >= price
            level_or_ahead = len(prices) - bisect_left(prices, price)
            ours = sum(1 for p in self._shown.get(mine, ()) if p >= price)
        return 1 + level_or_ahead - ours

    def standing(self, result: FilterResult, side: Side, price: Decimal) -> int:
        """1 + the competitors `result` kept that are strictly better than `price` for `side`,
        counted by bisection in their prices sorted once per result."""
        got = self._kept_prices.get(id(result))
        if got is None or got[0] is not result:
            got = self._kept_prices[id(result)] = (result, sorted(c.price for c in result.kept))
        prices = got[1]
        if side is Side.SELL:  # c.price < price
            return 1 + bisect_left(prices, price)
        return 1 + len(prices) - bisect_right(prices, price)  # c.price > price

    def best_first(self, side: Side) -> tuple[CompetitorAd, ...]:
        """The competitors sorted best first for `side` (stably: ties keep the exchange's order)."""
        ordered = self._sorted.get(side)
        if ordered is None:  # by price, highest first for BUY: a reversed sort is stable too
            ordered = self._sorted[side] = tuple(
                sorted(self.competitors, key=_price, reverse=side is Side.BUY))
        return ordered

    def screened(self, filters: CompetitorFilters, side: Side) -> tuple[str | None, ...]:
        """`filters.screen(self.best_first(side), own_ids)`, once per side and filters alike (by value:
        each ad has its own table, most of them equal)."""
        key = (side, filters)
        got = self._screened.get(key)
        if got is None:
            got = self._screened[key] = filters.screen(self.best_first(side), self.own_ids)
        return got

    def filtered(self, filters: CompetitorFilters, own: OwnAd) -> FilterResult:
        """`filters.apply(rows, own, own_ids)` on this snapshot for one of our ads.

        Every one of our ads is in `own_ids`, so which of them asks changes nothing but through
        its side, amounts and methods: ads alike in those share one result."""
        if own.adv_no not in self.own_ids:  # not indexed as ours: its own pass
            return filters.apply(self.best_first(own.side), own, self.own_ids, presorted=True)
        alike = (own.side, own.min_amount, own.max_amount, own.pay_methods)
        seen = self._by_table.get((id(filters), *alike))
        if seen is not None and seen[0] is filters:
            return seen[1]
        key = (own.side, filters, own.min_amount, own.max_amount, own.pay_methods)
        got = self._filtered.get(key)
        if got is None:
            got = self._filtered[key] = filters.apply(
                self.best_first(own.side), own, self.own_ids,
                screened=self.screened(filters, own.side), presorted=True)
        self._by_table[(id(filters), *alike)] = (filters, got)
        return got

    def median(self, result: FilterResult, top: int) -> Decimal | None:
        """The median price of the best `top` competitors `result` kept (None: it kept none),
        once for every ad sharing the result."""
        key = (id(result), top)
        got = self._medians.get(key)
        if got is None or got[0] is not result:
            prices = [c.price for c in result.kept[:top]]
            got = self._medians[key] = (
                result, Decimal(statistics.median(prices)) if prices else None)
        return got[1]

    def derived(self, result: FilterResult, top: int) -> Callable[[Decimal], Reference]:
        """The reference derived from `result` for an ad's tick: the median of its best `top`
        at that tick, made once for every ad sharing the result and the tick (a Reference is
        frozen: they share one). Asked only when `median` found one."""
        def at(tick: Decimal) -> Reference:
            key = (id(result), top, tick)
            got = self._derived.get(key)
            if got is None or got[0] is not result:
                median = self.median(result, top)
                assert median is not None
                got = self._derived[key] = (result, Reference(median.quantize(tick), "derived"))
            return got[1]
        return at

    def best_trace(self, result: FilterResult) -> list[dict[str, Any]]:
        """The first three competitors `result` kept as a decision's trace shows them, built once
        for every ad sharing the result (a trace is read and stored, never changed)."""
        got = self._best.get(id(result))
        if got is None or got[0] is not result:
            got = self._best[id(result)] = (result, best_trace(result.kept))
        return got[1]

    def dropped(self, result: FilterResult) -> Mapping[str, int]:
        """`result.dropped` as a strategy gets it: a read-only copy, one for every ad sharing it."""
        got = self._dropped.get(id(result))
        if got is None or got[0] is not result:
            got = self._dropped[id(result)] = (result, MappingProxyType(dict(result.dropped)))
        return got[1]
