"""The order chat without a socket: the message log, the frame protocol, and the REST history."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.world.config import ChatConfig
from simulator.world.data import get_int, get_str, page_of

SYSTEM_NICK = "system"


@dataclass(slots=True)
class Message:
    """One chat message of an order, in either direction."""

    id: str
    uuid: str
    type: str
    content: str
    create_ms: int
    order_no: str
    self_: bool
    status: str  # "read" | "unread"
    from_nick: str

    def to_json(self) -> dict[str, Any]:
        """The flat JSON of a message: the websocket frame and the REST row alike."""
        return {"id": self.id, "uuid": self.uuid, "type": self.type, "content": self.content,
                "createTime": self.create_ms, "orderNo": self.order_no, "topicId": self.order_no,
                "topicType": "ORDER", "self": self.self_, "status": self.status,
                "fromNickName": self.from_nick, "clientType": "web", "sendStatus": 0}


@dataclass(frozen=True, slots=True)
class ClientText:
    """A text the merchant sent over the socket."""

    uuid: str
    order_no: str
    content: str
    form: str  # "self" | "topic"


class FrameRefused(Exception):
    """A client frame the exchange answers with an error frame."""

    def __init__(self, reason: str, uuid: Any = None, order_no: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.uuid, self.order_no = reason, uuid, order_no


def parse_client_frame(text: str, accepted_form: str = "both") -> ClientText | None:
    """A merchant frame as a ClientText; None for frames the server ignores (not text);
    FrameRefused for malformed ones or a send form the server does not accept."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise FrameRefused("ILLEGAL_PARAM") from None
    if not isinstance(obj, dict):
        raise FrameRefused("ILLEGAL_PARAM")
    if obj.get("type") != "text":
        return None
    form = "self" if "self" in obj else "topic" if "topicId" in obj else ""
    uuid = obj.get("uuid")
    order_no = obj.get("orderNo") or obj.get("topicId")
    content = obj.get("content")
    if not form or accepted_form not in ("both", form):
        raise FrameRefused("ILLEGAL_PARAM", uuid, order_no)
    if (form == "self" and obj.get("self") is not True) or (
            form == "topic" and obj.get("topicType", "ORDER") != "ORDER"):
        raise FrameRefused("ILLEGAL_PARAM", uuid, order_no)
    if not (isinstance(uuid, str) and uuid and isinstance(order_no, str) and order_no
            and isinstance(content, str) and content):
        raise FrameRefused("ILLEGAL_PARAM", uuid, order_no)
    return ClientText(uuid=uuid, order_no=order_no, content=content, form=form)


def error_frame(reason: str, uuid: Any, order_no: Any) -> dict[str, Any]:
    """The frame that tells the client a message was refused."""
    return {"type": "error", "content": reason, "uuid": uuid, "orderNo": order_no}


def system_event(side: str, status: int) -> str:
    """The system event name for an order reaching `status`, seen by a merchant on `side`."""
    role = "seller" if side == "SELL" else "buyer"
    return {1: f"{role}_merchant_trading", 2: f"{role}_payed", 3: "be_appeal",
            4: f"{role}_completed", 6: f"{role}_cancelled", 7: "cancelled_by_system"}[status]


def statistics_frame(unread: int, open_orders: int) -> dict[str, Any]:
    """A noise frame the client should drop."""
    return {"type": "statistics", "content": json.dumps(
        {"unreadCount": unread, "orderCount": open_orders}, separators=(",", ":"))}


def risk_alert_frame(order_no: str, now_ms: int) -> dict[str, Any]:
    """A noise frame the client should drop."""
    return {"type": "risk_alert", "orderNo": order_no, "topicId": order_no, "createTime": now_ms,
            "content": "Do not release the crypto before the payment is in your account."}


class ChatLog:
    """Every message of every order, and what the merchant sent (accepted or refused)."""

    def __init__(self, rng: random.Random, cfg: ChatConfig, merchant_nick: str) -> None:
        self._rng, self.cfg, self.merchant_nick = rng, cfg, merchant_nick
        self._next_id = rng.randint(2 * 10**18, 3 * 10**18)
        self.by_order: dict[str, list[Message]] = {}
        self._unread: dict[str, int] = {}  # order -> unread messages, kept as statuses change
        self.unread_total = 0  # every order's unread messages (the statistics frame's count)
        self._by_uuid: dict[str, Message] = {}
        self.sent: list[dict[str, Any]] = []
        self.echoes_dropped = 0
        self._words = [w.lower() for w in cfg.firewall_words if w]

    def _new_id(self) -> str:
        self._next_id += self._rng.randint(1, 9999)
        return str(self._next_id)

    def _uuid(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def add(self, order_no: str, kind: str, content: str, now_ms: int, *, self_: bool,
            from_nick: str, uuid: str | None = None, status: str = "read") -> Message:
        """Store a message; ids grow with time, so 'older than id' is a comparison."""
        msg = Message(id=self._new_id(), uuid=uuid or self._uuid(), type=kind, content=content,
                      create_ms=now_ms, order_no=order_no, self_=self_, status=status,
                      from_nick=from_nick)
        self.by_order.setdefault(order_no, []).append(msg)
        if status == "unread":
            self._unread[order_no] = self._unread.get(order_no, 0) + 1
            self.unread_total += 1
        return msg

    def counterparty(self, order_no: str, nickname: str, text: str, now_ms: int) -> Message:
        """A text from the counterparty (unread until the merchant reads or answers)."""
        return self.add(order_no, "text", text, now_ms, self_=False, from_nick=nickname,
                        status="unread")

    def system(self, order_no: str, event: str, now_ms: int) -> Message:
        """A system message; its content is a JSON string naming the event."""
        return self.add(order_no, "system", json.dumps({"type": event}, separators=(",", ":")), now_ms, self_=False,
                        from_nick=SYSTEM_NICK)

    def unread(self, order_no: str) -> int:
        """How many counterparty messages of an order are unread (counted as they come and
        go: a day's statistics frames would otherwise read every message of every order)."""
        return self._unread.get(order_no, 0)

    def mark_read(self, order_no: str) -> None:
        """The merchant has seen the order's chat."""
        if not self._unread.get(order_no):
            return  # every message of it is read already
        for msg in self.by_order.get(order_no, ()):
            msg.status = "read"
        self.unread_total -= self._unread.pop(order_no)

    def receive(self, text: str, now_ms: int,
                has_order: Callable[[str], bool]) -> list[dict[str, Any]]:
        """A frame from the merchant's socket; returns the frames to answer with."""
        try:
            sent = parse_client_frame(text, self.cfg.send_form)
        except FrameRefused as exc:
            self._record(exc.order_no, exc.uuid, None, now_ms, exc.reason)
            return [error_frame(exc.reason, exc.uuid, exc.order_no)]
        if sent is None:
            return []
        known = self._by_uuid.get(sent.uuid)
        if known is not None:  # a resend of the same message: acknowledge once more, store once
            return self._echo(known)
        reason = "NO_PERMISSION" if not has_order(sent.order_no) else (
            "ILLEGAL_PARAM" if self._tripped(sent.content) else "")
        self._record(sent.order_no, sent.uuid, sent.content, now_ms, reason, sent.form)
        if reason:
            return [error_frame(reason, sent.uuid, sent.order_no)]
        msg = self.add(sent.order_no, "text", sent.content, now_ms, self_=True,
                       from_nick=self.merchant_nick, uuid=sent.uuid)
        self._by_uuid[sent.uuid] = msg
        self.mark_read(sent.order_no)
        return self._echo(msg)

    def _echo(self, msg: Message) -> list[dict[str, Any]]:
        """The echo that acknowledges a stored message, unless this one is dropped."""
        drop = self.cfg.echo_drop_probability
        if drop and self._rng.random() < float(drop):
            self.echoes_dropped += 1
            return []
        return [msg.to_json()]

    def _tripped(self, content: str) -> bool:
        low = content.lower()
        return any(word in low for word in self._words)

    def _record(self, order_no: Any, uuid: Any, content: str | None, now_ms: int, reason: str,
                form: str = "") -> None:
        self.sent.append({"orderNo": order_no, "uuid": uuid, "content": content, "time": now_ms,
                          "form": form, "accepted": not reason, "error": reason or None})

    def page(self, query: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """retrieveChatMessagesWithPagination: newest first (or `sort=asc`), `id` = older than."""
        order_no = get_str(query, "orderNo")
        before = get_int(query, "id", default=0)
        sort = get_str(query, "sort", choices=("asc", "desc")) or "desc"
        pool = self.by_order.get(order_no, []) if order_no else [
            m for msgs in self.by_order.values() for m in msgs]
        found = sorted((m for m in pool if not before or int(m.id) < before),
                       key=lambda m: int(m.id), reverse=sort == "desc")
        rows = [m.to_json() for m in page_of(found, query, cap=100, required=True)]
        if order_no:
            self.mark_read(order_no)
        return rows, len(found)
