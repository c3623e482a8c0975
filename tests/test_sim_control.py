"""The /_sim/ control API, and every fault kind doing what it says."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from bot.binance import errors
from simulator.app import Simulator
from tests.support import SIM_START_MS, FakeWorld, SimHttp

SEARCH = {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}


async def _control(http: SimHttp, method: str, path: str, body: object = None) -> tuple[int, object]:
    async with http.session.request(method, f"{http.sim.base_url}{path}", json=body) as resp:
        return resp.status, await resp.json()


# --- control routes ----------------------------------------------------------------


async def test_state_and_clock(sim_http: SimHttp, fake_sim: Simulator) -> None:
    status, state = await _control(sim_http, "GET", "/_sim/state")
    assert status == 200 and isinstance(state, dict)
    assert state["scenario"] == "calm" and state["keys"] == [{"label": "main", "kind": "hmac"}]
    assert state["registration"]["main"]["search"] == "ok"
    assert state["clock"]["now_ms"] == SIM_START_MS
    status, clock = await _control(sim_http, "POST", "/_sim/clock/advance", {"seconds": 90})
    assert status == 200 and clock == {"now_ms": SIM_START_MS + 90_000, "start_ms": SIM_START_MS,
                                       "elapsed": 90.0, "speed": 0.0}
    assert (await _control(sim_http, "GET", "/_sim/clock"))[1] == clock
    status, err = await _control(sim_http, "POST", "/_sim/clock/advance", {"seconds": -1})
    assert status == 400 and "forward" in str(err)


async def test_requests_are_recorded_and_filtered(sim_http: SimHttp, fake_sim: Simulator) -> None:
    await sim_http.call("search", body=SEARCH)
    await sim_http.call("order_summary")
    fake_sim.advance(10)
    await sim_http.call("order_summary")
    status, rows = await _control(sim_http, "GET", "/_sim/requests?endpoint=search")
    assert status == 200 and isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert row["method"] == "POST" and row["path"] == "/sapi/v1/c2c/ads/search"
    assert row["body"] == SEARCH and set(row["query"]) == {"recvWindow", "timestamp", "signature"}
    assert (row["key"], row["signature_valid"], row["status"], row["code"]) == ("main", True, 200, "000000")
    since = SIM_START_MS + 10_000
    assert [r["endpoint"] for r in (await _control(sim_http, "GET", f"/_sim/requests?since={since}"))[1]] == [
        "order_summary"]
    assert len((await _control(sim_http, "GET", f"/_sim/requests?after={row['id']}"))[1]) == 2
    assert (await _control(sim_http, "DELETE", "/_sim/requests"))[0] == 200
    assert fake_sim.requests() == []


async def test_registration_routes(sim_http: SimHttp, fake_sim: Simulator) -> None:
    status, reg = await _control(sim_http, "POST", "/_sim/registration",
                                 {"endpoint": "search", "behaviour": "unregistered"})
    assert status == 200 and reg["now"]["search"] == "unregistered"
    assert (await sim_http.call("search", body=SEARCH)).code == -2008
    status, reg = await _control(sim_http, "POST", "/_sim/registration", {"timeline": [
        {"at": 0, "answers": {"categories": -1102}}]})
    assert status == 200 and reg["now"]["categories"] == "-1102"
    status, reg = await _control(sim_http, "GET", "/_sim/registration?key=main")
    assert reg["overrides"] == {"search": {"mode": "unregistered"}}
    status, err = await _control(sim_http, "POST", "/_sim/registration",
                                 {"endpoint": "serch", "behaviour": "unregistered"})
    assert status == 400 and "serch" in err["error"]
    status, err = await _control(sim_http, "GET", "/_sim/registration?key=nobody")
    assert status == 400 and "nobody" in err["error"]


async def test_fault_routes(sim_http: SimHttp, fake_sim: Simulator) -> None:
    status, fault = await _control(sim_http, "POST", "/_sim/faults", {"kind": "html403", "count": 1})
    assert status == 200 and fault["id"] == 1 and fault["remaining"] == 1
    assert (await sim_http.call("order_summary")).status == 403
    assert (await _control(sim_http, "GET", "/_sim/faults"))[1][0]["hits"] == 1
    status, err = await _control(sim_http, "POST", "/_sim/faults", {"kind": "meteor"})
    assert status == 400 and "kind" in err["error"]
    await _control(sim_http, "POST", "/_sim/faults", {"kind": "html403"})
    assert (await _control(sim_http, "DELETE", "/_sim/faults"))[0] == 200
    assert (await sim_http.call("order_summary")).status == 200


async def test_world_routes_are_mounted(sim_http: SimHttp) -> None:
    status, info = await _control(sim_http, "GET", "/_sim/world/info")
    assert status == 200 and info["fake"] is True


async def test_limits_reset(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.add_fault("http429", count=1, retry_after=30)
    assert (await sim_http.call("order_summary")).status == 429
    assert (await _control(sim_http, "DELETE", "/_sim/limits"))[0] == 200
    assert (await sim_http.call("order_summary")).status == 200


# --- each fault kind -------------------------------------------------------------------


async def test_latency(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.add_fault("latency", latency_ms=150, count=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await sim_http.call("order_summary")).status == 200
    assert loop.time() - started >= 0.15
    assert fake_sim.requests()[-1]["faults"] == ["latency"]


@pytest.mark.parametrize(
    ("spec", "status", "cls"),
    [
        ({"kind": "http5xx"}, 500, errors.ExchangeUnavailable),
        ({"kind": "http5xx", "status": 503}, 503, errors.ExchangeUnavailable),
        ({"kind": "http5xx", "status": 502, "html": True}, 502, errors.ExchangeUnavailable),
        ({"kind": "html403"}, 403, errors.Forbidden),
        ({"kind": "http429", "retry_after": 7}, 429, errors.RateLimited),
        ({"kind": "malformed"}, 200, errors.BadResponse),
    ],
)
async def test_reply_faults(sim_http: SimHttp, fake_sim: Simulator, spec: dict[str, object],
                            status: int, cls: type[errors.BinanceError]) -> None:
    fake_sim.add_fault(count=1, **spec)  # type: ignore[arg-type]
    reply = await sim_http.call("order_summary")
    assert reply.status == status
    exc = errors.classify(reply.status, reply.text, endpoint="order_summary", headers=reply.headers)
    assert type(exc) is cls
    if spec.get("html") or spec["kind"] == "html403":
        assert reply.headers["Content-Type"].startswith("text/html")
        assert "X-SAPI-USED-IP-WEIGHT-1M" not in reply.headers
    if spec["kind"] == "http429":
        assert reply.headers["Retry-After"] == "7"
    if spec["kind"] == "malformed":
        with pytest.raises(ValueError):
            json.loads(reply.text)
        world = fake_sim.world
        assert isinstance(world, FakeWorld) and world.calls[-1][0] == "order_summary"
    assert (await sim_http.call("order_summary")).status == (418 if spec["kind"] == "http429" else 200)


async def test_reshape_renames_keys_inside_data_or_nulls_it(sim_http: SimHttp,
                                                            fake_sim: Simulator) -> None:
    plain = json.loads((await sim_http.call("order_summary")).text)
    assert isinstance(plain["data"], dict) and plain["data"]
    key = next(iter(plain["data"]))
    fake_sim.add_fault("reshape", rename={key: key + "Renamed"}, count=1, endpoint="order_summary")
    renamed = json.loads((await sim_http.call("order_summary")).text)
    assert key not in renamed["data"] and key + "Renamed" in renamed["data"]
    assert renamed["code"] == "000000"
    fake_sim.add_fault("reshape", null_data=True, count=1)
    assert json.loads((await sim_http.call("order_summary")).text)["data"] is None
    assert json.loads((await sim_http.call("order_summary")).text) == plain


async def test_timeout_holds_the_request(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.add_fault("timeout", hold_seconds=30, count=1, endpoint="search")
    with pytest.raises(TimeoutError):
        await sim_http.call("search", body=SEARCH, client_timeout=0.2)
    assert fake_sim.requests("search")[-1]["outcome"] == "held"
    assert (await sim_http.call("search", body=SEARCH)).status == 200


async def test_drop_closes_the_connection(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.add_fault("drop", count=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sim_http.call("search", body=SEARCH)
    assert fake_sim.requests()[-1]["outcome"] == "dropped"
    assert (await sim_http.call("search", body=SEARCH)).status == 200


async def test_aiohttp_retries_a_dropped_get_once(sim_http: SimHttp, fake_sim: Simulator) -> None:
    """aiohttp's client resends an idempotent request once after a dropped connection."""
    fake_sim.add_fault("drop", count=1)
    assert (await sim_http.call("order_summary")).status == 200
    assert [r["outcome"] for r in fake_sim.requests()] == ["dropped", "answered"]
    fake_sim.add_fault("drop", count=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sim_http.call("order_summary")


@pytest.mark.parametrize(
    ("skew_ms", "msg"),
    [(10_000, "outside of the recvWindow"), (-2_000, "1000ms ahead")],
)
async def test_clock_skew(sim_http: SimHttp, fake_sim: Simulator, skew_ms: int, msg: str) -> None:
    fake_sim.add_fault("skew", skew_ms=skew_ms, duration=60)
    assert (await sim_http.send("GET", "/api/v3/time")).json == {"serverTime": SIM_START_MS + skew_ms}
    reply = await sim_http.call("order_summary", timestamp=SIM_START_MS)
    assert reply.code == -1021 and msg in reply.json["msg"]
    assert (await sim_http.call("order_summary", timestamp=SIM_START_MS + skew_ms)).status == 200
    fake_sim.advance(60)  # the window is over
    assert (await sim_http.send("GET", "/api/v3/time")).json == {"serverTime": SIM_START_MS + 60_000}


async def test_window_endpoint_and_count_scoping(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.add_fault("html403", endpoint="search", start=30, end=60)
    assert (await sim_http.call("search", body=SEARCH)).status == 200  # before the window
    fake_sim.advance(30)
    assert (await sim_http.call("search", body=SEARCH)).status == 403
    assert (await sim_http.call("order_summary")).status == 200  # another endpoint
    fake_sim.advance(30)
    assert (await sim_http.call("search", body=SEARCH)).status == 200  # after it
    fake_sim.add_fault("http5xx", count=2)
    statuses = [(await sim_http.call("order_summary")).status for _ in range(3)]
    assert statuses == [500, 500, 200]
