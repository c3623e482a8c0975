"""The outbox worker: sends what the order desk queued, exactly once, and says what happened.

A row is claimed (`sending`) in its own transaction before it goes out and
finished with the exchange's answer after. What a crash leaves `sending` is
reconciled before anything new is sent:
- chat: the order's chat history is read over REST; the message (by uuid, or by
  exact content since the row was queued) found there is done; not found, it
  goes back to `pending` and is sent again with the same uuid; history that
  cannot be read leaves the row `sending` (never a blind resend).
- notify: a row whose key the notification log holds was delivered; otherwise
  it is delivered again (the window is the few ms between the channel's answer
  and the commit; the webhook body carries the key so a receiver can drop it).
A chat message that drew neither its echo nor an error frame within the chat's `ack`
(1.5 s) is taken as sent and the row is `sent`; `confirm_after` seconds later (and at every
reconnect) the order's history is read: found, the row is done; absent, it is sent again
with the same uuid (the exchange stores a uuid once).
Chat rows wait while the websocket is down and expire after `outbox_expiry_minutes`.

Dry run (`[bot] dry_run`, read at every row, so a reload switches it): a chat row
is finished `dry_run` with "would send: <text>" and logged, never sent, and never
sent later either; an alert still goes out (what happened at the exchange is
true) and says that the bot sent nothing and what it would have sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loguru import logger

from bot.binance.errors import BinanceError
from bot.capabilities.registry import CapabilityUnavailable
from bot.chat.session import ChatLost, ChatSession, Delivered, Unconfirmed
from bot.clock import Clock, nap
from bot.notify import Note, Notifications
from state.chat import ChatStore
from state.orders import OrderStore
from state.outbox import (
    DONE,
    DRY_RUN,
    EXPIRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    Outbox,
    OutboxRow,
)

CLOCK_SLACK = 60.0  # seconds: the exchange stamps messages with its clock, rows with ours
IDLE_TICK = 60.0  # seconds between passes while no row waits (a new row wakes the worker)
PARALLEL_ORDERS = 8  # orders whose messages are sent side by side


class OutboxWorker:
    """Sends pending outbox rows: notifications at once, chat messages while the socket is up."""

    def __init__(self, outbox: Outbox, chat: ChatSession, notes: Notifications, chats: ChatStore,
                 clock: Clock, *, expiry_minutes: int = 30, tick: float = 5.0,
                 confirm_after: float = 5.0,
                 orders: OrderStore | None = None,
                 dry_run: Callable[[], bool] = lambda: False) -> None:
        self.outbox, self.chat, self.notes, self.chats, self.clock = outbox, chat, notes, chats, clock
        self.orders = orders
        self.dry_run = dry_run
        self.expiry = expiry_minutes * 60.0
        self.tick = tick
        self.confirm_after = confirm_after
        self.wake = asyncio.Event()
        self.sent = 0
        # a reconcile left rows `sending` because their order's chat history could not be
        # read: each pass reads it again while the socket is up, not only at the next reconnect
        self.unchecked = False
        # called with ("greeting", seconds from the order's creation to its greeting sent)
        self.observers: list[Callable[[str, float], None]] = []
        self.waiting = True  # the last pass saw rows pending or sent unconfirmed (or unchecked)

    async def run(self) -> None:
        """Reconcile notifications left sending, then send until cancelled."""
        reconciled = False
        while True:
            self.wake.clear()
            try:
                if not reconciled:
                    await self.reconcile_notes()
                    reconciled = True
                await self.pass_once()
                await self.confirm_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stop the outbox: log, and the next tick retries
                logger.opt(exception=exc).error("outbox: unexpected error: {}", exc)
                self.waiting = True
            # nothing waiting: no timer of its own is due, and every new row sets `wake`
            await nap(self.clock, self.tick if self.waiting else IDLE_TICK, self.wake)

    async def pass_once(self) -> None:
        """One pass over the pending rows, oldest first, after re-checking rows whose history
        could not be read (no row is in flight between passes): chat messages of different
        orders go out side by side (each may wait `ack` for an echo that never comes), those
        of one order one after the other."""
        if self.unchecked and self.chat.ready.is_set():
            await self.reconcile_chat(sent_before=self.clock.time() - self.confirm_after)
        orders: dict[str, list[OutboxRow]] = {}
        pending = await self.outbox.in_state(PENDING)
        self.waiting = bool(pending) or self.unchecked
        for row in pending:
            if row.action == "notify":
                await self._notify(row)
            elif row.action == "chat":
                if self.dry_run():
                    await self._would_send(row)
                    continue
                if await self._expire_if_old(row):
                    continue
                if self.chat.ready.is_set():
                    orders.setdefault(row.order_number, []).append(row)
        if orders:
            lost = asyncio.Event()
            gate = asyncio.Semaphore(PARALLEL_ORDERS)
            await asyncio.gather(*(self._chat_order(rows, lost, gate) for rows in orders.values()))

    async def _chat_order(self, rows: list[OutboxRow], lost: asyncio.Event,
                          gate: asyncio.Semaphore) -> None:
        """One order's messages in turn; none once the socket went (they wait for the next)."""
        async with gate:
            for row in rows:
                if lost.is_set() or not self.chat.ready.is_set():
                    return
                if not await self._chat(row):
                    lost.set()
                    return

    def _expired(self, row: OutboxRow) -> bool:
        return self.clock.time() - row.created_at >= self.expiry

    async def _expire_if_old(self, row: OutboxRow) -> bool:
        if not self._expired(row):
            return False
        if await self.outbox.finish(row.id, EXPIRED, "not sent within outbox_expiry_minutes",
                                    self.clock.time()):
            logger.warning("outbox: order {} {} message expired unsent (waited {:.0f} min): "
                           "dropped, never sent late", row.order_number, row.status,
                           (self.clock.time() - row.created_at) / 60)
        return True

    async def _would_send(self, row: OutboxRow) -> None:
        """Dry run: record and log the message instead of sending it."""
        content = str(row.payload.get("content", ""))
        if await self.outbox.finish(row.id, DRY_RUN, f"dry run: would send: {content}",
                                    self.clock.time()):
            logger.info("dry run: would send to order {} ({}): {}", row.order_number, row.status,
                        content)

    async def _notify(self, row: OutboxRow) -> None:
        now = self.clock.time()
        if not await self.outbox.claim(row.id, now):
            return
        p = row.payload
        text = str(p.get("text", ""))
        if self.dry_run():
            text = await self._dry_text(row, text)
        answer = await self.notes.deliver(Note(str(p.get("kind", row.status)),
                                               str(p.get("key", row.key)), text, now))
        await self.outbox.finish(row.id, DONE, answer, self.clock.time())

    async def _dry_text(self, row: OutboxRow, text: str) -> str:
        """An alert in dry run: it says that nothing was sent, and what would have been."""
        chat = await self.outbox.get(row.order_number, row.status, "chat")
        would = f'; it would send: "{chat.payload.get("content", "")}"' if chat else ""
        return (f"{text} (dry run: the bot sent nothing to the counterparty and changed nothing "
                f"at the exchange{would})")

    async def _chat(self, row: OutboxRow) -> bool:
        """Send one message; False when the socket went away (the row stays `sending`)."""
        if not await self.outbox.claim(row.id, self.clock.time()):
            return True
        content, uuid = str(row.payload["content"]), str(row.payload["uuid"])
        try:
            result = await self.chat.send(row.order_number, content, uuid)
        except ChatLost as exc:
            logger.info("outbox: order {} {} message unconfirmed ({}); checked after reconnect",
                        row.order_number, row.status, exc)
            return False
        now = self.clock.time()
        if isinstance(result, Delivered):
            await self.outbox.finish(row.id, DONE, f"message {result.message_id}", now)
            await self._sent(row, now, "")
            return True
        if isinstance(result, Unconfirmed):
            await self.outbox.mark_sent(
                row.id, now, f"no echo and no error frame within {result.waited:g} s: taken as"
                " sent; to be confirmed from the chat history")
            await self._sent(row, now, " (no echo: confirmed later from the chat history)")
            return True
        await self.outbox.finish(row.id, FAILED, f"refused: {result.reason}", now)
        await self.notes.notify(
            "chat_refused", f"chat_refused:{row.key}",
            f"Chat message to order {row.order_number} ({row.status}) was refused by the exchange"
            f" ({result.reason}); it will not be retried. Check the template in [orders.on."
            f"{row.status}]. Text: {content[:200]}")
        return True

    async def _sent(self, row: OutboxRow, now: float, note: str) -> None:
        self.sent += 1
        if row.status == "new":
            order = await self.orders.get(row.order_number) if self.orders else None
            born = order.created_at if order and order.created_at else row.created_at
            for observer in self.observers:
                observer("greeting", now - born)
        logger.info("chat: order {} {} message sent{}", row.order_number, row.status, note)

    async def confirm_sent(self) -> None:
        """Messages taken as sent without an echo: confirmed from the order's chat history
        once `confirm_after` seconds have passed (absent there, they go out again)."""
        sent = await self.outbox.in_state(SENT, "chat")
        self.waiting = self.waiting or bool(sent)
        if not self.chat.ready.is_set():
            return  # checked at the reconnect (reconcile_chat) instead
        due = self.clock.time() - self.confirm_after
        rows = [r for r in sent if r.updated_at <= due]
        read: dict[str, bool] = {}
        for row in rows:
            if row.order_number not in read:
                read[row.order_number] = await self._read(row.order_number)
            await self._settle(row, read[row.order_number])

    async def reconcile_notes(self) -> None:
        """Notifications a crash left `sending`: done when the log has them, else sent again."""
        for row in await self.outbox.in_state(SENDING, "notify"):
            key = str(row.payload.get("key", row.key))
            now = self.clock.time()
            if await self.notes.was_sent(key):
                await self.outbox.finish(row.id, DONE, "delivered before a restart", now)
            else:
                await self.outbox.release(row.id, now, "not delivered before a restart: again")
        self.wake.set()

    async def reconcile_chat(self, *, sent_before: float | None = None) -> None:
        """Chat rows left `sending` (or `sent` unconfirmed): look for each in the order's
        history before any resend.

        Runs at every (re)connect before sending resumes; rows whose history could not be
        read are checked again by each pass while the socket is up (see pass_once): no row
        is in flight between two passes.
        """
        read: dict[str, bool] = {}
        unchecked = False
        sent = await self.outbox.in_state(SENT, "chat")  # taken as sent without an echo
        if sent_before is not None:  # between passes: only those past confirm_after
            sent = [r for r in sent if r.updated_at <= sent_before]
        for row in await self.outbox.in_state(SENDING, "chat") + sent:
            if row.order_number not in read:
                read[row.order_number] = await self._read(row.order_number)
            await self._settle(row, read[row.order_number])
            unchecked = unchecked or not (read[row.order_number] or self._expired(row))
        self.unchecked = unchecked
        self.wake.set()

    async def _read(self, order_no: str) -> bool:
        try:
            await self.chat.history(order_no)
            return True
        except (CapabilityUnavailable, BinanceError) as exc:
            logger.warning("outbox: cannot read order {}'s chat to check an unconfirmed message "
                           "({}); it is not resent until it can be checked", order_no, exc)
            return False

    async def _settle(self, row: OutboxRow, history_read: bool) -> None:
        content, uuid = str(row.payload["content"]), str(row.payload["uuid"])
        found = await self.chats.find_own(row.order_number, uuid, content,
                                         since=row.created_at - CLOCK_SLACK)
        now = self.clock.time()
        if found is not None:
            await self.outbox.finish(row.id, DONE, f"message {found.id} (found in chat history)", now)
            if row.state == SENDING:
                logger.info("outbox: order {} {} message was sent before: not resent",
                            row.order_number, row.status)
        elif not history_read:
            if self._expired(row):
                await self.outbox.finish(row.id, EXPIRED, "unknown: chat history unreadable", now)
        elif self._expired(row):
            await self.outbox.finish(row.id, EXPIRED, "not in chat history; too old to send", now)
            logger.warning("outbox: order {} {} message expired unsent", row.order_number,
                           row.status)
        else:
            await self.outbox.release(row.id, now, "not in chat history: sent again")
