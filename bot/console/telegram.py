"""The console's transport: the Telegram Bot API over aiohttp, long polling (getUpdates).

Why not a Telegram library: the console needs two calls (getUpdates, sendMessage) and the
bot already depends on aiohttp, whose timeouts, sessions and proxy handling it knows; a
library would add a second HTTP stack and its own loop and logging to a daemon that must
keep the token out of every log line. Long polling needs no public address (no webhook).

Only chats on `[telegram] allowed_chat_ids` are obeyed; a message from any other chat is
ignored and logged once per chat. Answers go through a bounded queue that one sender task
drains: an unreachable or slow Telegram API fills the queue and further answers are
dropped and counted (`p2pbot_console_dropped_total`), so nothing waits on Telegram but the
console's own tasks. The token is a secret: registered for redaction, never in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from loguru import logger
from pydantic import SecretStr

from bot.binance.client import transport_reason
from bot.logs import register_secret
from config.models import TelegramConfig

if TYPE_CHECKING:
    pass

MAX_TEXT = 4000  # characters of one message (Telegram takes 4096)
SEND_TIMEOUT = 10.0
BACKOFF_CAP = 60.0
STALE = 300.0  # seconds after which a command that waited at Telegram (the bot was down) is refused

Handler = Callable[[int, str, str], Awaitable[str]]


class ConsoleError(Exception):
    """A call to the Bot API failed; the message names no token and no URL."""


class TelegramConsole:
    """Polls for commands, answers them through a bounded queue."""

    def __init__(self, token: SecretStr, cfg: TelegramConfig, handler: Handler,
                 session: aiohttp.ClientSession | None = None) -> None:
        register_secret(token)
        self._token = token
        self.base_url = cfg.api_url.rstrip("/")
        self.allowed = frozenset(cfg.allowed_chat_ids)
        self.poll_seconds = cfg.poll_seconds
        self.handler = handler
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(cfg.queue_size)
        self.dropped = 0  # answers not sent: the queue was full, or Telegram refused them
        self.handled = 0  # commands answered
        self.offset = 0
        self.ignored: set[int] = set()  # chats not allowed, said once each
        self._session = session
        self._failing = False

    def __repr__(self) -> str:
        return f"TelegramConsole(allowed={sorted(self.allowed)!r})"

    def _get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _call(self, method: str, body: dict[str, Any], wait: float) -> Any:
        url = f"{self.base_url}/bot{self._token.get_secret_value()}/{method}"
        try:
            async with self._get().post(url, json=body, allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=wait)) as resp:
                try:
                    doc = await resp.json(content_type=None)
                except ValueError:
                    doc = None
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ConsoleError(f"{method}: {transport_reason(exc, wait)}") from None
        if status != 200 or not isinstance(doc, dict) or doc.get("ok") is not True:
            said = doc.get("description") if isinstance(doc, dict) else None
            raise ConsoleError(f"{method}: HTTP {status}" + (f": {str(said)[:100]}" if said else ""))
        return doc.get("result")

    # --- receiving ---------------------------------------------------------------------

    async def poll(self) -> None:
        """Long-poll getUpdates until cancelled; failures back off (1 s doubling to 60 s)."""
        delay = 1.0
        while True:
            try:
                updates = await self._call(
                    "getUpdates", {"offset": self.offset, "timeout": self.poll_seconds,
                                   "allowed_updates": ["message"]}, self.poll_seconds + 10)
            except ConsoleError as exc:
                if not self._failing:
                    logger.warning("console: Telegram unreachable ({}); retrying", exc)
                self._failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP)
                continue
            if self._failing:
                logger.info("console: Telegram reachable again")
            self._failing, delay = False, 1.0
            for update in updates if isinstance(updates, list) else []:
                await self.on_update(update)

    async def on_update(self, update: Any) -> None:
        """One update: a command from an allowed chat is handled; anything else ignored."""
        if not isinstance(update, dict):
            return
        uid = update.get("update_id")
        if isinstance(uid, int):
            self.offset = max(self.offset, uid + 1)
        msg = update.get("message")
        if not isinstance(msg, dict):
            return
        chat = msg.get("chat")
        text = msg.get("text")
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        if not isinstance(chat_id, int) or not isinstance(text, str):
            return
        got = msg.get("from")
        sender: dict[str, Any] = got if isinstance(got, dict) else {}
        who = str(sender.get("username") or sender.get("id") or chat_id)
        if chat_id not in self.allowed:
            if chat_id not in self.ignored:
                self.ignored.add(chat_id)
                logger.warning("console: ignored a message from chat {} ({}): not in [telegram] "
                               "allowed_chat_ids (said once per chat)", chat_id, who)
            return
        sent = msg.get("date")
        if isinstance(sent, int) and time.time() - sent > STALE:  # Telegram's clock: real time
            logger.warning("console: {} sent {!r} {:.0f} min ago, while the bot was not running: "
                           "not obeyed", who, text[:100], (time.time() - sent) / 60)
            self.send(chat_id, f"not obeyed: {text[:100]!r} was sent "
                               f"{(time.time() - sent) / 60:.0f} min ago, while the bot was not "
                               "running; send it again if you still mean it")
            return
        try:
            answer = await self.handler(chat_id, who, text)
        except Exception as exc:  # a command must never stop the console
            logger.exception("console: {!r} from {} failed", text[:100], who)
            answer = f"error: {type(exc).__name__}: the command failed; see the bot's log"
        self.handled += 1
        self.send(chat_id, answer)

    # --- answering ---------------------------------------------------------------------

    def send(self, chat_id: int, text: str) -> bool:
        """Queue an answer; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait((chat_id, text[:MAX_TEXT]))
        except asyncio.QueueFull:
            self.dropped += 1
            logger.debug("console: answer to chat {} dropped (queue full)", chat_id)
            return False
        return True

    async def sender(self) -> None:
        """Send queued answers one by one until cancelled."""
        while True:
            chat_id, text = await self.queue.get()
            try:
                await self._call("sendMessage", {"chat_id": chat_id, "text": text,
                                                 "disable_web_page_preview": True}, SEND_TIMEOUT)
            except ConsoleError as exc:
                self.dropped += 1
                logger.warning("console: answer to chat {} not sent: {}", chat_id, exc)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(Exception):
                await self._session.close()


def telegram_problems(cfg: TelegramConfig, token: SecretStr | None, path: object) -> list[str]:
    """Why the console cannot run as configured (check-config and run exit 2 with it)."""
    if cfg.enabled and (token is None or not token.get_secret_value()):
        return [f"{path}: [telegram] → enabled: true, but P2PBOT_TELEGRAM_TOKEN (or "
                "P2PBOT_TELEGRAM_TOKEN_FILE) is not set: the console needs the bot's token"]
    return []
