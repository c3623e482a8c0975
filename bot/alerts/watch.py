"""Alerts that repeat until acknowledged, unanswered chats, and ads running out of amount.

Every CHECK_EVERY seconds the watch looks at the open orders in the store:
- an order paid, in appeal or stuck whose alert went out (the order desk's outbox sends the
  first one) gets an alert row with an id; while the order stays so and nobody acknowledged
  it, the alert is sent again every `[alerts] repeat_minutes`, naming its id;
- a counterparty's message that waits unanswered (the last chat message of the order is
  theirs) longer than `[alerts.chat_sla]` allows for the order's status raises an alert of
  its own, repeated the same way; answering it (or the order moving on) resolves it;
- an alert whose order moved on, or whose chat was answered, is resolved: never repeated.
The inventory alert reads each own-ads update: an ad whose available amount falls below
`[inventory] alert_orders` x its minimum order is said once, until it is refilled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from bot.clock import Clock
from bot.events import OwnAdsUpdate
from bot.notify import Note, Notifications
from bot.orders.reactions import age_text, alert_text
from bot.orders.track import REACTION_OF, STATUS_NAME
from bot.pricing.visibility import available_fiat
from config.models import AppConfig
from state.alerts import AlertRow, AlertStore, WatchReads
from state.db import StoreUnwritable
from state.orders import OrderRecord, OrderStore

if TYPE_CHECKING:
    from bot.pricing.engine import AdRuntime

CHECK_EVERY = 60.0  # seconds between two looks at the open orders (a few batched reads)
SLA_STATUS = {1: "trading", 2: "paid", 3: "appeal"}  # order status -> [alerts.chat_sla] key
REPEATED = (2, 3)  # statuses whose desk alert repeats until acknowledged (and `stuck`)


@dataclass(frozen=True, slots=True)
class Wanted:
    """An alert whose condition holds now; `first` when the watch sends its first copy."""

    kind: str
    text: str
    first: bool


def how_to_ack(alert_id: int) -> str:
    """The three ways to stop an alert, for its text."""
    return (f"Acknowledge: /ack {alert_id} in the console, p2pbot ack {alert_id}, or the status "
            "page's button.")


def chat_wait(order: OrderRecord, last: tuple[str, str, str, float | None] | None, now: float,
              sla: dict[str, int]) -> tuple[str, Wanted] | None:
    """The unanswered-chat alert an order calls for now (its key and what to say), else None
    (pure). `last` is the order's last message in or out: (direction, id, content, at). The
    key names the message waiting: an answer and a new question is a new alert."""
    limit = sla.get(SLA_STATUS.get(order.status, ""), 0)
    if not limit or last is None or last[0] != "in" or last[3] is None:
        return None
    _, msg_id, content, at = last
    assert at is not None  # checked above
    waited = now - at
    if waited < limit * 60:
        return None
    said = content.replace("\n", " ")[:100]
    status = STATUS_NAME.get(order.status, str(order.status))
    text = (f"Unanswered chat: order {order.order_number} ({status}): "
            f"{order.counterparty or 'the counterparty'} wrote {age_text(waited)} ago and has no "
            f"answer (limit {limit} min for {status} orders): \"{said}\". Answer in the Binance app.")
    return f"chat:{order.order_number}:{msg_id}", Wanted("chat_waiting", text, first=True)


class AlertWatch:
    """Repeats, chat SLA and resolution of alerts, on the bot's clock."""

    def __init__(self, *, orders: OrderStore, alerts: AlertStore, notes: Notifications,
                 clock: Clock, config: Callable[[], AppConfig]) -> None:
        self.orders, self.alerts, self.notes = orders, alerts, notes
        self.clock, self.config = clock, config
        self.reads = WatchReads(alerts.store)
        self._sent: dict[str, float] = {}  # when each desk alert was sent (the last check's read)

    async def run(self) -> None:
        """Check, then sleep, until cancelled (a full disk skips a check)."""
        while True:
            with contextlib.suppress(StoreUnwritable):
                await self.check()
            await self.clock.sleep(CHECK_EVERY)

    async def wanted(self, now: float) -> dict[str, Wanted]:
        """Every alert whose condition holds now, by key (three reads, however many orders)."""
        sla = self.config().alerts.chat_sla.model_dump()
        orders = await self.orders.open_orders(limit=1000)
        if not orders:
            return {}
        desk = {f"order:{o.order_number}:{n}": (o, n) for o in orders
                for n in ([REACTION_OF[o.status]] if o.status in REPEATED else [])
                + (["stuck"] if o.status == 2 else [])}
        sent = await self.reads.sent(list(desk))
        found = {key: Wanted(name, alert_text(name, order, now), first=False)
                 for key, (order, name) in desk.items() if key in sent}  # the desk sent it
        talk = await self.reads.last_talk([o.order_number for o in orders])
        for order in orders:
            chat = chat_wait(order, talk.get(order.order_number), now, sla)
            if chat is not None:
                found[chat[0]] = chat[1]
        self._sent = sent
        return found

    async def check(self) -> None:
        """Raise, repeat and resolve alerts for what holds now."""
        now = self.clock.time()
        repeat = self.config().alerts.repeat_minutes * 60
        wanted = await self.wanted(now)
        rows = await self.reads.alerts(list(wanted))
        for key, want in wanted.items():
            row = rows.get(key)
            if row is None or row.resolved_at is not None:
                at = now if want.first else self._sent.get(key, now)
                row = await self.alerts.raise_(key, want.kind, want.text, at)
                if want.first:
                    await self._send(row, want.text, now, first=True)
                continue
            if row.open and repeat and now - row.last_at >= repeat:
                await self._send(row, want.text, now, first=False)
        for row in await self.alerts.open():
            if row.key.startswith(("order:", "chat:")) and row.key not in wanted:
                await self.alerts.resolve(row.key, now)
                logger.info("alert {} resolved: {}", row.id, row.key)

    async def _send(self, row: AlertRow, text: str, now: float, *, first: bool) -> None:
        said = f"[alert {row.id}] {text} {how_to_ack(row.id)}"
        if not first:
            said = f"[alert {row.id}, again ({row.sent + 1})] {text} {how_to_ack(row.id)}"
            await self.alerts.repeated(row.id, now)
        await self.notes.deliver(Note(row.kind, f"alert:{row.id}:{row.sent + (not first)}",
                                      said, now))


class InventoryWatch:
    """An ad whose available amount falls toward its minimum order: alerted once per fall."""

    def __init__(self, notes: Notifications, ads: Callable[[], Sequence[AdRuntime]],
                 config: Callable[[], AppConfig]) -> None:
        self.notes, self.ads, self.config = notes, ads, config
        self.low: set[str] = set()  # adv_no of the ads said to be low (until refilled)

    async def on_own_ads(self, ev: OwnAdsUpdate) -> None:
        """Check each configured ad's amount as the exchange just reported it."""
        times = self.config().inventory.alert_orders
        by_no = {a.adv_no: a for a in ev.ads}
        for ad in self.ads():
            if ad.own is None or ad.own.adv_no not in by_no or not times or not ad.own.min_amount:
                continue
            await self._check(ad, times)

    async def _check(self, ad: AdRuntime, times: Decimal) -> None:
        own = ad.own
        assert own is not None
        left, threshold = available_fiat(own), own.min_amount * times
        if left >= threshold:
            if own.adv_no in self.low:
                self.low.discard(own.adv_no)
                logger.info("ad {}: available amount refilled ({} {})", ad.label, left, own.fiat)
            return
        if own.adv_no in self.low:
            return
        self.low.add(own.adv_no)
        orders = (left / own.min_amount).quantize(Decimal("0.1"))
        text = (f"Inventory: ad {ad.label} has {own.available} {own.asset} left "
                f"({left.quantize(Decimal('0.01'))} {own.fiat}, {orders} minimum orders of "
                f"{own.min_amount} {own.fiat}; alert below {times}). Below one minimum order "
                "the exchange hides the ad, and it loses its rank when refilled: refill it now.")
        logger.warning("{}", text)
        await self.notes.notify("inventory_low", f"inventory:{own.adv_no}:low", text)
