"""The order desk: follows every order, reacts from TOML, and never moves money.

Polling (bot.orders.poller) and chat system messages (bot.chat.session) both end in
`OrderDesk.observe`, which stores the change and its reactions in one
transaction (state.orders.OrderStore.advance) under one lock: an order seen
both ways is merged, never doubled, and a stale status never moves it back.
The outbox worker (bot.orders.outbox) sends the reactions afterwards, exactly once.
The bot never releases coins and never marks an order paid: alerts say what to do.

On a new store (a first start, or a store lost and created again) the orders already
open at the exchange were created before the store: they are recorded as they are,
without a greeting or a reaction to their status (a lost store's run may have sent them),
and only what happens to them afterwards is reacted to (bot.orders.reactions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.binance.errors import BinanceError
from bot.binance.models import OrderRow, OrderSummary
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.chat.session import ChatSession, ChatTimings
from bot.clock import Clock
from bot.events import (
    EventBus,
    OrderChanged,
    OrderCountsRead,
    OrdersListed,
    OrderSourceChanged,
    OrderStatusHeard,
)
from bot.notify import TELEGRAM_API, Notifications, Notifier, TelegramNotifier, WebhookNotifier
from bot.orders.outbox import OutboxWorker
from bot.orders.poller import OrderPoller
from bot.orders.reactions import new_uuid, plan_change, plan_stuck, predates
from bot.orders.track import RANK, STATUS_NAME, record_from_row
from config.models import AppConfig
from state.chat import ChatStore
from state.db import Store
from state.meta import Meta
from state.notifications import NotificationLog
from state.orders import OrderRecord, OrderStore, Plan
from state.outbox import Outbox

if TYPE_CHECKING:
    from config.settings import Settings

DETAILS_PER_TICK = 10  # open orders gone from the list, read one by one
# an order in a status this bot does not know: its detail is re-read after these delays
UNKNOWN_FIRST, UNKNOWN_CAP = 60.0, 3600.0
FINAL_STATUSES = frozenset({4, 6, 7})  # an order stored in one of these is not followed further


@dataclass(slots=True)
class UnknownStatus:
    """An order the exchange reports in a status this bot does not know, and its re-read time."""

    status: int
    delay: float
    next_at: float


_DUE = UnknownStatus(0, 0.0, 0.0)  # an order with no back-off: its detail may be read now


@dataclass(frozen=True, slots=True)
class ViewRow:
    """One line of the live view."""

    order_number: str
    status: int
    greeting: str  # sent, waiting, failed, expired, would send (dry run), -


class OrderDesk:
    """Order tracking, reactions, chat and notifications of one account."""

    def __init__(self, *, api: P2PApi, registry: CapabilityRegistry, bus: EventBus, clock: Clock,
                 store: Store, app: AppConfig, channels: Iterable[Notifier] = (),
                 chat_timings: ChatTimings | None = None,
                 banned_until: Callable[[], float] | None = None,
                 dry_run: Callable[[], bool] = lambda: False) -> None:
        self.api, self.registry, self.bus, self.clock = api, registry, bus, clock
        self.cfg = app.orders
        self.orders, self.outbox, self.chats = OrderStore(store), Outbox(store), ChatStore(store)
        self.notes = Notifications(list(channels), NotificationLog(store), clock,
                                   dedupe_minutes=app.notify.dedupe_minutes,
                                   max_per_hour=app.notify.max_per_hour, banned_until=banned_until)
        self.chat = ChatSession(api, registry, bus, clock, self.chats, timings=chat_timings,
                                orders_to_read=self.orders_to_read,
                                on_history=lambda: self.worker.reconcile_chat())
        self.worker = OutboxWorker(self.outbox, self.chat, self.notes, self.chats, clock,
                                   expiry_minutes=app.chat.outbox_expiry_minutes,
                                   orders=self.orders, dry_run=dry_run)
        self.observers = self.worker.observers  # metrics: ("greeting", latency seconds)
        self.poller = OrderPoller(api, has_open=self.has_open, registry=registry, bus=bus,
                                  clock=clock, interval=app.bot.orders_interval)
        self.make_uuid: Callable[[], str] = new_uuid
        self.view: list[ViewRow] = []
        self._lock = asyncio.Lock()
        self._reported: dict[str, tuple[int, bool]] = {}  # what the list said last, per order
        self._stuck: set[str] = set()
        self._summary: OrderSummary | None = None
        self._unknown: dict[str, UnknownStatus] = {}
        self.open_by_ad: dict[str, int] | None = None  # open orders per ad, once orders are listed
        self.meta = Meta(store)
        self.started_at = clock.time()  # on a new store, orders created before it predate it
        self._since: float | None = None  # Meta.orders_since, once read
        self._since_read = False
        self._quiet: list[str] = []  # open orders just recorded without reactions (before the store)
        # reads of the store kept until the desk writes again (OrderStore.writes, Outbox.writes):
        # the desk is the one writer of orders and outbox, so a poll that changed nothing
        # reads neither the open orders nor the view again (after every poll before)
        self._open: tuple[int, list[OrderRecord]] | None = None  # open_orders(), at writes
        self._by_ad_at: int | None = None  # the writes open_by_ad was counted at
        self._view_at: tuple[int, int, int] | None = None  # the writes (and limit) of the view

    def configure(self, app: AppConfig) -> None:
        """The settings a reload may change: the reactions and their texts, the order poll
        interval, the outbox expiry and the notification limits. Rows already queued keep
        the text they were queued with."""
        self.cfg = app.orders
        self.poller.interval = app.bot.orders_interval
        self.worker.expiry = app.chat.outbox_expiry_minutes * 60.0
        self.notes.dedupe = app.notify.dedupe_minutes * 60.0
        self.notes.max_per_hour = app.notify.max_per_hour

    def tasks(self) -> list[Callable[[], Coroutine[Any, Any, Any]]]:
        """The long-running parts: the poller, the chat session, the outbox worker."""
        return [self.poller.run, self.chat.run, self.worker.run]

    async def close(self) -> None:
        """Close the notification channels."""
        await self.notes.close()

    # --- observing -------------------------------------------------------------------

    async def observe(self, seen: OrderRecord) -> Plan:
        """Store what was seen of an order and queue its reactions, in one transaction."""
        async with self._lock:
            now = self.clock.time()
            since = await self.store_since()
            plan = await self.orders.advance(
                seen.order_number,
                lambda stored: plan_change(stored, seen, self.cfg.on, now, self.make_uuid, since),
                now)
        if plan.steps:  # moved on to a known status, however it was heard: no longer unknown
            self._unknown.pop(seen.order_number, None)
        first = bool(plan.steps) and plan.steps[0].old is None
        if first and plan.record.is_open and predates(plan.record, since):
            self._quiet.append(seen.order_number)
        for step in plan.steps:
            logger.info("order {}: {} -> {}{} ({})", seen.order_number,
                        STATUS_NAME.get(step.old, "new") if step.old else "new",
                        STATUS_NAME.get(step.new, step.new), " (inferred)" if step.inferred else "",
                        seen.source)
            self.bus.publish(OrderChanged(plan.record, step.old, step.new, step.inferred,
                                          seen.source, now))
        if plan.items:
            self.worker.wake.set()
        return plan

    def subscribe(self) -> None:
        """The order side's flow: the poller and the chat session publish, the desk listens."""
        self.bus.subscribe(OrdersListed, self.on_listed, name="order-desk-list")
        self.bus.subscribe(OrderCountsRead, self.on_counts, name="order-desk-counts")
        self.bus.subscribe(OrderSourceChanged, self.on_source, name="order-desk-source")
        self.bus.subscribe(OrderStatusHeard, self.on_heard, name="order-desk")

    async def on_listed(self, ev: OrdersListed) -> None:
        """A read of the order list (bot.orders.poller)."""
        await self.sync(ev.rows, complete_open=ev.complete_open)

    async def on_counts(self, ev: OrderCountsRead) -> None:
        """The order summary alone (bot.orders.poller, list unavailable)."""
        await self.on_summary(ev.summary)

    async def on_source(self, ev: OrderSourceChanged) -> None:
        """The poller moved to another source."""
        self.on_route(ev.source)

    async def sync(self, rows: Iterable[OrderRow], *, complete_open: bool = True) -> None:
        """Apply one poll: the rows seen, and detail reads for open orders no longer listed."""
        seen: dict[str, OrderRecord] = {}
        listed_unknown: set[str] = set()
        for row in rows:
            rec = record_from_row(row, "list")
            if rec is not None:
                seen[rec.order_number] = rec
                self._unknown.pop(rec.order_number, None)
            else:  # listed, in a status this bot does not know: no detail read needed
                await self._unknown_status(row.order_number, row.order_status, read=False)
                listed_unknown.add(row.order_number)
        if complete_open:
            await self._gone_from_list(seen, listed_unknown)
        for rec in sorted(seen.values(), key=lambda r: (r.created_at or 0, r.order_number)):
            report = (rec.status, rec.complete)
            if self._reported.get(rec.order_number) == report:
                continue  # the exchange says what it said last time
            if rec.is_open and rec.pay_method is None and await self.orders.get(rec.order_number) is None:
                detail = await self._detail(rec.order_number)
                rec = detail if detail is not None and RANK[detail.status] >= RANK[rec.status] else rec
            await self.observe(rec)
            self._reported[rec.order_number] = report
        if seen:
            self.registry.hints.setdefault("order_no", next(iter(seen)))
        self._say_quiet()
        await self.check_stuck()
        await self.count_open_by_ad()
        await self.refresh_view()

    async def open_orders(self) -> list[OrderRecord]:
        """The stored open orders, oldest first (OrderStore.open_orders), read again only after
        the desk wrote an order."""
        writes = self.orders.writes  # before the read: a write during it reads again next time
        if self._open is None or self._open[0] != writes:
            self._open = (writes, await self.orders.open_orders())
        return self._open[1]

    async def count_open_by_ad(self) -> None:
        """Open orders per ad, from the store: the exchange hides an ad with too many. Counted
        again only after the desk wrote an order."""
        writes = self.orders.writes
        if self._by_ad_at == writes and self.open_by_ad is not None:
            return
        counts: dict[str, int] = {}
        for order in await self.orders.open_orders(limit=1000):
            if order.adv_no:
                counts[order.adv_no] = counts.get(order.adv_no, 0) + 1
        self.open_by_ad, self._by_ad_at = counts, writes

    def open_count(self, adv_no: str) -> int | None:
        """The ad's open orders, or None while the desk has not listed orders (it cannot tell)."""
        return None if self.open_by_ad is None else self.open_by_ad.get(adv_no, 0)

    async def _gone_from_list(self, seen: dict[str, OrderRecord], skip: set[str]) -> None:
        now = self.clock.time()
        gone = [o for o in await self.open_orders()
                if o.order_number not in seen and o.order_number not in skip
                and self._unknown.get(o.order_number, _DUE).next_at <= now]
        for stored in gone[:DETAILS_PER_TICK]:
            detail = await self._detail(stored.order_number)
            if detail is not None:
                seen[stored.order_number] = detail

    async def _detail(self, order_no: str) -> OrderRecord | None:
        try:
            detail = await self.api.order_detail(order_no)
        except (CapabilityUnavailable, BinanceError) as exc:
            logger.debug("order {}: no detail ({})", order_no, exc)
            return None
        rec = record_from_row(detail, "detail")
        if rec is None:
            await self._unknown_status(order_no, detail.order_status, read=True)
        else:
            self._unknown.pop(order_no, None)
        return rec

    async def _unknown_status(self, order_no: str, status: int, *, read: bool) -> None:
        """Carry the order as unknown: alert once per status; each detail read that still finds
        it unknown doubles the wait before the next one."""
        now = self.clock.time()
        stored = await self.orders.get(order_no)
        if stored is not None and stored.status in FINAL_STATUSES:
            self._unknown.pop(order_no, None)  # a read that left before the order ended
            return
        known = self._unknown.get(order_no)
        if known is not None and known.status == status:
            if read:
                known.delay = min(known.delay * 2, UNKNOWN_CAP)
                known.next_at = now + known.delay
            return
        self._unknown[order_no] = UnknownStatus(status, UNKNOWN_FIRST, now + UNKNOWN_FIRST)
        was = "" if stored is None else f"; it stays {STATUS_NAME.get(stored.status, stored.status)} here"
        await self.notes.notify(
            "order_status_unknown", f"order:{order_no}:status:{status}",
            f"Order {order_no}: the exchange reports status {status}, which this bot does not "
            f"know{was}. It is not followed until the status is known again: check it in the "
            "Binance app (and check for a p2pbot update).")

    def unknown_status(self, order_no: str) -> int | None:
        """The unknown status the exchange last reported for an order, or None."""
        known = self._unknown.get(order_no)
        return None if known is None else known.status

    async def on_heard(self, ev: OrderStatusHeard) -> None:
        """A chat system message: merged with polling (the details of an order not known in
        full are read: a new one, or one whose detail read failed before, so its reactions are
        planned while it is open rather than never).

        The message's status is what is recorded, even when the detail is further
        along: the later system messages follow and each step gets its reaction.
        """
        seen = OrderRecord(ev.order_no, ev.status, source="chat")
        stored = await self.orders.get(ev.order_no)
        if stored is None or not stored.complete:  # new, or its detail could not be read yet
            detail = await self._detail(ev.order_no)
            if detail is not None:
                seen = replace(detail, status=ev.status, source="chat")
        await self.observe(seen)
        self._say_quiet()

    async def store_since(self) -> float | None:
        """When this store began following orders (None: a store older than that rule)."""
        if not self._since_read:
            self._since = await self.meta.orders_since(self.started_at)
            self._since_read = True
        return self._since

    def _say_quiet(self) -> None:
        """Say which open orders were just recorded without reactions, in one line."""
        if self._quiet:
            quiet, self._quiet = self._quiet, []
            logger.warning("new store: {} order(s) already open at the exchange were recorded "
                           "without reactions (created before this store): {}", len(quiet),
                           ", ".join(quiet))

    async def check_stuck(self) -> None:
        """Queue the `stuck` reaction for orders paid and not released after stuck_after_minutes."""
        if self.cfg.on.stuck is None:
            return
        now = self.clock.time()
        for order, paid_at in await self.orders.in_status_since(
                2, now - self.cfg.stuck_after_minutes * 60):
            if order.order_number in self._stuck:
                continue
            items = plan_stuck(order, paid_at, self.cfg.on, now, self.make_uuid)
            if items and await self.outbox.add(items, now):
                logger.warning("order {}: paid {:.0f} min ago and not released", order.order_number,
                               (now - paid_at) / 60)
                self.worker.wake.set()
            if items:
                self._stuck.add(order.order_number)

    # --- degraded --------------------------------------------------------------------

    def on_route(self, source: str) -> None:
        """Say how orders are followed now."""
        if source == "summary":
            logger.warning("order desk: only the order summary works: orders are counted, not "
                           "followed (no greetings; alerts on counts only)")
        else:
            logger.info("order desk: following orders on {}", source)

    async def on_summary(self, summary: OrderSummary) -> None:
        """Counts only (list_orders unavailable): alert when paid or appeal counts grow."""
        before, self._summary = self._summary, summary
        if before is None:
            return
        what = "The order list is unavailable for this key, so the bot cannot say which order: " \
               "open the Binance app, check the payment, and release or answer there."
        if summary.buyer_payed_count > before.buyer_payed_count:
            await self.notes.notify("buyer_paid", f"summary:paid:{summary.buyer_payed_count}",
                                    f"{summary.buyer_payed_count} order(s) marked paid. {what}")
        if summary.in_appeal_count > before.in_appeal_count:
            await self.notes.notify("appeal", f"summary:appeal:{summary.in_appeal_count}",
                                    f"{summary.in_appeal_count} order(s) in appeal. {what}")

    # --- asking ------------------------------------------------------------------------

    async def has_open(self) -> bool:
        """Whether any stored order is open."""
        return bool(await self.open_orders())

    async def orders_to_read(self, since: float | None) -> list[str]:
        """Orders whose chat may hold missed messages: open ones, and those changed since."""
        found = await (self.open_orders() if since is None else self.orders.touched_since(since))
        return [o.order_number for o in found]

    async def refresh_view(self, limit: int = 5) -> None:
        """The last few orders and whether each was greeted, for bot.ops.terminal (read again
        only after the desk wrote an order or an outbox row)."""
        at = (self.orders.writes, self.outbox.writes, limit)
        if self._view_at == at:
            return
        orders = await self.orders.recent(limit)
        greeted = await self.outbox.states([o.order_number for o in orders], "new", "chat")
        rows = []
        for order in orders:
            state = greeted.get(order.order_number)
            shown = "-" if state is None else {"done": "sent", "pending": "waiting",
                                               "sending": "sending",
                                               "sent": "sent, unconfirmed",
                                               "dry_run": "would send"}.get(state, state)
            rows.append(ViewRow(order.order_number, order.status, shown))
        self.view, self._view_at = rows, at


def build_channels(app: AppConfig, settings: Settings | None,
                   telegram_base_url: str = TELEGRAM_API) -> list[Notifier]:
    """The remote channels the config and the environment ask for."""
    channels: list[Notifier] = []
    if app.notify.webhook_url:
        channels.append(WebhookNotifier(app.notify.webhook_url))
    token = settings.telegram_token if settings is not None else None
    if app.notify.telegram_chat_id and token is not None and token.get_secret_value():
        channels.append(TelegramNotifier(token, app.notify.telegram_chat_id,
                                         base_url=telegram_base_url))
    elif app.notify.telegram_chat_id:
        logger.warning("[notify] telegram_chat_id is set but P2PBOT_TELEGRAM_TOKEN is not: "
                       "Telegram alerts are off")
    return channels
