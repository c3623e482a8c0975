"""The outbox worker: reconcile what a crash left `sending`, wait while chat is down, expire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.binance.errors import EndpointUnregistered
from bot.chat.session import ChatLost, Delivered, Rejected, Unconfirmed
from bot.notify import Notifications
from bot.orders.outbox import OutboxWorker
from state.chat import ChatStore, StoredMessage
from state.db import Store
from state.notifications import NotificationLog
from state.outbox import (
    DONE,
    DRY_RUN,
    EXPIRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    Outbox,
    OutboxItem,
)
from tests.support import FakeClock

ORDER = "22812345678901234567"


@dataclass
class FakeChat:
    """The exchange's chat as the worker sees it: a history to read and a socket to send on."""

    chats: ChatStore
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    server: list[StoredMessage] = field(default_factory=list)  # what the exchange has
    readable: bool = True
    answer: Any = None  # Rejected, Unconfirmed, ChatLost, or None (delivered)
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def history(self, order_no: str) -> list[Any]:
        if not self.readable:
            raise EndpointUnregistered("Invalid Api-Key ID.", endpoint="chat_messages", code=-2008)
        for msg in self.server:
            await self.chats.add(msg)
        return []

    async def send(self, order_no: str, content: str, uuid: str) -> Any:
        self.sent.append((order_no, content, uuid))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer or Delivered(f"21{len(self.sent):017d}")


@dataclass
class Desk:
    outbox: Outbox
    chat: FakeChat
    worker: OutboxWorker
    clock: FakeClock
    log: NotificationLog

    async def row(self, status: str = "new", action: str = "chat") -> Any:
        return await self.outbox.get(ORDER, status, action)

    async def left_sending(self, status: str = "new", content: str = "Hello!") -> Any:
        """A row a crash left between claim and answer."""
        await self.outbox.add([OutboxItem(ORDER, status, "chat", {"uuid": f"u-{status}",
                                                                  "content": content})],
                              self.clock.time())
        row = await self.row(status)
        assert await self.outbox.claim(row.id, self.clock.time())
        return row


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    store = await Store.open(tmp_path / "d.db")
    clock = FakeClock(1_751_796_000.0)
    chats, outbox, log = ChatStore(store), Outbox(store), NotificationLog(store)
    chat = FakeChat(chats)
    notes = Notifications([], log, clock)
    worker = OutboxWorker(outbox, chat, notes, chats, clock, expiry_minutes=30)  # type: ignore[arg-type]
    yield Desk(outbox, chat, worker, clock, log)
    await store.close()


def on_server(uuid: str, content: str = "Hello!", at: float = 1_751_796_001.0) -> StoredMessage:
    return StoredMessage("2123456789012345678", ORDER, "out", "text", content, at, uuid)


async def test_a_message_found_in_the_history_is_done_and_not_sent_again(desk: Desk) -> None:
    await desk.left_sending()
    desk.chat.server.append(on_server("u-new"))
    await desk.worker.reconcile_chat()
    desk.chat.ready.set()
    await desk.worker.pass_once()
    row = await desk.row()
    assert (row.state, row.answer) == (DONE, "message 2123456789012345678 (found in chat history)")
    assert desk.chat.sent == []


async def test_a_message_found_by_its_exact_content_is_done(desk: Desk) -> None:
    await desk.left_sending()
    desk.chat.server.append(on_server("binance-gave-another-uuid"))
    await desk.worker.reconcile_chat()
    assert (await desk.row()).state == DONE


async def test_a_message_not_in_the_history_is_sent_again_once_with_its_uuid(desk: Desk) -> None:
    await desk.left_sending()
    await desk.worker.reconcile_chat()
    assert (await desk.row()).state == PENDING
    desk.chat.ready.set()
    await desk.worker.pass_once()
    await desk.worker.pass_once()
    assert desk.chat.sent == [(ORDER, "Hello!", "u-new")]
    row = await desk.row()
    assert (row.state, row.attempts) == (DONE, 2)


async def test_an_unreadable_history_never_means_a_blind_resend(desk: Desk) -> None:
    await desk.left_sending()
    desk.chat.readable = False
    desk.chat.ready.set()
    await desk.worker.reconcile_chat()
    await desk.worker.pass_once()
    assert (await desk.row()).state == SENDING and desk.chat.sent == []
    desk.clock.advance(31 * 60)
    await desk.worker.reconcile_chat()
    row = await desk.row()
    assert (row.state, row.answer) == (EXPIRED, "unknown: chat history unreadable")


async def test_an_unreadable_history_is_read_again_by_the_next_pass_not_the_next_reconnect(
        desk: Desk) -> None:
    await desk.left_sending()
    await desk.left_sending("completed", "Thanks!")
    desk.chat.server.append(on_server("u-new"))  # the greeting got through, "completed" did not
    desk.chat.readable = False
    await desk.worker.reconcile_chat()  # at a reconnect: one failed read (a 5xx, a flap)
    desk.chat.ready.set()
    desk.chat.readable = True
    desk.clock.advance(60)
    await desk.worker.pass_once()  # the socket stays up: no other reconnect comes
    assert [(r.status, r.state) for r in await desk.outbox.for_order(ORDER)] == [
        ("new", DONE), ("completed", DONE)]
    assert desk.chat.sent == [(ORDER, "Thanks!", "u-completed")]
    await desk.worker.pass_once()
    assert len(desk.chat.sent) == 1


async def test_messages_wait_while_the_chat_is_down_and_expire_unsent(desk: Desk) -> None:
    await desk.outbox.add([OutboxItem(ORDER, "new", "chat", {"uuid": "u-1", "content": "hi"})],
                          desk.clock.time())
    await desk.worker.pass_once()
    assert (await desk.row()).state == PENDING
    desk.clock.advance(30 * 60)
    desk.chat.ready.set()
    await desk.worker.pass_once()
    row = await desk.row()
    assert (row.state, row.attempts) == (EXPIRED, 0) and desk.chat.sent == []


async def test_a_lost_socket_leaves_the_row_for_the_next_reconcile(desk: Desk) -> None:
    await desk.outbox.add([OutboxItem(ORDER, s, "chat", {"uuid": f"u-{s}", "content": s})
                           for s in ("new", "completed")], desk.clock.time())
    desk.chat.ready.set()
    desk.chat.answer = ChatLost("no acknowledgement")
    await desk.worker.pass_once()
    assert [(r.status, r.state) for r in await desk.outbox.for_order(ORDER)] == [
        ("new", SENDING), ("completed", PENDING)]  # nothing more goes out on a dead socket
    assert len(desk.chat.sent) == 1


async def test_no_echo_and_no_error_is_taken_as_sent_then_confirmed_from_history(
        desk: Desk) -> None:
    await desk.outbox.add([OutboxItem(ORDER, s, "chat", {"uuid": f"u-{s}", "content": s})
                           for s in ("new", "completed")], desk.clock.time())
    desk.chat.ready.set()
    desk.chat.answer = Unconfirmed(1.5)  # the exchange stored them but echoed neither
    await desk.worker.pass_once()
    assert [(r.status, r.state) for r in await desk.outbox.for_order(ORDER)] == [
        ("new", SENT), ("completed", SENT)]  # the second did not wait on the first's echo
    assert desk.worker.sent == 2
    desk.chat.server.append(on_server("u-new", "new"))
    await desk.worker.confirm_sent()  # too early: nothing read yet
    assert (await desk.row()).state == SENT
    desk.clock.advance(desk.worker.confirm_after)
    await desk.worker.confirm_sent()
    rows = await desk.outbox.for_order(ORDER)
    assert [(r.status, r.state) for r in rows] == [("new", DONE), ("completed", PENDING)]
    assert "found in chat history" in (rows[0].answer or "")
    desk.chat.answer = None  # the one the history lacks goes out again, with its uuid
    await desk.worker.pass_once()
    assert desk.chat.sent[-1] == (ORDER, "completed", "u-completed")
    assert (await desk.row("completed")).state == DONE


async def test_an_unconfirmed_message_is_checked_at_the_reconnect(desk: Desk) -> None:
    await desk.outbox.add([OutboxItem(ORDER, "new", "chat", {"uuid": "u-new", "content": "Hello!"})],
                          desk.clock.time())
    desk.chat.ready.set()
    desk.chat.answer = Unconfirmed(1.5)
    await desk.worker.pass_once()
    desk.chat.ready.clear()  # the socket went before the check was due
    desk.chat.server.append(on_server("u-new"))
    await desk.worker.reconcile_chat()
    assert (await desk.row()).state == DONE and len(desk.chat.sent) == 1


async def test_a_refused_message_fails_and_is_reported(desk: Desk) -> None:
    await desk.outbox.add([OutboxItem(ORDER, "new", "chat", {"uuid": "u-1", "content": "t.me/x"})],
                          desk.clock.time())
    desk.chat.ready.set()
    desk.chat.answer = Rejected("ILLEGAL_PARAM")
    await desk.worker.pass_once()
    await desk.worker.pass_once()
    row = await desk.row()
    assert (row.state, row.answer, row.attempts) == (FAILED, "refused: ILLEGAL_PARAM", 1)
    assert await desk.log.last_sent(f"chat_refused:{row.key}") is not None
    assert len(desk.chat.sent) == 1


async def test_notifications_left_sending_are_delivered_unless_the_log_has_them(desk: Desk) -> None:
    items = [OutboxItem(ORDER, s, "notify", {"kind": s, "key": f"order:{ORDER}:{s}", "text": s})
             for s in ("new", "buyer_paid")]
    await desk.outbox.add(items, desk.clock.time())
    for row in await desk.outbox.in_state(PENDING):
        await desk.outbox.claim(row.id, desk.clock.time())
    await desk.log.record(f"order:{ORDER}:new", "new", desk.clock.time(), ["log"])  # went out
    await desk.worker.reconcile_notes()
    await desk.worker.pass_once()
    new, paid = await desk.row("new", "notify"), await desk.row("buyer_paid", "notify")
    assert (new.state, new.answer) == (DONE, "delivered before a restart")
    assert (paid.state, paid.answer) == (DONE, "log: logged")


async def test_a_dry_run_stores_what_it_would_send_and_never_sends_it(desk: Desk) -> None:
    """The flag is read at every row: a message waiting when dry run goes on is never sent."""
    dry = [False]
    desk.worker.dry_run = lambda: dry[0]
    await desk.outbox.add([OutboxItem(ORDER, "new", "chat", {"uuid": "u-1", "content": "Hello!"})],
                          desk.clock.time())
    await desk.worker.pass_once()  # the socket is down: it waits
    dry[0] = True  # a reload turns dry run on
    desk.chat.ready.set()
    await desk.outbox.add([OutboxItem(ORDER, "new", "notify",
                                      {"kind": "new", "key": f"order:{ORDER}:new",
                                       "text": "New order"})], desk.clock.time())
    await desk.worker.pass_once()
    dry[0] = False  # and off again: what was not sent stays unsent
    await desk.worker.pass_once()
    chat, note = await desk.row(), await desk.row("new", "notify")
    assert (chat.state, chat.answer) == (DRY_RUN, "dry run: would send: Hello!")
    assert desk.chat.sent == []
    assert note.state == DONE and await desk.log.last_sent(f"order:{ORDER}:new") is not None


async def test_an_idle_outbox_naps_long_and_a_new_row_wakes_it(desk: Desk) -> None:
    """With nothing pending or unconfirmed the worker looks at the store once a minute, not
    every 5 s (51,000 selects in a simulated day of the desk before); a new row still goes
    out at once, because adding one sets `wake`, and a waiting row brings the 5 s tick back."""
    from bot.orders.outbox import IDLE_TICK

    clock, napped, want = desk.clock, asyncio.Event(), [0]
    fake_sleep = clock.sleep

    async def sleep(seconds: float) -> None:  # the worker's naps, counted as they start
        if len(clock.sleeps) + 1 >= want[0]:
            napped.set()
        await fake_sleep(seconds)

    async def naps(count: int) -> list[float]:
        """The next `count` naps' lengths (each pass ends in one)."""
        first, want[0] = len(clock.sleeps), len(clock.sleeps) + count
        napped.clear()
        await asyncio.wait_for(napped.wait(), 10)
        return clock.sleeps[first:first + count]

    clock.sleep = sleep  # type: ignore[method-assign]
    desk.chat.ready.set()
    task = asyncio.create_task(desk.worker.run())
    try:
        assert await naps(3) == [IDLE_TICK] * 3
        await desk.outbox.add([OutboxItem(ORDER, "new", "chat", {"uuid": "u-new",
                                                                 "content": "Hello!"})],
                              clock.time())
        desk.worker.wake.set()  # as the desk does when it queues rows
        await naps(2)
        assert (await desk.row()).state == DONE and desk.chat.sent == [(ORDER, "Hello!", "u-new")]
        desk.chat.ready.clear()  # a row that must wait for the socket: the short tick again
        await desk.outbox.add([OutboxItem(ORDER, "completed", "chat", {"uuid": "u-c",
                                                                       "content": "Bye"})],
                              clock.time())
        desk.worker.wake.set()
        assert (await naps(4))[1:] == [desk.worker.tick] * 3  # [0]: the idle nap it was in
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
