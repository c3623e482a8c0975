"""Notifications: the log (always), a JSON webhook, Telegram; de-duplicated and rate-limited.

`Notifications.notify(kind, key, text)` is the hook for everyone (the pricing
engine calls it when a guard blocks a reprice): the same key within
`dedupe_minutes` is sent once, and each remote channel sends at most
`max_per_hour`, so a flapping endpoint cannot flood a phone. Alerts that must be
exactly-once per order go through the outbox and `deliver` instead.
The Telegram token is a secret: it is registered for log redaction and never
put in a message; errors name the HTTP status, never the URL.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
from loguru import logger
from pydantic import SecretStr

from bot.binance.client import transport_reason
from bot.binance.errors import SHAPE_CHANGED
from bot.capabilities.registry import describe_causes
from bot.capabilities.table import CAPABILITIES
from bot.clock import Clock
from bot.events import CapabilityChanged, ChatTakenOver, EndpointChanged
from bot.health import CapState, EndpointState
from bot.logs import register_secret
from state.notifications import NotificationLog

TELEGRAM_API = "https://api.telegram.org"
TIMEOUT = aiohttp.ClientTimeout(total=10)
RATE_CODES = frozenset({429, -1003})
RATE_WINDOW = 600.0  # seconds in which repeated 429s count
RATE_REPEATS = 3


@dataclass(frozen=True, slots=True)
class Note:
    """One notification."""

    kind: str
    key: str
    text: str
    at: float


class NotifyError(Exception):
    """A channel could not deliver; the message is safe to log (no token, no URL)."""


class Notifier(Protocol):
    """A channel."""

    name: str

    async def send(self, note: Note) -> str:
        """Deliver one note; returns a short answer, raises NotifyError."""
        ...


class LogNotifier:
    """The log: always on, never limited."""

    name = "log"

    async def send(self, note: Note) -> str:
        """Log the note as a warning."""
        logger.warning("ALERT [{}] {}", note.kind, note.text)
        return "logged"


class _HttpNotifier:
    """A channel that POSTs JSON on one lazily opened aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._own = session is None

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session, self._own = aiohttp.ClientSession(timeout=TIMEOUT), True
        return self._session

    async def _post(self, url: str, body: dict[str, object]) -> tuple[int, object]:
        try:
            async with self._get().post(url, json=body, allow_redirects=False) as resp:
                try:
                    doc: object = await resp.json(content_type=None)
                except ValueError:
                    doc = None
                return resp.status, doc
        except (TimeoutError, aiohttp.ClientError) as exc:
            # the host only: a webhook path or the Telegram URL carries a token
            raise NotifyError(f"{transport_reason(exc, TIMEOUT.total)} "
                              f"(sending to {urlsplit(url).hostname})") from None

    async def close(self) -> None:
        """Close the session if this channel opened it."""
        if self._own and self._session is not None and not self._session.closed:
            await self._session.close()


class WebhookNotifier(_HttpNotifier):
    """POST {kind, key, text, at} as JSON; any 2xx is delivered. `key` lets a receiver dedupe."""

    name = "webhook"

    def __init__(self, url: str, session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(session)
        self.url = url

    async def send(self, note: Note) -> str:
        """POST the note."""
        status, _ = await self._post(self.url, asdict(note))
        if not 200 <= status < 300:
            raise NotifyError(f"HTTP {status}")
        return f"HTTP {status}"


class TelegramNotifier(_HttpNotifier):
    """The Bot API's sendMessage; `base_url` is injectable (tests use a local server)."""

    name = "telegram"

    def __init__(self, token: SecretStr, chat_id: str, *, base_url: str = TELEGRAM_API,
                 session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(session)
        register_secret(token)
        self._token, self.chat_id, self.base_url = token, chat_id, base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"TelegramNotifier(chat_id={self.chat_id!r})"

    async def send(self, note: Note) -> str:
        """sendMessage to the chat."""
        url = f"{self.base_url}/bot{self._token.get_secret_value()}/sendMessage"
        body = {"chat_id": self.chat_id, "text": note.text[:4000],
                "disable_web_page_preview": True}
        status, doc = await self._post(url, body)
        ok = isinstance(doc, dict) and doc.get("ok") is True
        if status != 200 or not ok:
            said = doc.get("description") if isinstance(doc, dict) else None
            raise NotifyError(f"HTTP {status}" + (f": {str(said)[:100]}" if said else ""))
        result = doc.get("result") if isinstance(doc, dict) else None
        msg_id = result.get("message_id") if isinstance(result, dict) else None
        return f"message {msg_id}"


class Notifications:
    """Fans a note out to the channels, with de-duplication and an hourly limit per channel."""

    def __init__(self, channels: list[Notifier], log: NotificationLog, clock: Clock, *,
                 dedupe_minutes: int = 10, max_per_hour: int = 30,
                 banned_until: Callable[[], float] | None = None) -> None:
        self.channels = [LogNotifier(), *[c for c in channels if c.name != "log"]]
        self.log, self.clock = log, clock
        self.dedupe = dedupe_minutes * 60.0
        self.max_per_hour = max_per_hour
        self.banned_until = banned_until or (lambda: 0.0)
        self.suppressed = 0
        self._rate_hits: deque[float] = deque()

    async def notify(self, kind: str, key: str, text: str) -> bool:
        """Send unless the same key went out within the dedupe window; True when sent."""
        now = self.clock.time()
        last = await self.log.last_sent(key)
        if self.dedupe and last is not None and now - last < self.dedupe:
            self.suppressed += 1
            logger.debug("notification {} suppressed: sent {:.0f} s ago", key, now - last)
            return False
        await self.deliver(Note(kind, key, text, now))
        return True

    async def deliver(self, note: Note) -> str:
        """Send on every channel within its hourly limit; returns what each channel answered."""
        answers, delivered = [], []
        for channel in self.channels:
            if channel.name != "log":
                used = await self.log.sent_on(channel.name, note.at - 3600)
                if used >= self.max_per_hour:
                    answers.append(f"{channel.name}: over {self.max_per_hour}/h, not sent")
                    continue
            try:
                answers.append(f"{channel.name}: {await channel.send(note)}")
                delivered.append(channel.name)
            except NotifyError as exc:
                logger.warning("notification {} not delivered on {}: {}", note.key, channel.name, exc)
                answers.append(f"{channel.name}: {exc}")
        await self.log.record(note.key, note.kind, note.at, delivered)
        return "; ".join(answers)

    async def alert_now(self, kind: str, text: str) -> None:
        """Send on every channel without the store (it may be what failed): best effort, no dedupe."""
        note = Note(kind, kind, text, self.clock.time())
        for channel in self.channels:
            try:
                await channel.send(note)
            except NotifyError as exc:
                logger.warning("notification {} not delivered on {}: {}", kind, channel.name, exc)

    async def was_sent(self, key: str) -> bool:
        """True when a notification with `key` went out (an outbox row crashed after sending)."""
        return await self.log.last_sent(key) is not None

    async def on_capability(self, ev: CapabilityChanged) -> None:
        """Capability lost and restored."""
        spec = CAPABILITIES.get(ev.capability)
        cause = ""
        if ev.causes:  # disabled: every endpoint down, on every source
            cause = f" ({describe_causes(ev.causes)})"
        elif ev.cause is not None:
            code = f" {ev.cause.code}" if ev.cause.code is not None else ""
            cause = f" ({ev.cause.endpoint}{code} {ev.cause.message})".rstrip()
        if ev.new is CapState.DISABLED:
            without = spec.without if spec else ""
            await self.notify("capability_lost", f"capability:{ev.capability}:lost",
                              f"Capability {ev.capability} lost{cause}: {without}.")
        elif ev.old is CapState.DISABLED:
            await self.notify("capability_restored", f"capability:{ev.capability}:restored",
                              f"Capability {ev.capability} restored: running on {ev.source}.")

    async def on_chat_taken_over(self, ev: ChatTakenOver) -> None:
        """The chat socket was given up to another client: said once, with what to do."""
        await self.notify(
            "chat_taken_over", "chat:taken_over",
            f"Another client is using this key's chat: it kicked the bot's chat websocket off "
            f"{ev.kicks} times in {ev.window / 60:g} min, so the bot stopped reconnecting instead "
            "of fighting. Messages from counterparties are read over REST; messages to them wait "
            "in the outbox and expire unsent. Stop the other client (another p2pbot or tool on "
            "this API key), then restart the bot.")

    async def on_endpoint(self, ev: EndpointChanged) -> None:
        """An IP ban, an answer whose shape changed, or 429s that keep coming."""
        now = self.clock.time()
        until = self.banned_until()
        if until > now:
            await self.notify("banned", "ip_ban", f"The exchange banned this IP for "
                              f"{until - now:.0f} s: all requests stopped until then.")
            return
        if ev.new is EndpointState.FAILING and ev.cause.message.startswith(SHAPE_CHANGED):
            await self.notify("bad_answer", f"shape:{ev.endpoint}",
                              f"{ev.endpoint}: {ev.cause.message}. The bot counts the endpoint as "
                              "failing and re-tests it; what needs it is off until the answer "
                              "reads again (check for a p2pbot update).")
            return
        if ev.new is not EndpointState.FAILING or ev.cause.code not in RATE_CODES:
            return
        self._rate_hits.append(now)
        while self._rate_hits and now - self._rate_hits[0] > RATE_WINDOW:
            self._rate_hits.popleft()
        if len(self._rate_hits) >= RATE_REPEATS:
            await self.notify("rate_limited", "rate_limit:429",
                              f"The exchange answered 429 (too many requests) "
                              f"{len(self._rate_hits)} times in {RATE_WINDOW / 60:.0f} min; "
                              "the bot slows down. Check the weight budget ([bot] weight_budget).")

    async def close(self) -> None:
        """Close the channels' sessions."""
        for channel in self.channels:
            closer = getattr(channel, "close", None)
            if closer is not None:
                await closer()
