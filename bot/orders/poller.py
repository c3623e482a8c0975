"""The orders poller: the order summary as a cheap change detector, the order list for details.

On "summary+list" the list is read when the summary moved, while orders are
open, and every FULL_EVERY ticks anyway (an order opened and finished between
two ticks leaves the counts as they were). On "list" it is read every tick. On
"summary" alone only counts are known: the desk alerts on them. A list that is
only failing (passing trouble, one empty answer) is still tried on every tick:
the desk does not wait for a re-probe to follow orders again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from bot.binance.errors import BinanceError
from bot.binance.models import OrderRow, OrderSummary
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityUnavailable
from bot.events import OrderCountsRead, OrdersListed, OrderSourceChanged
from bot.health import EndpointState
from bot.polling import Poller

FULL_EVERY = 4
ROWS = 20
MAX_OPEN_PAGES = 5


class OrderPoller(Poller):
    """Reads the merchant's orders and publishes what it read (the desk subscribes); each read
    is dispatched, handled before the next one (EventBus.dispatch)."""

    capability = "orders"
    endpoints = ("order_summary", "list_orders")

    def __init__(self, api: P2PApi, *, has_open: Callable[[], Awaitable[bool]], **kw: Any) -> None:
        super().__init__(**kw)
        self.api = api
        self.has_open = has_open  # whether the desk knows of open orders (they are read each tick)
        self._counts: tuple[int, ...] | None = None
        self._source: str | None = None

    async def fetch(self, source: str) -> None:
        """One poll; an unexpected error is logged, never raised (the next tick retries)."""
        if source != self._source:
            await self.bus.dispatch(OrderSourceChanged(source))
            self._source = source
        try:
            await self._poll(source)
        except (CapabilityUnavailable, BinanceError):
            raise
        except Exception as exc:  # a bug must not stop order tracking
            logger.opt(exception=exc).error("order poll failed: {}", exc)
        return None

    async def _poll(self, source: str) -> None:
        if source == "summary" and self.registry.state("list_orders") is EndpointState.FAILING:
            source = "summary+list"  # the list's trouble is passing: this tick is its retry
        summary: OrderSummary | None = None
        if source in ("summary+list", "summary"):
            summary = await self.api.order_summary()
        if source == "summary":
            assert summary is not None
            await self.bus.dispatch(OrderCountsRead(summary, self.clock.time()))
            return
        if summary is not None and not await self._list_needed(summary):
            return
        open_rows, complete = await self._open_rows()
        recent = await self.api.list_orders(page=1, rows=ROWS)
        await self.bus.dispatch(OrdersListed((*open_rows, *recent.items), complete,
                                             self.clock.time()))

    async def _list_needed(self, summary: OrderSummary) -> bool:
        counts = (summary.trading_count, summary.buyer_payed_count, summary.in_appeal_count,
                  summary.in_process_count)
        moved, self._counts = counts != self._counts, counts
        return moved or self.ticks % FULL_EVERY == 1 or await self.has_open()

    async def _open_rows(self) -> tuple[list[OrderRow], bool]:
        """The open orders, and whether that is all of them (not cut at MAX_OPEN_PAGES)."""
        rows: list[OrderRow] = []
        for page in range(1, MAX_OPEN_PAGES + 1):
            got = await self.api.list_orders(page=page, rows=ROWS, statuses=(1, 2, 3))
            rows.extend(got.items)
            if len(got.items) < ROWS or (got.total is not None and len(rows) >= got.total):
                return rows, True
        return rows, False
