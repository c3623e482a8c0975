"""A fake Telegram Bot API on 127.0.0.1: getUpdates (long polling) and sendMessage.

Tests queue messages with `say` and wait for the bot's answers with `answer`; the fake
checks the token in the path like the real API (401 otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

TOKEN = "123456:test-console-token"
HOLD = 1.0  # seconds one getUpdates waits for a message before answering with none


class FakeTelegram:
    """The two Bot API methods the console uses, with what was sent kept for assertions."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[tuple[int, str]] = []
        self.answers: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.polls = 0
        self.polled = asyncio.Event()  # set at every getUpdates (cleared by `next_poll`)
        self.hang_sends = False  # True: sendMessage never answers (a Telegram API gone silent)
        self.release = asyncio.Event()
        self._new = asyncio.Event()
        self._next_id = 1
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/getUpdates", self.get_updates)
        app.router.add_post("/bot{token}/sendMessage", self.send_message)
        return app

    def say(self, chat_id: int, text: str, username: str = "merchant",
            date: int | None = None) -> None:
        """A message from `chat_id` to the bot (sent at `date`, epoch seconds: now by default)."""
        self.updates.append({"update_id": self._next_id, "message": {
            "message_id": self._next_id, "text": text, "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()) if date is None else date,
            "from": {"id": chat_id, "is_bot": False, "username": username}}})
        self._next_id += 1
        self._new.set()

    async def answer(self, within: float = 10.0) -> tuple[int, str]:
        """The bot's next answer (chat id, text)."""
        return await asyncio.wait_for(self.answers.get(), within)

    async def next_poll(self, within: float = 10.0) -> None:
        """Wait for the console's next getUpdates: what it received before is handled."""
        self.polled.clear()
        await asyncio.wait_for(self.polled.wait(), within)

    def _authorised(self, request: web.Request) -> bool:
        return request.match_info["token"] == self.token

    async def get_updates(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        body = await request.json()
        offset = int(body.get("offset") or 0)
        self.polls += 1
        self.polled.set()
        self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed: gone
        pending = [u for u in self.updates if u["update_id"] >= offset]
        if not pending:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), min(HOLD, float(body.get("timeout", 0))))
            except TimeoutError:
                pass
            pending = [u for u in self.updates if u["update_id"] >= offset]
        return web.json_response({"ok": True, "result": pending})

    async def send_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        body = await request.json()
        item = (int(body["chat_id"]), str(body["text"]))
        self.sent.append(item)
        self.answers.put_nowait(item)
        if self.hang_sends:
            await self.release.wait()
        return web.json_response({"ok": True, "result": {"message_id": len(self.sent)}})


@asynccontextmanager
async def fake_telegram(token: str = TOKEN) -> AsyncIterator[FakeTelegram]:
    """The fake served on 127.0.0.1 at a free port (`fake.url`)."""
    fake = FakeTelegram(token)
    runner = web.AppRunner(fake.app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
