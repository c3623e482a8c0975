"""The typed event bus: one bounded queue and one task per subscriber.

Publishing never blocks. Events with a `coalesce_key` replace a queued event with
the same key (latest wins), so a slow handler never builds a backlog of stale
market data. A handler that raises is logged and keeps receiving events.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from loguru import logger

from bot.binance.models import OrderRow, OrderSummary
from bot.health import CapState, EndpointState


@dataclass(frozen=True, slots=True)
class Cause:
    """Why an endpoint or capability changed: what the exchange said."""

    endpoint: str
    code: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class EndpointChanged:
    """An endpoint's health moved."""

    endpoint: str
    old: EndpointState
    new: EndpointState
    cause: Cause
    at: float


@dataclass(frozen=True, slots=True)
class CapabilityChanged:
    """A capability moved between unchecked, enabled, degraded and disabled (or changed source)."""

    capability: str
    old: CapState
    new: CapState
    source: str | None  # the source it now runs on, or tries (None when disabled)
    cause: Cause | None  # the outcome that moved it
    at: float
    causes: tuple[Cause, ...] = ()  # disabled: every endpoint down, on every source


Handler = Callable[[Any], Awaitable[None]]


@dataclass(eq=False)
class Subscription:
    """One subscriber: its event types, queue and handler."""

    name: str
    types: tuple[type, ...]
    handler: Handler
    maxsize: int
    _queue: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _seq: Any = field(default_factory=count)
    dropped: int = 0
    failures: int = 0
    busy: bool = False  # a handler call is running

    def offer(self, event: Any) -> None:
        """Queue an event (coalescing by key, dropping the oldest when full)."""
        key = getattr(event, "coalesce_key", None)
        if key is not None:
            key = (type(event), key)
            self._queue.pop(key, None)
        else:
            key = next(self._seq)
        self._queue[key] = event
        while len(self._queue) > self.maxsize:
            self._queue.popitem(last=False)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("subscriber {} is behind: {} events dropped", self.name, self.dropped)
        self._wake.set()

    async def next(self) -> Any:
        """The oldest queued event, waiting for one."""
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popitem(last=False)[1]

    def pending(self) -> int:
        """How many events wait."""
        return len(self._queue)


class EventBus:
    """Typed publish/subscribe inside one process."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self.published = 0
        self._progress = asyncio.Event()  # set after every delivery

    def subscribe(
        self, types: type | tuple[type, ...], handler: Handler, *, name: str = "", maxsize: int = 1000
    ) -> Subscription:
        """Register a handler for events of `types` (run by `run()`)."""
        types_t = types if isinstance(types, tuple) else (types,)
        sub = Subscription(name or getattr(handler, "__qualname__", "handler"), types_t, handler, maxsize)
        self._subs.append(sub)
        return sub

    def publish(self, event: Any) -> None:
        """Hand an event to every subscriber of its type; never blocks."""
        self.published += 1
        for sub in self._subs:
            if isinstance(event, sub.types):
                sub.offer(event)

    async def dispatch(self, event: Any) -> None:
        """Hand an event to every subscriber of its type and wait until each has handled it,
        in the caller's task. For a producer that must not run ahead of its consumers: an
        order read is stored before the next read (queued reads lost to a crash would be
        orders never seen, since the next start reads only the recent ones)."""
        self.published += 1
        for sub in self._subs:
            if isinstance(event, sub.types):
                await self.deliver(sub, event)

    async def run(self) -> None:
        """Run every subscriber until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for sub in self._subs:
                tg.create_task(self._drive(sub), name=f"bus:{sub.name}")

    async def _drive(self, sub: Subscription) -> None:
        while True:
            event = await sub.next()
            await self.deliver(sub, event)

    async def deliver(self, sub: Subscription, event: Any) -> None:
        """Call one handler with one event; an exception is logged, never raised."""
        sub.busy = True
        try:
            await sub.handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing handler must not stop the others
            sub.failures += 1
            logger.opt(exception=exc).error(
                "handler {} failed on {}: {}", sub.name, type(event).__name__, exc
            )
        finally:
            sub.busy = False
            self._progress.set()

    def idle(self) -> bool:
        """True when no handler runs and nothing is queued."""
        return not any(sub.busy or sub.pending() for sub in self._subs)

    async def settle(self, within: float) -> bool:
        """Wait until `idle()` (handlers in flight finish, queued events are delivered by
        `run()`); False when `within` seconds run out first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.idle():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=remaining)
            except TimeoutError:
                return self.idle()
        return True

    async def drain(self) -> None:
        """Deliver every queued event now (tests and shutdown)."""
        progress = True
        while progress:
            progress = False
            for sub in self._subs:
                while sub.pending():
                    progress = True
                    await self.deliver(sub, await sub.next())


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """One ads search of a market: (asset, fiat, search side). Coalesced: latest wins."""

    asset: str
    fiat: str
    search_side: str  # the taker's side sent to ads/search (BUY finds SELL ads)
    items: tuple[Any, ...]  # bot.binance.models.SearchItem, best first as the exchange sorts
    total: int | None
    at: float

    @property
    def coalesce_key(self) -> tuple[str, str, str]:
        """One pending snapshot per market."""
        return (self.asset, self.fiat, self.search_side)


@dataclass(frozen=True, slots=True)
class ReferenceUpdate:
    """Binance's reference price for (asset, fiat, side). Coalesced: latest wins.

    `stale`: the reference could not be read; this is the last value read, at `at`.
    """

    asset: str
    fiat: str
    side: str
    price: Any  # Decimal
    at: float
    stale: bool = False

    @property
    def coalesce_key(self) -> tuple[str, str, str]:
        """One pending price per (asset, fiat, side)."""
        return (self.asset, self.fiat, self.side)


@dataclass(frozen=True, slots=True)
class OwnAdsUpdate:
    """The merchant's own ads as the exchange reports them. Coalesced: latest wins."""

    ads: tuple[Any, ...]  # bot.binance.models.Ad
    at: float
    coalesce_key: str = "own_ads"


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order moved from `old` to `new` (OrderStatus ints; `old` None at the first sighting).

    Published once per stored transition. `inferred` marks a step the bot did not see
    but that must have happened (trading -> paid when it finds the order completed).
    """

    order: Any  # state.orders.OrderRecord, after the change
    old: int | None
    new: int
    inferred: bool
    source: str  # list, detail, chat
    at: float


@dataclass(frozen=True, slots=True)
class ChatMessageReceived:
    """A counterparty message, published once however it arrived (websocket or REST)."""

    order_no: str
    message: Any  # bot.binance.models.ChatMessage
    via: str  # websocket | rest
    at: float


@dataclass(frozen=True, slots=True)
class OrdersListed:
    """One read of the order list: the open orders (all of them when `complete_open`) and
    the most recent ones. The desk stores what changed and queues the reactions."""

    rows: tuple[OrderRow, ...]
    complete_open: bool
    at: float


@dataclass(frozen=True, slots=True)
class OrderCountsRead:
    """Only the order summary works: counts, not orders (the desk alerts on them)."""

    summary: OrderSummary
    at: float


@dataclass(frozen=True, slots=True)
class OrderSourceChanged:
    """Orders are now followed on another source (summary+list, list, summary)."""

    source: str


@dataclass(frozen=True, slots=True)
class OrderStatusHeard:
    """A chat system message named an order's status (`{"type":"seller_payed"}` ...)."""

    order_no: str
    status: int  # OrderStatus
    event: str  # the system event's name as the exchange sent it
    at: float


@dataclass(frozen=True, slots=True)
class ChatTakenOver:
    """Another session kept kicking the chat websocket off: the bot gave the socket up."""

    kicks: int
    window: float  # seconds in which the kicks came
    at: float
