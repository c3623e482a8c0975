"""The simulator's gateway speaks Binance's wire protocol: signatures, timestamps, envelopes, routing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import SecretStr

from bot.binance.client import SignedClient
from bot.binance.errors import AdNotFound, BogusResponse
from bot.binance.signing import HmacSigner
from simulator.app import Simulator, run_simulator
from simulator.scenario import KeySpec, load_scenario
from tests.support import SIM_START_MS, ClientClock, FakeWorld, SimHttp

SEARCH = {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}


def documented_sign(secret: str, params: list[tuple[str, str]]) -> tuple[str, str]:
    """Binance's documented rule, written out: percent-encode the query, HMAC-SHA256 it, hex."""
    payload = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    return payload, hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_documented_rule_matches_binance_vector() -> None:
    params = [("symbol", "LTCBTC"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
              ("quantity", "1"), ("price", "0.1"), ("recvWindow", "5000"),
              ("timestamp", "1499827319559")]
    _, sig = documented_sign("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j", params)
    assert sig == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def _signed(sim: Simulator, extra: list[tuple[str, str]] | None = None, *,
            timestamp: int | None = None) -> str:
    ts = sim.clock.now_ms() if timestamp is None else timestamp
    params = [*(extra or []), ("recvWindow", "5000"), ("timestamp", str(ts))]
    payload, sig = documented_sign(sim.api_secret or "", params)
    return f"{payload}&signature={sig}"


async def test_hmac_signed_request_is_accepted(sim_http: SimHttp, fake_sim: Simulator) -> None:
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary", _signed(fake_sim))
    assert reply.status == 200
    assert reply.json == {"code": "000000", "message": "success", "success": True,
                          "data": {"buyerPayedCount": 0, "inAppealCount": 0,
                                   "inProcessCount": 0, "tradingCount": 0}}
    assert reply.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"
    [record] = fake_sim.requests("order_summary")
    assert record["signature_valid"] is True and record["key"] == "main"
    assert record["client_type"] == "web" and record["status"] == 200


async def test_percent_encoded_non_ascii_query_is_verified_as_sent(
    sim_http: SimHttp, fake_sim: Simulator
) -> None:
    query = _signed(fake_sim, [("orderNo", "１２３４５６ a@b+c")])
    assert "%EF%BC%91" in query
    reply = await sim_http.send("GET", "/sapi/v1/c2c/chat/retrieveChatMessagesWithPagination", query)
    assert reply.status == 200
    assert reply.json["data"]["query"] == {"orderNo": "１２３４５６ a@b+c"}


@pytest.mark.parametrize("where", ["signature", "query"])
async def test_one_changed_byte_is_rejected(sim_http: SimHttp, fake_sim: Simulator, where: str) -> None:
    query = _signed(fake_sim, [("page", "1")])
    if where == "signature":
        last = query[-1]
        query = query[:-1] + ("0" if last != "0" else "1")
    else:
        query = query.replace("page=1", "page=2")
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/listUserOrderHistory", query)
    assert (reply.status, reply.json) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    assert fake_sim.requests()[-1]["signature_valid"] is False


async def test_unencoded_payload_signature_is_rejected(sim_http: SimHttp, fake_sim: Simulator) -> None:
    """Signing the raw text but sending it percent-encoded is the classic -1022."""
    ts = fake_sim.clock.now_ms()
    raw_payload = f"orderNo=a@b&recvWindow=5000&timestamp={ts}"
    sig = hmac.new((fake_sim.api_secret or "").encode(), raw_payload.encode(), hashlib.sha256).hexdigest()
    query = f"orderNo=a%40b&recvWindow=5000&timestamp={ts}&signature={sig}"
    reply = await sim_http.send("GET", "/sapi/v1/c2c/chat/retrieveChatMessagesWithPagination", query)
    assert reply.code == -1022


async def test_signature_must_be_last(sim_http: SimHttp, fake_sim: Simulator) -> None:
    query = _signed(fake_sim) + "&page=1"
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary", query)
    assert reply.code == -1022


@pytest.mark.parametrize(
    ("offset_ms", "code", "msg"),
    [
        (-5001, -1021, "Timestamp for this request is outside of the recvWindow."),
        (1000, -1021, "Timestamp for this request was 1000ms ahead of the server's time."),
        (-5000, "000000", None),
        (999, "000000", None),
    ],
)
async def test_timestamp_rules(sim_http: SimHttp, fake_sim: Simulator, offset_ms: int,
                               code: object, msg: str | None) -> None:
    query = _signed(fake_sim, timestamp=fake_sim.clock.now_ms() + offset_ms)
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary", query)
    assert reply.code == code
    if msg is not None:
        assert (reply.status, reply.json["msg"]) == (400, msg)


@pytest.mark.parametrize(
    ("query", "code", "needle"),
    [
        ("recvWindow=5000", -1102, "'timestamp'"),
        ("timestamp=1751796000000.5", -1102, "'timestamp'"),
        ("timestamp=17517960x0000", -1100, "'timestamp'"),
        ("timestamp=NOW", -1100, "'timestamp'"),
        ("recvWindow=60001&timestamp=NOW_MS", -1131, "60000"),
        ("timestamp=NOW_MS", -1102, "'signature'"),
        ("timestamp=NOW_MS&signature=", -1102, "'signature'"),
    ],
)
async def test_malformed_parameters(sim_http: SimHttp, fake_sim: Simulator, query: str,
                                    code: int, needle: str) -> None:
    query = query.replace("NOW_MS", str(fake_sim.clock.now_ms()))
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary", query)
    assert (reply.status, reply.code) == (400, code)
    assert needle in reply.json["msg"]


async def test_ed25519_signed_request_is_accepted(http_session: aiohttp.ClientSession) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    base = load_scenario("calm")
    scenario = base.model_copy(update={"keys": [
        *base.keys, KeySpec(label="ed", api_key="E" * 64, ed25519_public_key=pem)]})
    async with run_simulator(scenario, speed=0, start_ms=SIM_START_MS, world_factory=FakeWorld) as sim:
        payload = f"recvWindow=5000&timestamp={sim.clock.now_ms()}"
        sig = base64.b64encode(private.sign(payload.encode())).decode()
        http = SimHttp(http_session, sim)
        ok = await http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary",
                             f"{payload}&signature={quote(sig, safe='')}", api_key="E" * 64)
        assert (ok.status, ok.code) == (200, "000000")
        other = ed25519.Ed25519PrivateKey.generate()
        bad_sig = base64.b64encode(other.sign(payload.encode())).decode()
        bad = await http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary",
                              f"{payload}&signature={quote(bad_sig, safe='')}", api_key="E" * 64)
        assert bad.code == -1022
        assert [r["key"] for r in sim.requests()] == ["ed", "ed"]


async def test_bot_signed_client_works_unchanged(fake_sim: Simulator) -> None:
    async with SignedClient(fake_sim.base_url, api_key=SecretStr(fake_sim.api_key),
                            signer=HmacSigner(SecretStr(fake_sim.api_secret or "")),
                            timeout=5) as client:
        summary = await client.call("order_summary")
        assert summary.data["tradingCount"] == 0
        ads = await client.call("search", SEARCH)
        assert ads.total == 1 and ads.data[0]["advertiser"]["nickName"] == "alpha"
        detail = await client.call("ad_detail", {"adsNo": "1"})
        assert detail.data["price"] == "93.40"
        with pytest.raises(AdNotFound):
            await client.call("ad_detail", {"adsNo": "2"})
        restrictions = await client.call("key_permissions")
        assert restrictions.data["enableReading"] is True
        assert restrictions.data["enableWithdrawals"] is False
        with pytest.raises(BogusResponse):
            await client.call("get_ads")
        assert client.used_weight["X-SAPI-USED-IP-WEIGHT-1M"] >= 6
    world = fake_sim.world
    assert isinstance(world, FakeWorld)
    search_call = next(c for c in world.calls if c[0] == "search")
    assert search_call[1] == {} and search_call[2]["asset"] == "USDT"
    ad_call = next(c for c in world.calls if c[0] == "ad_detail")
    assert ad_call[1] == {"adsNo": "1"}


async def test_server_time_is_the_virtual_clock(sim_http: SimHttp, fake_sim: Simulator) -> None:
    reply = await sim_http.send("GET", "/api/v3/time")
    assert reply.json == {"serverTime": SIM_START_MS}
    assert reply.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    fake_sim.advance(90)
    assert (await sim_http.send("GET", "/api/v3/time")).json == {"serverTime": SIM_START_MS + 90_000}


async def test_unknown_c2c_path_answers_empty_200(sim_http: SimHttp) -> None:
    for path in ("/sapi/v1/c2c/ads/getAds", "/sapi/v1/c2c/no/such/thing"):
        reply = await sim_http.send("GET", path)
        assert (reply.status, reply.text) == (200, "")
    assert (await sim_http.send("GET", "/sapi/v1/nothing")).status == 404


async def test_wrong_method_is_404(sim_http: SimHttp, fake_sim: Simulator) -> None:
    reply = await sim_http.send("GET", "/sapi/v1/c2c/ads/search", _signed(fake_sim))
    assert (reply.status, reply.json) == (404, {"code": -1000, "msg": "Request method 'GET' is not supported"})


async def test_world_missing_parameter_is_1102(sim_http: SimHttp) -> None:
    reply = await sim_http.call("search", body={"asset": "USDT"})
    assert (reply.status, reply.code) == (400, -1102)
    assert "'fiat'" in reply.json["msg"]


async def test_business_error_envelope(sim_http: SimHttp) -> None:
    reply = await sim_http.call("ad_detail", {"adsNo": "9"})
    assert reply.status == 200
    assert reply.json == {"code": "187022", "message": "Ad not found or not online.",
                          "data": None, "success": False}


async def test_paged_envelope_has_total(sim_http: SimHttp) -> None:
    reply = await sim_http.call("search", body=SEARCH)
    assert list(reply.json) == ["code", "message", "data", "total", "success"]
    assert reply.json["total"] == 1


@pytest.mark.parametrize(
    ("api_key", "status", "code"),
    [("Z" * 64, 401, -2015), ("not a key!", 401, -2014), ("", 401, -2014)],
)
async def test_unknown_or_garbled_keys(sim_http: SimHttp, fake_sim: Simulator, api_key: str,
                                       status: int, code: int) -> None:
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary",
                                _signed(fake_sim), headers={"X-MBX-APIKEY": api_key})
    assert (reply.status, reply.code) == (status, code)


async def test_form_encoded_body_is_1000(sim_http: SimHttp, fake_sim: Simulator) -> None:
    reply = await sim_http.send("POST", "/sapi/v1/c2c/ads/search", _signed(fake_sim),
                                data=b"asset=USDT&fiat=RUB",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (reply.status, reply.code) == (400, -1000)


@pytest.mark.parametrize("form", [False, True])
async def test_signature_in_body_is_1002(sim_http: SimHttp, fake_sim: Simulator, form: bool) -> None:
    if form:
        reply = await sim_http.send("POST", "/sapi/v1/c2c/ads/search", _signed(fake_sim),
                                    data=b"asset=USDT&signature=abc",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    else:
        reply = await sim_http.send("POST", "/sapi/v1/c2c/ads/search", _signed(fake_sim),
                                    body={**SEARCH, "signature": "abc"})
    assert (reply.status, reply.json) == (
        401, {"code": -1002, "msg": "You are not authorized to execute this request."})


async def test_missing_client_type_is_tolerated_and_recorded(sim_http: SimHttp, fake_sim: Simulator) -> None:
    reply = await sim_http.send("GET", "/sapi/v1/c2c/orderMatch/getUserOrderSummary",
                                _signed(fake_sim), headers={"clientType": None})
    assert reply.status == 200
    assert fake_sim.requests()[-1]["client_type"] is None


async def test_world_advances_before_each_request(sim_http: SimHttp, fake_sim: Simulator) -> None:
    world = fake_sim.world
    assert isinstance(world, FakeWorld)
    before = world.advanced
    await sim_http.send("GET", "/api/v3/time")
    await sim_http.send("GET", "/api/v3/time")
    assert world.advanced >= before + 2


async def test_sim_fixture_serves_every_world_endpoint(sim: Simulator) -> None:
    """The `sim` fixture (the real World when it exists) answers the bot's reads in the envelope."""
    calls = {
        "search": SEARCH,
        "reference_price": {"assets": ["USDT"], "fiatCurrency": "RUB", "tradeType": "SELL"},
        "categories": None,
        "my_ads": {"page": 1, "rows": 10},
        "order_summary": None,
        "list_orders": {"page": 1, "rows": 10},
        "chat_credential": None,
    }
    async with SignedClient(sim.base_url, api_key=SecretStr(sim.api_key),
                            signer=HmacSigner(SecretStr(sim.api_secret or "")),
                            clock=ClientClock(sim.clock)) as client:
        for name, params in calls.items():
            reply = await client.call(name, params)
            assert reply.payload["success"] is True, name
    served = [r for r in sim.requests() if r["endpoint"] in calls]
    assert [r["status"] for r in served] == [200] * len(calls)
