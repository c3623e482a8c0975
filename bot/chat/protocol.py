"""The order chat's frame protocol, without a socket: feed text, get events; build send frames.

`ChatProtocol.feed(text)` is pure apart from remembering which of our messages
wait for their echo: the echo (`self: true`, our uuid) acknowledges a message,
an `error` frame with our uuid refuses it. Noise (`statistics`, `risk_alert`,
`auto_reply`, other echoes of our own, read marks) is dropped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bot.binance.models import ChatMessage

NOISE = frozenset({"statistics", "risk_alert", "auto_reply", "mark", "recall", "translate"})
INCOMING = frozenset({"text", "image", "card", "video"})
KICK_CODES = frozenset({4001})  # close codes that mean "another session took the socket"


# chat system events (`{"type": ...}`) and the status each one means
SYSTEM_EVENTS: dict[str, int] = {
    "seller_merchant_trading": 1, "buyer_merchant_trading": 1,
    "seller_payed": 2, "buyer_payed": 2,
    "be_appeal": 3, "submit_appeal": 3, "buyer_appeal_completed": 3,
    "seller_completed": 4, "buyer_completed": 4, "seller_quick_completed": 4,
    "seller_cancelled": 6, "buyer_cancelled": 6, "cancelled_by_system": 7,
}
_SUFFIXES = ("_with_ref", "_fiat_trade")


def status_of_event(event: str) -> int | None:
    """The status a chat system event means (`_with_ref`/`_fiat_trade` variants too), or None."""
    name = event.strip().lower()
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name, changed = name[: -len(suffix)], True
    return SYSTEM_EVENTS.get(name)


def is_kick(code: int | None, reason: str = "") -> bool:
    """Whether a close frame says another session took the account's one chat socket.

    Binance's code for it is not documented: the known codes, or a reason that says kicked.
    """
    return code in KICK_CODES or "kick" in reason.lower()


@dataclass(frozen=True, slots=True)
class Incoming:
    """A counterparty message."""

    order_no: str
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class SystemNotice:
    """A system message: `event` as sent, `status` the order status it means (None if unknown)."""

    order_no: str
    event: str
    status: int | None
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class Ack:
    """The echo of a message we sent: it was accepted."""

    uuid: str
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class Refused:
    """An `error` frame: the exchange refused a message (content filter, rights)."""

    uuid: str | None
    order_no: str | None
    reason: str


ChatEvent = Incoming | SystemNotice | Ack | Refused


def system_event(content: str | None) -> str:
    """The event name inside a system message's content (a JSON string), or '' when unreadable."""
    try:
        doc = json.loads(content or "")
    except ValueError:
        return ""
    return str(doc.get("type") or "") if isinstance(doc, dict) else ""


class ChatProtocol:
    """Frames in, events out; remembers the uuids of messages that wait for their echo."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}  # uuid -> order number
        self.dropped: Counter[str] = Counter()

    def text_frame(self, order_no: str, content: str, uuid: str, now_ms: int) -> str:
        """The frame that sends `content` to an order's chat (docs/exchange.md §5, the first form)."""
        self.pending[uuid] = order_no
        return json.dumps({"type": "text", "uuid": uuid, "orderNo": order_no, "content": content,
                           "self": True, "clientType": "web", "createTime": now_ms,
                           "sendStatus": 0}, ensure_ascii=False, separators=(",", ":"))

    def forget(self, uuid: str) -> None:
        """Stop waiting for a message's echo."""
        self.pending.pop(uuid, None)

    def feed(self, text: str) -> list[ChatEvent]:
        """The events in one websocket text frame (a JSON object, or an array of them)."""
        try:
            doc = json.loads(text)
        except ValueError:
            self.dropped["malformed"] += 1
            return []
        frames = doc if isinstance(doc, list) else [doc]
        events: list[ChatEvent] = []
        for frame in frames:
            event = self._one(frame) if isinstance(frame, dict) else None
            if event is not None:
                events.append(event)
            elif not isinstance(frame, dict):
                self.dropped["malformed"] += 1
        return events

    def _one(self, frame: dict[str, Any]) -> ChatEvent | None:
        kind = str(frame.get("type") or "")
        if kind == "error":
            uuid = frame.get("uuid")
            uuid = str(uuid) if uuid is not None else None
            if uuid is not None:
                self.pending.pop(uuid, None)
            order = frame.get("orderNo") or frame.get("topicId")
            return Refused(uuid, None if order is None else str(order),
                           str(frame.get("content") or "refused"))
        try:
            msg = ChatMessage.model_validate(frame)
        except ValidationError:
            self.dropped["malformed"] += 1
            return None
        return self._classify(kind, msg)

    def _classify(self, kind: str, msg: ChatMessage) -> ChatEvent | None:
        order = msg.order
        if msg.is_self and msg.uuid is not None and msg.uuid in self.pending:
            self.pending.pop(msg.uuid)
            return Ack(msg.uuid, msg)
        if kind in NOISE or msg.is_self:
            self.dropped["own echo" if msg.is_self and kind not in NOISE else kind] += 1
            return None
        if order is None:
            self.dropped["no order"] += 1
            return None
        if kind == "system":
            event = system_event(msg.content)
            return SystemNotice(order, event, status_of_event(event), msg)
        if kind in INCOMING:
            return Incoming(order, msg)
        self.dropped[kind or "untyped"] += 1
        return None


def direction_of(msg: ChatMessage) -> str | None:
    """How a REST history row is stored: `in`, `out`, `system`, or None for noise."""
    kind = msg.type or ""
    if kind == "system":
        return "system"
    if kind in NOISE:
        return None
    if msg.is_self:
        return "out"
    return "in" if kind in INCOMING else None
