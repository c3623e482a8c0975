"""The simulated chat: the frame protocol without a socket, the REST history, and the websocket."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from simulator.app import Simulator
from simulator.clock import VirtualClock
from simulator.world.chatlog import ChatLog, FrameRefused, parse_client_frame
from simulator.world.config import ChatConfig
from simulator.world.core import World
from tests.support import SimHttp

START_MS = 1_700_000_000_000
AD = "11000000000000000001"
CFG: dict[str, Any] = {
    "markets": [{"volatility": "0", "bots": 0, "decoys": 0, "churn_per_hour": 0}],
    "own_ads": [{"side": "SELL", "price": "92.00", "adv_no": AD, "surplus": "100000"}],
    "orders": {"rate_per_hour": 0, "cancel_probability": 0, "timeout_probability": 0,
               "appeal_probability": 0, "pay_seconds": [10, 10], "release_seconds": [20, 20]},
    "chat": {"credential_ttl_seconds": 60, "message_probability": 0, "noise": False,
             "ping_interval_seconds": 0},
}


def make_world(chat: dict[str, Any] | None = None) -> tuple[World, VirtualClock]:
    clock = VirtualClock(start_ms=START_MS, speed=0)
    cfg = CFG | {"chat": CFG["chat"] | (chat or {})}
    return World.from_config(cfg, seed=9, clock=clock), clock


def open_order(world: World) -> str:
    ad = world.account.ads[AD]
    events = world.orders.create(ad, world.account.market_of(ad).scales, world.clock.now_ms())
    world.emit(events, world.clock.now_ms())
    return events[0].order.order_no


def send_frame(order_no: str, content: str, uuid: str = "u-1", form: str = "self") -> str:
    if form == "self":
        frame = {"type": "text", "uuid": uuid, "orderNo": order_no, "content": content,
                 "self": True, "clientType": "web", "createTime": START_MS, "sendStatus": 0}
    else:
        frame = {"type": "text", "uuid": uuid, "topicId": order_no, "topicType": "ORDER",
                 "sourceType": "contact", "content": content}
    return json.dumps(frame)


# ----- protocol, without a socket ---------------------------------------------------------------

@pytest.mark.parametrize("form", ["self", "topic"])
def test_both_send_forms_parse(form: str) -> None:
    sent = parse_client_frame(send_frame("20000000000000000001", "hi", form=form))
    assert sent is not None
    assert (sent.order_no, sent.content, sent.uuid, sent.form) == (
        "20000000000000000001", "hi", "u-1", form)


@pytest.mark.parametrize("text, accepted", [
    ("not json", "both"),
    ("[1, 2]", "both"),
    (json.dumps({"type": "text", "uuid": "u", "content": "x"}), "both"),  # neither form
    (json.dumps({"type": "text", "uuid": "u", "orderNo": "1", "content": "", "self": True}), "both"),
    (send_frame("1", "hi", form="topic"), "self"),
    (send_frame("1", "hi", form="self"), "topic"),
])
def test_malformed_or_unaccepted_frames_are_refused(text: str, accepted: str) -> None:
    with pytest.raises(FrameRefused) as err:
        parse_client_frame(text, accepted)
    assert err.value.reason == "ILLEGAL_PARAM"


def test_a_dropped_echo_leaves_the_message_stored_and_errors_still_come() -> None:
    log = ChatLog(random.Random(1), ChatConfig(echo_drop_probability=Decimal(1)), "Me")
    known = {"20000000000000000001"}.__contains__
    assert log.receive(send_frame("20000000000000000001", "hello"), START_MS, known) == []
    (stored,) = log.by_order["20000000000000000001"]
    assert stored.uuid == "u-1" and stored.self_ and log.echoes_dropped == 1
    (error,) = log.receive(send_frame("20000000000000000001", "x; DROP TABLE a", "u-2"),
                           START_MS, known)
    assert error["type"] == "error"  # a refusal is always answered


def test_the_echo_drop_share_is_validated() -> None:
    with pytest.raises(ValueError, match="echo_drop_probability"):
        ChatConfig(echo_drop_probability=Decimal("1.5"))


def test_frames_that_are_not_text_are_ignored() -> None:
    assert parse_client_frame(json.dumps({"type": "mark", "orderNo": "1"})) is None


def test_the_log_echoes_refuses_and_stores_once() -> None:
    log = ChatLog(random.Random(1), ChatConfig(), "Me")
    known = {"20000000000000000001"}.__contains__
    (echo,) = log.receive(send_frame("20000000000000000001", "hello"), START_MS, known)
    assert echo["self"] is True and echo["uuid"] == "u-1" and len(echo["id"]) == 19
    assert echo["fromNickName"] == "Me" and echo["orderNo"] == echo["topicId"]
    again = log.receive(send_frame("20000000000000000001", "hello"), START_MS + 5, known)
    assert again == [echo] and len(log.by_order["20000000000000000001"]) == 1
    (error,) = log.receive(send_frame("20000000000000000001", "x; DROP TABLE orders", "u-2"),
                           START_MS, known)
    assert error == {"type": "error", "content": "ILLEGAL_PARAM", "uuid": "u-2",
                     "orderNo": "20000000000000000001"}
    (other,) = log.receive(send_frame("29999999999999999999", "hi", "u-3"), START_MS, known)
    assert other["type"] == "error" and other["content"] == "NO_PERMISSION"
    assert [s["accepted"] for s in log.sent] == [True, False, False]


def test_orders_write_system_messages_and_the_rest_history_pages_newest_first() -> None:
    world, clock = make_world()
    order_no = open_order(world)
    clock.advance(5)
    world.push_counterparty(order_no, "hello?")
    clock.advance(10)
    world.advance()  # paid at +10 s
    row = world.handle("list_orders", {}, {"page": 1, "rows": 5})[0][0]
    assert row["chatUnreadCount"] == 1
    messages, total = world.handle("chat_messages", {"page": "1", "rows": "10",
                                                     "orderNo": order_no}, None)
    assert total == 3
    assert [m["type"] for m in messages] == ["system", "text", "system"]
    assert json.loads(messages[0]["content"]) == {"type": "seller_payed"}
    assert json.loads(messages[2]["content"]) == {"type": "seller_merchant_trading"}
    assert messages[1]["status"] == "unread" and messages[1]["self"] is False
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(ids, reverse=True)
    older, total = world.handle("chat_messages", {"page": "1", "rows": "10", "orderNo": order_no,
                                                  "id": messages[0]["id"]}, None)
    assert total == 2 and [m["id"] for m in older] == [m["id"] for m in messages[1:]]
    assert world.handle("list_orders", {}, {"page": 1, "rows": 5})[0][0]["chatUnreadCount"] == 0
    page2, _ = world.handle("chat_messages", {"page": "2", "rows": "2", "orderNo": order_no}, None)
    assert [m["id"] for m in page2] == [messages[2]["id"]]


# ----- the websocket ----------------------------------------------------------------------------

@dataclass
class Served:
    world: World
    clock: VirtualClock
    session: aiohttp.ClientSession
    base: str

    def credential_url(self, query: dict[str, str] | None = None) -> str:
        data, _ = self.world.handle("chat_credential", query or {}, None)
        return f"{data['chatWssUrl']}/{data['listenKey']}?token={data['listenToken']}&clientType=web"

    async def control(self, path: str, body: Any = None) -> Any:
        method = "GET" if body is None else "POST"
        async with self.session.request(method, f"{self.base}/_sim/world{path}",
                                        json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def serve(chat: dict[str, Any] | None = None) -> tuple[Served, web.AppRunner]:
    world, clock = make_world(chat)
    app = web.Application()
    world.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    world.ws_base_url = f"ws://127.0.0.1:{port}/chat"
    return Served(world, clock, aiohttp.ClientSession(), f"http://127.0.0.1:{port}"), runner


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    srv, runner = await serve()
    try:
        yield srv
    finally:
        await srv.session.close()
        await runner.cleanup()


async def frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.TEXT, msg
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def refused(srv: Served, url: str) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        async with srv.session.ws_connect(url):
            pass
    return err.value.status


async def test_the_socket_delivers_pushed_messages_and_records_sent_ones(served: Served) -> None:
    async with served.session.ws_connect(served.credential_url()) as ws:
        order = (await served.control("/orders", {"adv_no": AD}))["order"]
        order_no = order["orderNumber"]
        system = await frame(ws)
        assert system["type"] == "system" and system["orderNo"] == order_no
        assert json.loads(system["content"]) == {"type": "seller_merchant_trading"}

        await served.control("/chat/push", {"orderNo": order_no, "content": "paid already"})
        pushed = await frame(ws)
        assert pushed["content"] == "paid already" and pushed["self"] is False
        assert pushed["status"] == "unread" and pushed["fromNickName"] == order["buyerNickname"]
        assert len(pushed["id"]) == 19 and pushed["topicId"] == order_no

        await ws.send_str(send_frame(order_no, "thanks, releasing", uuid="abc-1"))
        echo = await frame(ws)
        assert echo["self"] is True and echo["uuid"] == "abc-1" and echo["id"]
        await ws.send_str(send_frame(order_no, "see t.me/me", uuid="abc-2", form="topic"))
        assert (await frame(ws))["type"] == "error"

    sent = (await served.control("/chat/sent"))["sent"]
    assert [(s["uuid"], s["accepted"]) for s in sent] == [("abc-1", True), ("abc-2", False)]
    assert sent[0]["content"] == "thanks, releasing" and sent[0]["orderNo"] == order_no
    messages, total = served.world.handle("chat_messages", {"page": "1", "rows": "10",
                                                            "orderNo": order_no}, None)
    assert total == 3 and messages[0]["uuid"] == "abc-1"


async def test_a_bad_token_or_listen_key_is_refused(served: Served) -> None:
    url = served.credential_url()
    assert await refused(served, url.replace("token=TOKEN", "token=TOKENdead")) == 401
    good_key = url.split("/chat/")[1].split("?")[0]
    assert await refused(served, url.replace(good_key, "c2c_other_v2")) == 401


async def test_a_single_use_token_opens_one_connection(served: Served) -> None:
    url = served.credential_url()
    async with served.session.ws_connect(url):
        pass
    assert await refused(served, url) == 401


async def test_an_expired_token_is_refused(served: Served) -> None:
    url = served.credential_url()
    served.clock.advance(60)
    assert await refused(served, url) == 401
    fresh = served.credential_url()
    assert (await served.control("/chat/expire", {}))["expired"] == 1
    assert await refused(served, fresh) == 401


async def test_a_credential_fetched_with_extra_query_is_refused(served: Served) -> None:
    assert await refused(served, served.credential_url({"orderNo": "1"})) == 401


async def test_a_new_connection_kicks_the_old_one(served: Served) -> None:
    async with served.session.ws_connect(served.credential_url()) as old:
        async with served.session.ws_connect(served.credential_url()) as new:
            msg = await old.receive(timeout=5)
            assert msg.type is WSMsgType.CLOSE and msg.data == 4001
            order_no = open_order(served.world)
            assert (await frame(new))["orderNo"] == order_no
    status = await served.control("/chat/status")
    assert status["connections"] == 2


async def test_drop_closes_the_socket_abruptly(served: Served) -> None:
    async with served.session.ws_connect(served.credential_url()) as ws:
        assert (await served.control("/chat/drop", {}))["dropped"] is True
        msg = await ws.receive(timeout=5)
        assert msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR, WSMsgType.CLOSE)
    assert (await served.control("/chat/status"))["connected"] is False
    order_no = open_order(served.world)  # stored while nobody listens
    assert served.world.handle("chat_messages", {"page": "1", "rows": "5", "orderNo": order_no},
                               None)[1] == 1


async def test_silence_drops_frames_until_it_ends(served: Served) -> None:
    order_no = open_order(served.world)
    async with served.session.ws_connect(served.credential_url()) as ws:
        await served.control("/chat/silence", {"seconds": 600})
        assert (await served.control("/chat/status"))["silent"] is True
        await served.control("/chat/push", {"orderNo": order_no, "content": "lost on the wire"})
        await served.control("/chat/silence", {"seconds": 0})
        await served.control("/chat/push", {"orderNo": order_no, "content": "heard"})
        assert (await frame(ws))["content"] == "heard"
    messages, _ = served.world.handle("chat_messages", {"page": "1", "rows": "5",
                                                        "orderNo": order_no}, None)
    assert [m["content"] for m in messages[:2]] == ["heard", "lost on the wire"]


async def test_the_server_pings_and_closes_a_socket_that_never_pongs() -> None:
    srv, runner = await serve({"ping_interval_seconds": 0.05})
    try:
        async with srv.session.ws_connect(srv.credential_url(), autoping=False) as ws:
            assert (await ws.receive(timeout=5)).type is WSMsgType.PING
            msg = await ws.receive(timeout=5)
            assert msg.type is WSMsgType.CLOSE and msg.data == 1011
    finally:
        await srv.session.close()
        await runner.cleanup()


async def test_credential_and_socket_through_the_gateway(
        sim: Simulator, http_session: aiohttp.ClientSession) -> None:
    reply = await SimHttp(http_session, sim).call("chat_credential")
    assert reply.code == "000000", reply.text
    cred = reply.json["data"]
    assert cred["chatWssUrl"] == f"ws://127.0.0.1:{sim.port}/chat"
    assert cred["listenToken"].startswith("TOKEN")
    url = f"{cred['chatWssUrl']}/{cred['listenKey']}?token={cred['listenToken']}&clientType=web"
    async with http_session.ws_connect(url) as ws:
        async with http_session.post(f"{sim.base_url}/_sim/world/orders",
                                     json={"side": "SELL", "asset": "USDT", "fiat": "RUB"}) as resp:
            assert resp.status == 200
            order_no = (await resp.json())["order"]["orderNumber"]
        system = await frame(ws)
        assert system["type"] == "system" and system["orderNo"] == order_no


async def test_control_routes_read_and_poke_the_world(served: Served) -> None:
    ads = (await served.control("/ads"))["ads"]
    assert [(a["advNo"], a["rank"]) for a in ads] == [(AD, 1)]
    assert ads[0]["priceHistory"] == [{"time": START_MS, "price": "92.00"}]
    order = (await served.control("/orders", {"adv_no": AD, "amount": "9200"}))["order"]
    assert order["totalPrice"] == "9200.00000000"
    moved = await served.control(f"/orders/{order['orderNumber']}/status", {"status": 2})
    assert moved["order"]["orderStatus"] == 2
    (listed,) = (await served.control("/orders"))["orders"]
    assert [h["status"] for h in listed["statusHistory"]] == [1, 2]
    async with served.session.post(f"{served.base}/_sim/world/orders/{order['orderNumber']}"
                                   "/status", json={"status": 1}) as resp:
        assert resp.status == 409
    async with served.session.post(f"{served.base}/_sim/world/chat/push",
                                   json={"orderNo": "1", "content": "x"}) as resp:
        assert resp.status == 404
    market = await served.control("/market?asset=USDT&fiat=RUB&side=SELL")
    assert market["reference"] == "92.50" and list(market["sides"]) == ["SELL"]
    assert len(market["sides"]["SELL"]) == 20
