"""ChatProtocol without a socket: frames as docs/exchange.md §5 shows them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.binance.models import ChatMessage
from bot.chat.protocol import (
    Ack,
    ChatProtocol,
    Incoming,
    Refused,
    SystemNotice,
    direction_of,
    is_kick,
)

ORDER = "22812345678901234567"
MS = 1_751_796_000_000


def frame(**fields: Any) -> str:
    base = {"id": "2123456789012345678", "uuid": "c0ffee00-0000-4000-8000-000000000001",
            "type": "text", "content": "Hello, is it available?", "createTime": MS,
            "orderNo": ORDER, "topicId": ORDER, "self": False, "status": "unread",
            "fromNickName": "alice"}
    return json.dumps({**base, **fields})


def system(event: str) -> str:
    return frame(type="system", content=json.dumps({"type": event}), fromNickName="system",
                 status="read")


def test_the_send_frame_is_the_api_page_form() -> None:
    proto = ChatProtocol()
    text = proto.text_frame(ORDER, "Привет {x}", "u-1", MS)
    assert json.loads(text) == {"type": "text", "uuid": "u-1", "orderNo": ORDER,
                                "content": "Привет {x}", "self": True, "clientType": "web",
                                "createTime": MS, "sendStatus": 0}
    assert list(json.loads(text)) == ["type", "uuid", "orderNo", "content", "self", "clientType",
                                      "createTime", "sendStatus"]
    assert proto.pending == {"u-1": ORDER}


def test_a_counterparty_text_is_incoming_with_its_ids_as_strings() -> None:
    (event,) = ChatProtocol().feed(frame())
    assert isinstance(event, Incoming) and event.order_no == ORDER
    assert event.message.id == "2123456789012345678" and event.message.content == "Hello, is it available?"
    assert event.message.from_nick_name == "alice" and event.message.is_self is False


def test_a_numeric_id_keeps_every_digit() -> None:
    text = frame().replace('"2123456789012345678"', "2123456789012345678")
    (event,) = ChatProtocol().feed(text)
    assert isinstance(event, Incoming) and event.message.id == "2123456789012345678"


def test_topic_id_alone_names_the_order() -> None:
    doc = json.loads(frame(type="image", content="https://bin.bnbstatic.com/x.png"))
    del doc["orderNo"]
    (event,) = ChatProtocol().feed(json.dumps(doc))
    assert isinstance(event, Incoming) and event.order_no == ORDER


@pytest.mark.parametrize(("event", "status"), [
    ("seller_merchant_trading", 1), ("buyer_merchant_trading", 1),
    ("seller_payed", 2), ("buyer_payed", 2), ("buyer_payed_with_ref", 2),
    ("be_appeal", 3), ("submit_appeal", 3),
    ("seller_completed", 4), ("buyer_completed", 4), ("seller_quick_completed_fiat_trade", 4),
    ("seller_cancelled", 6), ("buyer_cancelled_with_ref", 6), ("cancelled_by_system", 7),
    ("something_new", None),
])
def test_system_messages_name_the_status(event: str, status: int | None) -> None:
    (notice,) = ChatProtocol().feed(system(event))
    assert isinstance(notice, SystemNotice)
    assert (notice.order_no, notice.event, notice.status) == (ORDER, event, status)


def test_our_echo_acknowledges_once_and_other_echoes_are_dropped() -> None:
    proto = ChatProtocol()
    proto.text_frame(ORDER, "hi", "u-1", MS)
    echo = frame(uuid="u-1", self=True, content="hi", fromNickName="Me", status="read")
    (ack,) = proto.feed(echo)
    assert isinstance(ack, Ack) and ack.uuid == "u-1" and ack.message.id == "2123456789012345678"
    assert proto.feed(echo) == []  # a second echo of the same message
    assert proto.feed(frame(uuid="from-the-phone", self=True)) == []
    assert proto.dropped["own echo"] == 2 and proto.pending == {}


def test_an_error_frame_refuses_our_message() -> None:
    proto = ChatProtocol()
    proto.text_frame(ORDER, "see t.me/x", "u-2", MS)
    text = json.dumps({"type": "error", "content": "ILLEGAL_PARAM", "uuid": "u-2", "orderNo": ORDER})
    assert proto.feed(text) == [Refused("u-2", ORDER, "ILLEGAL_PARAM")]
    assert proto.pending == {}


@pytest.mark.parametrize("text", [
    json.dumps({"type": "statistics", "content": '{"unreadCount":1,"orderCount":2}'}),
    json.dumps({"type": "risk_alert", "orderNo": ORDER, "topicId": ORDER, "createTime": MS,
                "content": "Do not release the crypto before the payment is in your account."}),
    frame(type="auto_reply", self=True, content="Thanks for your order"),
    frame(type="mark"),
    frame(type="recall"),
])
def test_noise_is_dropped_and_counted(text: str) -> None:
    proto = ChatProtocol()
    assert proto.feed(text) == []
    assert sum(proto.dropped.values()) == 1


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"a string"',
                                  json.dumps({"type": "text", "createTime": "yesterday"})])
def test_malformed_frames_are_dropped(text: str) -> None:
    proto = ChatProtocol()
    assert proto.feed(text) == []
    assert proto.dropped["malformed"] >= 1


def test_an_array_of_frames_gives_every_event() -> None:
    text = "[" + ",".join([frame(), system("seller_payed")]) + "]"
    events = ChatProtocol().feed(text)
    assert [type(e) for e in events] == [Incoming, SystemNotice]


def test_a_frame_without_an_order_is_dropped() -> None:
    doc = json.loads(frame())
    del doc["orderNo"], doc["topicId"]
    proto = ChatProtocol()
    assert proto.feed(json.dumps(doc)) == [] and proto.dropped["no order"] == 1


@pytest.mark.parametrize(("fields", "direction"), [
    ({"type": "text", "self": False}, "in"), ({"type": "image", "self": False}, "in"),
    ({"type": "text", "self": True}, "out"), ({"type": "system", "self": False}, "system"),
    ({"type": "auto_reply", "self": True}, None), ({"type": "risk_alert"}, None),
])
def test_rest_history_rows_are_stored_by_direction(fields: dict[str, Any], direction: str | None) -> None:
    assert direction_of(ChatMessage.model_validate({"orderNo": ORDER, **fields})) == direction


@pytest.mark.parametrize(("code", "reason", "kick"), [
    (4001, "kicked: another connection opened", True),
    (4001, "", True),
    (4000, "Kicked by a new session", True),
    (1000, "", False), (1001, "server shutdown", False), (1011, "no pong", False), (None, "", False),
])
def test_a_kick_is_told_apart_from_other_closes(code: int | None, reason: str, kick: bool) -> None:
    assert is_kick(code, reason) is kick
