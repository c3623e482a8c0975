"""SignedClient: the exact bytes it sends and signs, and how it honours the exchange's limits."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import CallbackResult
from cryptography.hazmat.primitives.asymmetric import ed25519
from loguru import logger
from pydantic import SecretStr

from bot.binance.client import SignedClient, encode_body, encode_query
from bot.binance.endpoints import ENDPOINTS, Endpoint, Style
from bot.binance.errors import (
    BadResponse,
    BogusResponse,
    ClockSkew,
    EndpointUnregistered,
    ExchangeUnavailable,
    IpBanned,
    RateLimited,
)
from bot.binance.signing import Ed25519Signer, HmacSigner
from tests.support import (
    KEY,
    NOW_MS,
    SECRET,
    FakeClock,
    assert_signed,
    envelope,
    expected_signature,
    make_client,
    mocked,
    path_re,
    sent_requests,
)

ORDER_SUMMARY = "/sapi/v1/c2c/orderMatch/getUserOrderSummary"
CATEGORIES = "/sapi/v1/c2c/ads/getAvailableAdsCategory"
CHAT_MESSAGES = "/sapi/v1/c2c/chat/retrieveChatMessagesWithPagination"
TIME = "/api/v3/time"
AWKWARD = "a@b c+d/é&x=１"  # '@', space, '+', '/', non-ASCII, '&', '=' and a full-width digit
AWKWARD_ENCODED = "a%40b%20c%2Bd%2F%C3%A9%26x%3D%EF%BC%91"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS / 1000)


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[SignedClient]:
    c = make_client(clock)
    yield c
    await c.close()


@pytest.fixture
def caplog_warnings() -> Iterator[list[str]]:
    """The messages logged at WARNING or above while the test runs."""
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    yield said
    logger.remove(sink)


def gw(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


# --- building the request ------------------------------------------------------------


def test_query_in_order_then_recv_window_timestamp_and_signature_last(client: SignedClient) -> None:
    params = {"tradeType": "SELL", "startTimestamp": 1, "endTimestamp": 2, "page": 1, "rows": 100}
    req = client.prepare(ENDPOINTS["order_history"], params)
    query = req.url.split("?", 1)[1]
    assert query.startswith(
        "tradeType=SELL&startTimestamp=1&endTimestamp=2&page=1&rows=100"
        f"&recvWindow=5000&timestamp={NOW_MS}&signature="
    )
    assert req.signed_payload == query.rsplit("&signature=", 1)[0]
    assert query.rsplit("=", 1)[1] == expected_signature(query)
    assert req.body is None


def test_json_post_signs_only_the_query_and_sends_the_body_unsigned(client: SignedClient) -> None:
    req = client.prepare(ENDPOINTS["search"], {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY",
                                                "page": 1, "rows": 20, "transAmount": Decimal("5000.50")})
    base, query = req.url.split("?", 1)
    assert base.endswith("/sapi/v1/c2c/ads/search")
    assert query == f"recvWindow=5000&timestamp={NOW_MS}&signature={expected_signature(query)}"
    assert req.body == (b'{"asset":"USDT","fiat":"RUB","tradeType":"BUY","page":1,"rows":20,'
                        b'"transAmount":"5000.50"}')


def test_ad_detail_signs_its_query_and_sends_no_body(client: SignedClient) -> None:
    req = client.prepare(ENDPOINTS["ad_detail"], {"adsNo": "12345678901234567890"})
    query = req.url.split("?", 1)[1]
    assert query.startswith(f"adsNo=12345678901234567890&recvWindow=5000&timestamp={NOW_MS}&signature=")
    assert query.rsplit("=", 1)[1] == expected_signature(query)
    assert req.method == "POST" and req.body is None  # docs/exchange.md §3: an empty body, not `{}`


def test_query_params_of_a_json_endpoint_are_signed(client: SignedClient) -> None:
    ep = Endpoint("x", "POST", "/sapi/v1/c2c/x", Style.JSON, query_params=("adsNo",))
    req = client.prepare(ep, {"adsNo": "12345678901234567890", "page": 1})
    query = req.url.split("?", 1)[1]
    assert query.startswith(f"adsNo=12345678901234567890&recvWindow=5000&timestamp={NOW_MS}&signature=")
    assert req.body == b'{"page":1}'


def test_encoding_helpers() -> None:
    assert encode_query({"a": AWKWARD, "b": None, "c": True, "d": Decimal("1E+2"), "e": [1, 2]}) == (
        f"a={AWKWARD_ENCODED}&c=true&d=100&e=1%2C2"
    )
    assert encode_body({"p": Decimal("92.510"), "n": None, "l": ["x"]}) == b'{"p":"92.510","l":["x"]}'
    with pytest.raises(TypeError):
        encode_body({"p": object()})


def test_recv_window_is_bounded() -> None:
    for bad in (0, 60001):
        with pytest.raises(ValueError):
            SignedClient("https://x", api_key=None, signer=None, recv_window=bad)


async def test_values_are_percent_encoded_once_and_signed_as_sent(client: SignedClient) -> None:
    with mocked() as m:
        m.get(path_re(CHAT_MESSAGES), payload=envelope([], 0))
        await client.call("chat_messages", {"page": 1, "rows": 20, "orderNo": AWKWARD})
        (sent,) = sent_requests()
    assert sent.raw_query.startswith(f"page=1&rows=20&orderNo={AWKWARD_ENCODED}&recvWindow=")
    assert "%25" not in sent.raw_query  # nothing was quoted twice
    assert sent.param("orderNo") == AWKWARD
    assert_signed(sent)
    assert sent.url.raw_path == CHAT_MESSAGES
    assert sent.timeout is not None and sent.timeout.total == client.timeout


async def test_the_bytes_on_the_wire_are_the_bytes_signed(clock: FakeClock) -> None:
    """A loopback server sees the raw request line: aiohttp must not re-quote it."""
    seen: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.raw_path, await request.read(), dict(request.headers)))
        return web.json_response(envelope([], 0))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with make_client(clock) as c:
            c.base_url = str(server.make_url("")).rstrip("/")
            await c.call("chat_messages", {"page": 1, "rows": 20, "orderNo": AWKWARD})
            await c.call("search", {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY",
                                    "page": 1, "rows": 20, "transAmount": Decimal("10.5")})
    finally:
        await server.close()
    (m1, raw1, body1, h1), (m2, raw2, body2, h2) = seen
    path1, query1 = raw1.split("?", 1)
    assert (m1, path1, body1) == ("GET", CHAT_MESSAGES, b"")
    assert f"orderNo={AWKWARD_ENCODED}&" in query1
    assert query1.rsplit("&signature=", 1)[1] == expected_signature(query1)
    assert h1["X-MBX-APIKEY"] == KEY and h1["clientType"] == "web"
    assert "Content-Type" not in h1
    path2, query2 = raw2.split("?", 1)
    assert (m2, path2) == ("POST", "/sapi/v1/c2c/ads/search")
    assert query2 == f"recvWindow=5000&timestamp={NOW_MS}&signature={expected_signature(query2)}"
    assert json.loads(body2) == {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1,
                                 "rows": 20, "transAmount": "10.5"}
    assert h2["Content-Type"] == "application/json" and h2["clientType"] == "web"


# --- time ------------------------------------------------------------------------------


async def test_first_signed_call_syncs_the_clock(client: SignedClient, clock: FakeClock) -> None:
    client.time_synced = False
    with mocked() as m:
        m.get(path_re(TIME), payload={"serverTime": NOW_MS + 5000})
        m.get(path_re(ORDER_SUMMARY), payload=envelope({}))
        await client.call("order_summary")
        sync, call = sent_requests()
    assert (sync.method, sync.url.raw_path, sync.raw_query) == ("GET", TIME, "")
    assert "X-MBX-APIKEY" not in sync.headers
    assert client.time_offset_ms == 5000
    assert call.param("timestamp") == str(NOW_MS + 5000)
    assert_signed(call)


async def test_clock_skew_resyncs_once_then_retries_with_a_fresh_timestamp(client: SignedClient) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=400, payload=gw(-1021, "Timestamp ... outside of the recvWindow."))
        m.get(path_re(TIME), payload={"serverTime": NOW_MS - 3000})
        m.get(path_re(ORDER_SUMMARY), payload=envelope({"tradingCount": 1}))
        resp = await client.call("order_summary")
        first, sync, retry = sent_requests()
    assert resp.data == {"tradingCount": 1}
    assert sync.url.raw_path == TIME
    assert first.param("timestamp") == str(NOW_MS)
    assert retry.param("timestamp") == str(NOW_MS - 3000)
    assert_signed(first)
    assert_signed(retry)


async def test_a_second_clock_skew_is_raised_after_one_resync(client: SignedClient) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=400, repeat=True,
              payload=gw(-1021, "Timestamp for this request was 1000ms ahead of the server's time."))
        m.get(path_re(TIME), repeat=True, payload={"serverTime": NOW_MS})
        with pytest.raises(ClockSkew) as raised:
            await client.call("order_summary")
        paths = [s.url.raw_path for s in sent_requests()]
    assert paths == [ORDER_SUMMARY, TIME, ORDER_SUMMARY]
    assert raised.value.endpoint == "order_summary" and raised.value.code == -1021


# --- rate limits and bans ------------------------------------------------------------------


async def test_429_waits_retry_after_then_retries_with_a_fresh_timestamp(
    client: SignedClient, clock: FakeClock
) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=429, headers={"Retry-After": "2"},
              payload=gw(-1003, "Too much request weight used"))
        m.get(path_re(ORDER_SUMMARY), payload=envelope({}))
        await client.call("order_summary")
        first, second = sent_requests()
    assert clock.sleeps == [pytest.approx(2.0)]
    assert int(second.param("timestamp")) == int(first.param("timestamp")) + 2000
    assert_signed(first)
    assert_signed(second)
    assert first.param("signature") != second.param("signature")


async def test_429_retries_are_bounded(client: SignedClient, clock: FakeClock) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=429, headers={"Retry-After": "1"}, repeat=True)
        with pytest.raises(RateLimited) as raised:
            await client.call("order_summary")
        sent = sent_requests()
    assert len(sent) == client.max_rate_limit_retries + 1
    assert clock.sleeps == [1.0] * client.max_rate_limit_retries
    assert raised.value.status == 429 and raised.value.retry_after == 1.0


async def test_a_429_pauses_every_sender(clock: FakeClock) -> None:
    async with make_client(clock, max_rate_limit_retries=0) as c:
        with mocked() as m:
            m.get(path_re(ORDER_SUMMARY), status=429, headers={"Retry-After": "5"})
            m.get(path_re(CATEGORIES), payload=envelope({"advClassifies": []}))
            with pytest.raises(RateLimited):
                await c.call("order_summary")
            await c.call("categories")
            _, other = sent_requests()
    assert clock.sleeps == [5.0]
    assert other.param("timestamp") == str(NOW_MS + 5000)


async def test_429_without_retry_after_waits_two_and_a_half_seconds(
    client: SignedClient, clock: FakeClock
) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=429)
        m.get(path_re(ORDER_SUMMARY), payload=envelope({}))
        await client.call("order_summary")
    assert clock.sleeps == [2.5]


class Wire:
    """An aioresponses callback that holds every request until `gate` opens, and counts."""

    def __init__(self, *, status: int = 200, payload: Any = None) -> None:
        self.gate = asyncio.Event()
        self.active = self.peak = 0
        self.order: list[str] = []
        self.status, self.payload = status, payload if payload is not None else envelope([])

    async def respond(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.order.append(str(url.path).rsplit("/", 1)[1])
        try:
            await self.gate.wait()
        finally:
            self.active -= 1
        return CallbackResult(status=self.status, payload=self.payload)


async def settle(until: Any) -> None:
    """Let the loop run (no time passes) until `until()` holds."""
    for _ in range(1000):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("never settled")


async def test_at_most_three_requests_are_on_the_wire_and_writes_go_first(
    client: SignedClient,
) -> None:
    wire = Wire()
    calls = [("search", {}), ("search", {}), ("search", {}),  # take the three slots
             ("search", {}), ("list_orders", {}), ("chat_messages", {}), ("update_ad", {})]
    with mocked() as m:
        for path in ("/ads/search", "/orderMatch/listOrders", "/ads/update"):
            m.post(path_re(f"/sapi/v1/c2c{path}"), callback=wire.respond, repeat=True)
        m.get(path_re(CHAT_MESSAGES), callback=wire.respond, repeat=True)
        tasks = [asyncio.create_task(client.call(ep, p)) for ep, p in calls]
        await settle(lambda: client.scheduler.waiting == 4)
        assert wire.active == 3 and client.in_flight == 3
        wire.gate.set()
        await asyncio.gather(*tasks)
    assert wire.peak == 3
    assert wire.order[3:] == ["update", "retrieveChatMessagesWithPagination", "listOrders", "search"]


def test_max_in_flight_is_bounded(clock: FakeClock) -> None:
    assert make_client(clock, max_in_flight=1).max_in_flight == 1
    for wrong in (0, 11):
        with pytest.raises(ValueError, match="max_in_flight"):
            make_client(clock, max_in_flight=wrong)


async def test_after_a_pause_one_request_goes_first_then_the_rest_spread(clock: FakeClock) -> None:
    async with make_client(clock, max_rate_limit_retries=0, rng=random.Random(3)) as c:
        with mocked() as m:
            m.get(path_re(ORDER_SUMMARY), status=429, headers={"Retry-After": "2"})
            with pytest.raises(RateLimited):
                await c.call("order_summary")
            pause_end = clock.now + 2
            wire = Wire(payload=envelope({}))
            m.get(path_re(CATEGORIES), callback=wire.respond, repeat=True)
            tasks = [asyncio.create_task(c.call("categories")) for _ in range(5)]
            await settle(lambda: wire.active == 1)
            for _ in range(50):
                await asyncio.sleep(0)
            assert len(wire.order) == 1  # the first after the pause goes alone
            assert clock.now >= pause_end
            wire.gate.set()
            await asyncio.gather(*tasks)
    assert len(wire.order) == 5
    spread = clock.sleeps[-4:]  # each of the others waited its own share of up to a second
    assert all(0 <= s <= 1.0 for s in spread) and len(set(spread)) == 4


async def test_a_first_request_that_meets_another_429_keeps_the_others_waiting(
    clock: FakeClock,
) -> None:
    async with make_client(clock, max_rate_limit_retries=0, rng=random.Random(3)) as c:
        with mocked() as m:
            m.get(path_re(ORDER_SUMMARY), status=429, headers={"Retry-After": "2"})
            with pytest.raises(RateLimited):
                await c.call("order_summary")
            first = Wire(status=429, payload=gw(-1003, "Too much request weight used"))
            m.get(path_re(CATEGORIES), callback=first.respond)
            m.get(path_re(CATEGORIES), payload=envelope({}), repeat=True)
            tasks = [asyncio.create_task(c.call("categories")) for _ in range(3)]
            await settle(lambda: first.active == 1)
            sent_before = len(sent_requests())
            trial_at = int(sent_requests()[-1].param("timestamp"))
            first.gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            times = [int(r.param("timestamp")) for r in sent_requests()[sent_before:]]
    assert sum(isinstance(r, RateLimited) for r in results) == 1
    assert len(times) == 2  # the others went only after the second pause (2.5 s: no Retry-After)
    assert all(t >= trial_at + 2500 for t in times)


async def test_418_stops_all_traffic_until_the_ban_ends(client: SignedClient, clock: FakeClock) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=418, headers={"Retry-After": "120"},
              payload=gw(-1003, "Way too much request weight used; IP banned until 1700000120000."))
        m.get(path_re(CATEGORIES), payload=envelope({"advClassifies": []}), repeat=True)
        with pytest.raises(IpBanned) as first:
            await client.call("order_summary")
        assert first.value.status == 418
        for _ in range(3):
            with pytest.raises(IpBanned) as blocked:
                await client.call("categories")
            assert blocked.value.status is None and blocked.value.retry_after == pytest.approx(120)
        assert len(sent_requests()) == 1  # none sent during the ban
        clock.advance(120.5)
        await client.call("categories")
        assert len(sent_requests()) == 2
    assert clock.sleeps == []


async def test_418_without_retry_after_bans_for_the_default(client: SignedClient, clock: FakeClock) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=418)
        with pytest.raises(IpBanned):
            await client.call("order_summary")
    assert client.banned_until == pytest.approx(clock.now + 120)


async def test_a_persisted_ban_is_honoured(client: SignedClient, clock: FakeClock) -> None:
    client.restore_ban(clock.now + 50)
    with mocked():
        with pytest.raises(IpBanned):
            await client.call("categories")
        assert sent_requests() == []


class MeddlingClock(FakeClock):
    """While a sender sleeps, another sender meets a longer 429, then a 418."""

    def __init__(self, client_box: list[SignedClient]) -> None:
        super().__init__(NOW_MS / 1000)
        self.box = client_box

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        c = self.box[0]
        if len(self.sleeps) == 1:
            c.paused_until = self.now + 3
        else:
            c.banned_until = self.now + 100


async def test_a_sender_waiting_out_a_pause_rechecks_before_sending() -> None:
    box: list[SignedClient] = []
    clock = MeddlingClock(box)
    async with make_client(clock) as c:
        box.append(c)
        c.paused_until = clock.now + 2
        with mocked() as m:
            m.get(path_re(CATEGORIES), payload=envelope({}), repeat=True)
            with pytest.raises(IpBanned):
                await c.call("categories")
            assert sent_requests() == []
    assert clock.sleeps == [2.0, 3.0]


# --- transport failures and replies ----------------------------------------------------------


@pytest.mark.parametrize("exc", [TimeoutError(), aiohttp.ClientConnectionError("refused"),
                                 aiohttp.ServerDisconnectedError()])
async def test_transport_failures_are_exchange_unavailable(client: SignedClient, exc: Exception) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), exception=exc)
        with pytest.raises(ExchangeUnavailable) as raised:
            await client.call("order_summary")
        (sent,) = sent_requests()
    assert raised.value.endpoint == "order_summary" and raised.value.outcome_unknown
    text = str(raised.value)  # the address, never the query that carries the signature
    assert sent.param("signature") not in text and "?" not in text and type(exc).__name__ not in text
    assert f"GET https://api.binance.com{ORDER_SUMMARY}" in text


async def test_errors_keep_endpoint_status_code_and_headers(client: SignedClient) -> None:
    with mocked() as m:
        m.get(path_re(CATEGORIES), status=400, payload=gw(-2008, "Invalid Api-Key ID."),
              headers={"X-SAPI-USED-IP-WEIGHT-1M": "37"})
        with pytest.raises(EndpointUnregistered) as raised:
            await client.call("categories")
    exc = raised.value
    assert (exc.endpoint, exc.status, exc.code, exc.msg) == ("categories", 400, -2008,
                                                             "Invalid Api-Key ID.")
    assert exc.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "37"
    assert client.used_weight == {"X-SAPI-USED-IP-WEIGHT-1M": 37}


async def test_an_empty_200_is_bogus(client: SignedClient) -> None:
    with mocked() as m:
        m.get(path_re("/sapi/v1/c2c/ads/getAds"), body="")
        with pytest.raises(BogusResponse):
            await client.call("get_ads")


async def test_success_returns_data_total_and_weights(client: SignedClient) -> None:
    with mocked() as m:
        m.get(path_re(CHAT_MESSAGES), payload=envelope([{"id": 1}], 41),
              headers={"X-SAPI-USED-UID-WEIGHT-1M": "12"})
        resp = await client.call("chat_messages", {"page": 1, "rows": 1, "orderNo": "1"})
    assert (resp.status, resp.data, resp.total) == (200, [{"id": 1}], 41)
    assert client.used_weight["X-SAPI-USED-UID-WEIGHT-1M"] == 12
    assert client.requests_sent == 1


async def test_a_signed_call_without_a_signer_is_refused_before_sending(clock: FakeClock) -> None:
    async with SignedClient("https://api.binance.com", api_key=SecretStr(KEY), signer=None,
                            clock=clock) as c:
        c.time_synced = True
        c.synced_at = c.clock.monotonic()
        with mocked():
            with pytest.raises(ValueError, match="no signer"):
                await c.call("order_summary")
            assert sent_requests() == []


async def test_an_ed25519_signature_is_percent_encoded_and_verifies(clock: FakeClock) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    async with SignedClient("https://api.binance.com", api_key=SecretStr(KEY),
                            signer=Ed25519Signer(key), clock=clock) as c:
        c.time_synced = True
        c.synced_at = c.clock.monotonic()
        with mocked() as m:
            m.get(path_re(CHAT_MESSAGES), payload=envelope([], 0), repeat=True)
            for order_no in ("1", "2", "3", "4"):  # several, so some base64 holds '+' or '/'
                await c.call("chat_messages", {"page": 1, "rows": 20, "orderNo": order_no})
            sent = sent_requests()
    for s in sent:
        raw_sig = s.raw_query.rsplit("&signature=", 1)[1]
        assert not set(raw_sig) & set("+/=")
        signed = s.raw_query.rsplit("&signature=", 1)[0]
        key.public_key().verify(base64.b64decode(s.param("signature")), signed.encode())


def test_repr_hides_the_secret_and_key() -> None:
    c = SignedClient("https://api.binance.com", api_key=SecretStr(KEY),
                     signer=HmacSigner(SecretStr(SECRET)))
    for text in (repr(c), str(c)):
        assert KEY not in text and SECRET not in text


async def test_a_418_without_retry_after_honours_the_time_in_its_body() -> None:
    from bot.binance.errors import IpBanned

    clock = FakeClock(NOW_MS / 1000)
    client = make_client(clock)
    exc = IpBanned(f"Way too much request weight used; IP banned until {NOW_MS + 3_600_000}.",
                   endpoint="search", status=418)
    client.scheduler.note(exc)
    assert client.banned_until == NOW_MS / 1000 + 3600


async def test_the_clock_offset_is_resynced_every_fifteen_minutes() -> None:
    from bot.binance.client import RESYNC_SECONDS

    clock = FakeClock(NOW_MS / 1000)
    client = make_client(clock)
    assert not client._sync_due()
    clock.advance(RESYNC_SECONDS)
    assert client._sync_due()


# --- what the exchange asks is honoured up to a bound (issue 11, item 4) ----------------------


async def test_a_huge_retry_after_on_a_429_pauses_a_few_minutes_at_most(
    client: SignedClient, clock: FakeClock, caplog_warnings: list[str]
) -> None:
    from bot.binance.client import MAX_PAUSE_SECONDS

    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=429, headers={"Retry-After": "1e9"})
        m.get(path_re(ORDER_SUMMARY), payload=envelope({}))
        await client.call("order_summary")
    assert clock.sleeps == [MAX_PAUSE_SECONDS] and MAX_PAUSE_SECONDS <= 600
    assert any("429 pause" in w and "capped" in w for w in caplog_warnings)


async def test_a_huge_retry_after_on_a_418_bans_for_three_days_at_most(
    client: SignedClient, clock: FakeClock, caplog_warnings: list[str]
) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=418, headers={"Retry-After": "1000000000"})
        with pytest.raises(IpBanned):
            await client.call("order_summary")
    assert client.banned_until == pytest.approx(clock.now + 3 * 86400)
    assert any("418 ban" in w and "capped" in w for w in caplog_warnings)


async def test_a_418_body_naming_a_far_end_is_capped_too(clock: FakeClock) -> None:
    client = make_client(clock)
    far = NOW_MS + 10**12  # year 2058
    client.scheduler.note(IpBanned(f"IP banned until {far}.", endpoint="search", status=418))
    assert client.banned_until == pytest.approx(clock.now + 3 * 86400)


async def test_a_stored_ban_beyond_three_days_is_restored_capped(clock: FakeClock) -> None:
    client = make_client(clock)
    client.restore_ban(clock.now + 10**9)
    assert client.banned_until == pytest.approx(clock.now + 3 * 86400)


# --- bodies that cannot be read are classified, and large ones refused (item 7) --------------


async def test_a_deeply_nested_body_is_a_bad_response_not_a_crash(client: SignedClient) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), body=deep)
        m.get(path_re(ORDER_SUMMARY), status=500, body=deep)
        with pytest.raises(BadResponse):
            await client.call("order_summary")
        with pytest.raises(ExchangeUnavailable):
            await client.call("order_summary")


async def _serve(handler: Any) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_body_declared_larger_than_the_limit_is_refused_unread(clock: FakeClock) -> None:
    big = b'{"code":"000000","data":"' + b"x" * 50_000 + b'"}'

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=big, content_type="application/json")

    server = await _serve(handler)
    try:
        async with make_client(clock, max_response_bytes=10_000) as c:
            c.base_url = str(server.make_url("")).rstrip("/")
            with pytest.raises(BadResponse) as raised:
                await c.call("order_summary")
            c.max_response_bytes = 100_000
            await c.call("order_summary")  # under the limit: read as usual
    finally:
        await server.close()
    assert "10000 bytes" in str(raised.value) and raised.value.endpoint == "order_summary"


async def test_a_streamed_body_is_cut_at_the_limit_not_read_whole(clock: FakeClock) -> None:
    written: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()  # no Content-Length: the limit is met while reading
        await resp.prepare(request)
        chunk = b" " * 65536
        try:
            for _ in range(200 * 16):  # 200 MB if nobody stops it
                await resp.write(chunk)
                written.append(len(chunk))
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        return resp

    server = await _serve(handler)
    try:
        async with make_client(clock, max_response_bytes=1_000_000) as c:
            c.base_url = str(server.make_url("")).rstrip("/")
            with pytest.raises(BadResponse, match="1000000 bytes"):
                await c.call("order_summary")
    finally:
        await server.close()
    assert sum(written) < 100 * 1024 * 1024  # the client hung up long before 200 MB


def test_an_endpoint_outside_the_official_api_cannot_be_made() -> None:
    from bot.binance.endpoints import ENDPOINTS, Endpoint, Style, UnofficialPath

    for path in ("/bapi/c2c/v2/friendly/c2c/adv/search", "/sapi/../bapi/c2c/x", "//bapi/x",
                 "sapi/v1/c2c/ads/search", "/gateway-api/v1/x"):
        with pytest.raises(UnofficialPath, match="only Binance's official API paths"):
            Endpoint("web", "POST", path, Style.JSON)
    assert all(ep.path.startswith(("/sapi/", "/api/")) for ep in ENDPOINTS.values())
