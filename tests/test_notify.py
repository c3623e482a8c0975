"""Notifications: Telegram and the webhook against a local server; de-duplication; the hourly limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from loguru import logger
from pydantic import SecretStr

from bot.events import CapabilityChanged, Cause, EndpointChanged
from bot.health import CapState, EndpointState
from bot.notify import Note, Notifications, NotifyError, TelegramNotifier, WebhookNotifier
from state.db import Store
from state.notifications import NotificationLog
from tests.support import FakeClock

TOKEN = "123456:AAE-secret-token-value"


@dataclass
class Receiver:
    """A local HTTP server standing in for Telegram and for a webhook."""

    url: str = ""
    got: list[tuple[str, Any]] = field(default_factory=list)
    status: int = 200
    reply: dict[str, Any] = field(default_factory=lambda: {"ok": True,
                                                            "result": {"message_id": 42}})

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((request.path, await request.json()))
        return web.json_response(self.reply, status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[NotificationLog]:
    store = await Store.open(tmp_path / "n.db")
    yield NotificationLog(store)
    await store.close()


@pytest.fixture
def lines() -> Any:
    got: list[str] = []
    handler = logger.add(lambda m: got.append(str(m)), level="DEBUG", format="{message}")
    yield got
    logger.remove(handler)


def note(key: str = "order:1:new", text: str = "New order 1") -> Note:
    return Note("new", key, text, 1_700_000_000.0)


async def test_telegram_sends_the_message_to_the_chat(receiver: Receiver) -> None:
    tg = TelegramNotifier(SecretStr(TOKEN), "-100123", base_url=receiver.url)
    try:
        assert await tg.send(note()) == "message 42"
    finally:
        await tg.close()
    assert receiver.got == [(f"/bot{TOKEN}/sendMessage", {
        "chat_id": "-100123", "text": "New order 1", "disable_web_page_preview": True})]


async def test_a_telegram_refusal_names_the_status_never_the_token(receiver: Receiver,
                                                                    lines: list[str]) -> None:
    receiver.status, receiver.reply = 401, {"ok": False, "error_code": 401,
                                            "description": "Unauthorized"}
    tg = TelegramNotifier(SecretStr(TOKEN), "-100123", base_url=receiver.url)
    try:
        with pytest.raises(NotifyError) as err:
            await tg.send(note())
    finally:
        await tg.close()
    assert str(err.value) == "HTTP 401: Unauthorized"
    assert TOKEN not in repr(tg)


async def test_an_unreachable_telegram_never_shows_the_url(log: NotificationLog,
                                                           lines: list[str]) -> None:
    tg = TelegramNotifier(SecretStr(TOKEN), "1", base_url="http://127.0.0.1:9")  # nothing listens
    notes = Notifications([tg], log, FakeClock())
    try:
        answer = await notes.deliver(note())
    finally:
        await notes.close()
    assert answer.startswith("log: logged; telegram: cannot connect to 127.0.0.1:9")
    assert not any(TOKEN in line or "/bot" in line for line in [*lines, answer])


async def test_the_webhook_posts_json_with_the_key(receiver: Receiver) -> None:
    hook = WebhookNotifier(receiver.url + "/hook")
    try:
        assert await hook.send(note()) == "HTTP 200"
        receiver.status = 500
        with pytest.raises(NotifyError, match="HTTP 500"):
            await hook.send(note())
    finally:
        await hook.close()
    assert receiver.got[0] == ("/hook", {"kind": "new", "key": "order:1:new", "text": "New order 1",
                                         "at": 1_700_000_000.0})


async def test_the_same_key_is_sent_once_within_the_dedupe_window(receiver: Receiver,
                                                                  log: NotificationLog) -> None:
    clock = FakeClock()
    notes = Notifications([WebhookNotifier(receiver.url)], log, clock, dedupe_minutes=10)
    try:
        assert await notes.notify("capability_lost", "capability:chat:lost", "chat down")
        clock.advance(300)
        assert not await notes.notify("capability_lost", "capability:chat:lost", "chat down")
        clock.advance(301)
        assert await notes.notify("capability_lost", "capability:chat:lost", "chat down")
    finally:
        await notes.close()
    assert len(receiver.got) == 2 and notes.suppressed == 1


async def test_each_remote_channel_sends_at_most_max_per_hour(receiver: Receiver,
                                                              log: NotificationLog,
                                                              lines: list[str]) -> None:
    clock = FakeClock()
    notes = Notifications([TelegramNotifier(SecretStr(TOKEN), "1", base_url=receiver.url)], log,
                          clock, dedupe_minutes=0, max_per_hour=2)
    try:
        answers = [await notes.deliver(Note("x", f"k{i}", f"alert {i}", clock.time()))
                   for i in range(3)]
        clock.advance(3601)
        later = await notes.deliver(Note("x", "k3", "alert 3", clock.time()))
    finally:
        await notes.close()
    assert answers[2] == "log: logged; telegram: over 2/h, not sent"
    assert later == "log: logged; telegram: message 42"
    assert len(receiver.got) == 3
    assert sum("ALERT [x]" in line for line in lines) == 4  # the log always has it


async def test_capabilities_lost_and_restored_are_announced_once_each(log: NotificationLog) -> None:
    clock = FakeClock()
    notes = Notifications([], log, clock, dedupe_minutes=10)
    lost = CapabilityChanged("orders", CapState.ENABLED, CapState.DISABLED, None,
                             Cause("list_orders", -2008, "Invalid Api-Key ID."), clock.time())
    back = CapabilityChanged("orders", CapState.DISABLED, CapState.ENABLED, "summary+list", None,
                             clock.time())
    for _ in range(3):  # a flapping endpoint
        await notes.on_capability(lost)
        await notes.on_capability(back)
    degraded = CapabilityChanged("chat", CapState.ENABLED, CapState.DEGRADED, "rest", None, 0.0)
    await notes.on_capability(degraded)
    assert await log.last_sent("capability:orders:lost") is not None
    assert await log.last_sent("capability:orders:restored") is not None
    assert notes.suppressed == 4
    assert await log.last_sent("capability:chat:lost") is None


async def test_repeated_429s_and_a_ban_are_announced(log: NotificationLog) -> None:
    clock = FakeClock()
    banned = {"until": 0.0}
    notes = Notifications([], log, clock, banned_until=lambda: banned["until"])
    hit = EndpointChanged("search", EndpointState.AVAILABLE, EndpointState.FAILING,
                          Cause("search", 429, "Too many requests"), clock.time())
    for _ in range(2):
        await notes.on_endpoint(hit)
    assert await log.last_sent("rate_limit:429") is None
    await notes.on_endpoint(hit)
    assert await log.last_sent("rate_limit:429") is not None
    banned["until"] = clock.time() + 120
    await notes.on_endpoint(hit)
    assert await log.last_sent("ip_ban") is not None
