"""ChatSession: one chat websocket per account, kept alive, re-opened, and backed by REST.

- Every (re)connect fetches a fresh credential (it may be single-use) and opens
  `{chatWssUrl}/{listenKey}?token=..&clientType=web`. The URL holds the token: never logged.
- A watchdog pings every `keepalive` seconds; no pong within `silence` seconds
  means the connection is dead: it is cut and re-opened. Failures back off with
  jitter (bot.clock.backoff); a connection that stayed up resets the backoff.
- After each connect, messages missed meanwhile are re-read over REST for the
  open orders (and those that changed since), then `on_history` lets the desk
  reconcile unacknowledged sends, and only then is sending allowed (`ready`).
- A send waits `ack` seconds (1.5 by default) for its echo or an `error` frame. The echo
  does not always come: with neither, the message is taken as sent (`Unconfirmed`) and the
  outbox confirms it later from the order's chat history; the socket is not cut for it.
- While the websocket is unavailable (capability `chat` on "rest"), messages are
  read by polling REST; nothing can be sent (there is no REST endpoint for it).
- The account has one chat socket: a new one kicks the old. Kicked `kick_limit`
  times within `kick_window` seconds, the bot gives the socket up to the other
  client for the rest of its run (fighting would kick both off in a loop): it
  publishes ChatTakenOver once and reads over REST as above.
The frame protocol lives in bot.chat.protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bot.binance.client import transport_reason
from bot.binance.errors import BinanceError
from bot.binance.models import ChatMessage
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.chat.protocol import (
    Ack,
    ChatEvent,
    ChatProtocol,
    Incoming,
    Refused,
    SystemNotice,
    direction_of,
    is_kick,
    status_of_event,
    system_event,
)
from bot.clock import Clock, backoff, within
from bot.events import ChatMessageReceived, ChatTakenOver, EventBus, OrderStatusHeard
from bot.orders.track import RANK
from state.chat import ChatStore, StoredMessage

# the library's handshake debug lines hold the URL, and so the token: keep them quiet
_WS_LOG = logging.getLogger("bot.chat.session.websocket")
_WS_LOG.setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class ChatTimings:
    """Seconds on the bot's clock (open_timeout: real seconds, it is the library's)."""

    keepalive: float = 20.0
    silence: float = 10.0
    ack: float = 1.5  # no echo and no error frame within it: taken as sent, confirmed later
    open_timeout: float = 10.0
    rest_poll: float = 15.0
    retry_first: float = 1.0
    retry_cap: float = 60.0
    jitter: float = 0.2
    healthy_after: float = 30.0
    history_rows: int = 50
    kick_limit: int = 3
    kick_window: float = 300.0


@dataclass(frozen=True, slots=True)
class Delivered:
    """The exchange echoed the message: it is in the chat."""

    message_id: str


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    """Neither an echo nor an error frame came within `ack`: taken as sent, to be confirmed
    from the chat history (the exchange does not always echo a message)."""

    waited: float


@dataclass(frozen=True, slots=True)
class Rejected:
    """The exchange answered with an `error` frame: the message was refused."""

    reason: str


class ChatLost(Exception):
    """Not sent or not acknowledged: the socket is down. The outbox row is reconciled later."""


OrdersToRead = Callable[[float | None], Awaitable[list[str]]]


async def _nothing(*_: Any) -> Any:
    return []


class ChatSession:
    """The account's chat: websocket when possible, REST reading otherwise."""

    def __init__(self, api: P2PApi, registry: CapabilityRegistry, bus: EventBus, clock: Clock,
                 store: ChatStore, *, timings: ChatTimings | None = None,
                 rng: random.Random | None = None, orders_to_read: OrdersToRead = _nothing,
                 on_history: Callable[[], Awaitable[Any]] = _nothing) -> None:
        self.api, self.registry, self.bus, self.clock, self.store = api, registry, bus, clock, store
        self.timings = timings or ChatTimings()
        self.rng = rng or random.Random()
        self.protocol = ChatProtocol()
        self.ready = asyncio.Event()
        self.orders_to_read = orders_to_read  # the desk's: orders whose chat may hold news
        self.on_history = on_history  # after a history read: the desk reconciles its sends
        self.connects = 0
        self.failures = 0
        self.mode = "starting"
        self._ws: ClientConnection | None = None
        self._waiters: dict[str, asyncio.Future[Delivered | Rejected]] = {}
        self._delays = self._new_delays()
        self._down_since: float | None = None
        self._why = ""
        self._last_read: float | None = None
        self._kicks: deque[float] = deque()
        self.gave_way = False  # another client holds the socket: left to it until a restart

    def set_timings(self, timings: ChatTimings) -> None:
        """Use other timings from now on (tests on a fast simulated clock)."""
        self.timings = timings
        self._delays = self._new_delays()

    def _new_delays(self) -> Any:
        t = self.timings
        return backoff(t.retry_first, 2.0, t.retry_cap, t.jitter, self.rng)

    @property
    def connected(self) -> bool:
        """True while a websocket is open."""
        return self._ws is not None

    # --- running -------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the capability's route until cancelled; never raises on a bad round."""
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not take the desk down: log, wait, go on
                logger.opt(exception=exc).error("chat: unexpected error: {}", exc)
                await self.clock.sleep(next(self._delays))

    async def _round(self) -> None:
        route = self.registry.route("chat")
        if route == "websocket" and self.gave_way:
            route = "rest"  # never fight another client for the account's one socket
        if route == "websocket":
            self._set_mode("websocket", "chat: connecting the websocket")
            await self._websocket()
        elif route == "rest":
            self._set_mode("rest", "chat: the websocket is unavailable: reading messages over REST;"
                                   " outgoing messages wait in the outbox")
            await self.read_history()
            with contextlib.suppress(TimeoutError):
                await within(self.clock, self.timings.rest_poll, self.registry.wait_for_change())
        else:
            self._set_mode("parked", "chat: parked, no chat endpoint works; outgoing messages wait")
            await self.registry.wait_for_change()

    def _set_mode(self, mode: str, text: str) -> None:
        if mode != self.mode:
            (logger.info if mode == "websocket" else logger.warning)(text)
            self.mode = mode

    async def _websocket(self) -> None:
        try:
            cred = await self.api.chat_credential()
        except CapabilityUnavailable:  # the route moves to REST; the next round follows it
            await self.clock.sleep(next(self._delays))  # never a busy loop: nothing was sent
            return
        except BinanceError as exc:
            self._down(f"no credential ({exc})")
            await self.clock.sleep(next(self._delays))
            return
        t = self.timings
        try:
            async with connect(cred.websocket_url(), ping_interval=None, open_timeout=t.open_timeout,
                               close_timeout=1, proxy=None, max_size=2**22,
                               logger=_WS_LOG) as ws:
                await self._serve(ws)
        except InvalidStatus as exc:
            self._down(f"the websocket refused the credential (HTTP {exc.response.status_code});"
                       " a fresh one is fetched")
        except ConnectionClosed as exc:
            if exc.rcvd is not None and is_kick(exc.rcvd.code, exc.rcvd.reason):
                self._kicked()
            else:
                self._down(self._why or ws_reason(exc))
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self._down(self._why or ws_reason(exc))
        finally:
            self._closed()
        if not self.gave_way:
            await self.clock.sleep(next(self._delays))

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws, self._why = ws, ""
        opened = self.clock.monotonic()
        self.connects += 1
        self._up()
        reader = asyncio.create_task(self._read(ws), name="chat-reader")
        keeper = asyncio.create_task(self._keepalive(ws), name="chat-keepalive")
        try:
            await self.read_history()
            if not reader.done():
                self.ready.set()
            await reader
        finally:
            self.ready.clear()
            keeper.cancel()
            reader.cancel()
            await asyncio.gather(keeper, reader, return_exceptions=True)
            if self.clock.monotonic() - opened >= self.timings.healthy_after:
                self._delays = self._new_delays()

    def _closed(self) -> None:
        if self._ws is not None:  # frames went missing for at most the watchdog's time
            t = self.timings
            lost_from = self.clock.time() - (t.keepalive + t.silence + t.ack)
            self._last_read = lost_from
        self._ws = None
        self.ready.clear()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(ChatLost("the websocket closed"))

    def _up(self) -> None:
        if self._down_since is not None:
            logger.info("chat websocket recovered (connection #{})", self.connects)
        else:
            logger.info("chat websocket connected")
        self._down_since = None

    def _down(self, reason: str) -> None:
        self.failures += 1
        if self._down_since is None:
            self._down_since = self.clock.time()
            logger.warning("chat websocket down: {}; reconnecting with backoff", reason)
        else:
            logger.debug("chat websocket still down: {}", reason)

    def _kicked(self) -> None:
        """Another session took the socket: once too often, give it up instead of fighting."""
        now, t = self.clock.time(), self.timings
        self._kicks.append(now)
        while now - self._kicks[0] > t.kick_window:
            self._kicks.popleft()
        self._down(f"kicked off by another connection on this key ({len(self._kicks)} in "
                   f"{t.kick_window / 60:g} min)")
        if len(self._kicks) < t.kick_limit or self.gave_way:
            return
        self.gave_way = True
        logger.error("chat: another client is using this key's chat: kicked off {} times in {:g} "
                     "min; the websocket is left to it until a restart (messages are read over "
                     "REST, outgoing ones wait)", len(self._kicks), t.kick_window / 60)
        self.bus.publish(ChatTakenOver(len(self._kicks), t.kick_window, now))

    def _cut(self, ws: ClientConnection, why: str) -> None:
        """Drop a connection that is no use (silent)."""
        self._why = why
        logger.warning("chat websocket: {}; reconnecting", why)
        ws.transport.abort()

    async def _keepalive(self, ws: ClientConnection) -> None:
        t = self.timings
        while True:
            await self.clock.sleep(t.keepalive)
            try:
                pong = await ws.ping()
                await within(self.clock, t.silence, pong)
            except TimeoutError:
                self._cut(ws, f"silent: no pong within {t.silence:g} s")
                return
            except ConnectionClosed:
                return

    async def _read(self, ws: ClientConnection) -> None:
        async for text in ws:
            if isinstance(text, str):
                for event in self.protocol.feed(text):
                    await self._handle(event)

    # --- events ----------------------------------------------------------------------

    async def _handle(self, event: ChatEvent) -> None:
        if isinstance(event, Ack):
            await self._keep(event.message, "out", "websocket")
            self._resolve(event.uuid, Delivered(event.message.id or event.uuid))
        elif isinstance(event, Refused):
            logger.warning("chat: order {} message refused by the exchange: {}",
                           event.order_no or "?", event.reason)
            if event.uuid is not None:
                self._resolve(event.uuid, Rejected(event.reason))
        elif isinstance(event, SystemNotice):
            await self._keep(event.message, "system", "websocket")
        elif isinstance(event, Incoming):
            await self._keep(event.message, "in", "websocket")

    def _resolve(self, uuid: str, result: Delivered | Rejected) -> None:
        fut = self._waiters.get(uuid)
        if fut is not None and not fut.done():
            fut.set_result(result)

    async def _keep(self, msg: ChatMessage, direction: str, via: str,
                    publish_status: bool = True) -> bool:
        """Store a message once; publish it (or the status it names) the first time."""
        order = msg.order or ""
        key = msg.id or (f"uuid:{msg.uuid}" if msg.uuid else None)
        if key is None or not order:
            return False
        at = msg.create_time / 1000 if msg.create_time else self.clock.time()
        new = await self.store.add(StoredMessage(key, order, direction, msg.type or "",
                                                 msg.content or "", at, msg.uuid))
        if new and direction == "in":
            self.bus.publish(ChatMessageReceived(order, msg, via, self.clock.time()))
        elif new and direction == "system" and publish_status:
            self._publish_status(order, msg, at)
        return new

    def _publish_status(self, order: str, msg: ChatMessage, at: float) -> None:
        event = system_event(msg.content)
        status = status_of_event(event)
        if status is not None:
            self.bus.publish(OrderStatusHeard(order, status, event, at))

    # --- REST ------------------------------------------------------------------------

    async def history(self, order_no: str) -> list[ChatMessage]:
        """An order's latest messages over REST, stored and published (oldest first).

        Of the system messages read this way only the furthest status is published:
        history read late is a poll, and the steps it skips are inferred, not replayed.
        """
        page = await self.api.chat_messages(order_no, rows=self.timings.history_rows)
        messages = sorted(page.items, key=lambda m: (m.create_time or 0, m.id or ""))
        latest: tuple[int, ChatMessage] | None = None
        for msg in messages:
            direction = direction_of(msg)
            if direction is None:
                continue
            if msg.order is None:
                msg = msg.model_copy(update={"order_no": order_no})
            if await self._keep(msg, direction, "rest", publish_status=False) and \
                    direction == "system":
                rank = RANK.get(status_of_event(system_event(msg.content)) or 0, -1)
                if latest is None or rank >= latest[0]:
                    latest = (rank, msg)
        if latest is not None and latest[0] >= 0:
            msg = latest[1]
            self._publish_status(order_no, msg, (msg.create_time or 0) / 1000 or self.clock.time())
        return messages

    async def read_history(self) -> None:
        """Re-read what may have been missed, then let the desk reconcile its sends."""
        started = self.clock.time()
        try:
            for order in await self.orders_to_read(self._last_read):
                await self.history(order)
        except CapabilityUnavailable as exc:
            logger.debug("chat history not read: {}", exc)
        except BinanceError as exc:
            logger.debug("chat history read failed: {}", exc)
        else:
            self._last_read = started
        await self.on_history()

    # --- sending -----------------------------------------------------------------------

    async def send(self, order_no: str, content: str,
                   uuid: str) -> Delivered | Rejected | Unconfirmed:
        """Send one text and wait for its echo or error frame (Unconfirmed when neither comes);
        ChatLost when the socket is not there or goes."""
        ws = self._ws
        if ws is None or not self.ready.is_set():
            raise ChatLost("the chat websocket is not connected")
        fut: asyncio.Future[Delivered | Rejected] = asyncio.get_running_loop().create_future()
        self._waiters[uuid] = fut
        frame = self.protocol.text_frame(order_no, content, uuid, int(self.clock.time() * 1000))
        try:
            await ws.send(frame)
            return await within(self.clock, self.timings.ack, fut)
        except TimeoutError:
            return Unconfirmed(self.timings.ack)
        except ConnectionClosed:
            raise ChatLost("the websocket closed") from None
        finally:
            self._waiters.pop(uuid, None)
            self.protocol.forget(uuid)


def ws_reason(exc: BaseException) -> str:
    """Why the chat websocket failed, in words (never its URL: it holds the listen key)."""
    if isinstance(exc, ConnectionClosed):
        return "the connection was closed"
    if isinstance(exc, InvalidHandshake):
        return "the websocket handshake failed"
    return transport_reason(exc)
