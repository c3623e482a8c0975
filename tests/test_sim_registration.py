"""Endpoint registration per key: -2008, until a time, flapping, timelines, and the key_rollout record."""

from __future__ import annotations

import aiohttp
import pytest

from simulator.app import Simulator, run_simulator
from simulator.registration import KeyBook
from simulator.scenario import Flapping, KeySpec
from tests.support import SIM_START_MS, FakeWorld, Reply, SimHttp

SIX = ("get_ads", "order_summary", "categories", "search", "reference_price", "chat_credential")
SEARCH = {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}
REF = {"assets": ["USDT"], "fiatCurrency": "RUB", "tradeType": "SELL"}


async def test_unregistered_endpoint_answers_2008(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.set_registration("search", "unregistered")
    reply = await sim_http.call("search", body=SEARCH)
    assert (reply.status, reply.json) == (400, {"code": -2008, "msg": "Invalid Api-Key ID."})
    assert (await sim_http.call("order_summary")).status == 200
    fake_sim.set_registration("search", None)
    assert (await sim_http.call("search", body=SEARCH)).status == 200


async def test_unregistered_until_flips_when_the_clock_passes(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.set_registration("categories", "unregistered", until=fake_sim.elapsed + 60)
    assert (await sim_http.call("categories")).code == -2008
    fake_sim.advance(59)
    assert (await sim_http.call("categories")).code == -2008
    fake_sim.advance(1)
    assert (await sim_http.call("categories")).code == "000000"


async def test_fixed_answers_can_be_set(sim_http: SimHttp, fake_sim: Simulator) -> None:
    fake_sim.set_registration("order_summary", -1022)
    assert (await sim_http.call("order_summary")).code == -1022
    fake_sim.set_registration("order_summary", "http500")
    reply = await sim_http.call("order_summary")
    assert (reply.status, reply.code) == (500, -1001)
    fake_sim.set_registration("order_summary", "empty")
    reply = await sim_http.call("order_summary")
    assert (reply.status, reply.text) == (200, "")
    fake_sim.set_registration("order_summary", {"code": 83229, "msg": "paused"})
    assert (await sim_http.call("order_summary")).json["code"] == "83229"


def _series(seed: int, label: str = "main") -> list[str]:
    book = KeyBook([KeySpec(label=label, registration={"search": Flapping(p=0.5, every=30)})], seed)
    key = book.first
    return [key.verdict("search", t).kind for t in range(0, 3000, 10)]


def test_flapping_is_fixed_by_the_seed() -> None:
    first = _series(seed=11)
    assert first == _series(seed=11)
    assert first != _series(seed=12)
    assert first != _series(seed=11, label="other")
    assert 0.3 < first.count("ok") / len(first) < 0.7
    slots = [first[i:i + 3] for i in range(0, len(first), 3)]  # 30 s slots, sampled every 10 s
    assert all(len(set(slot)) == 1 for slot in slots)  # switches at most every 30 s


async def test_flapping_over_http_repeats_for_the_same_seed(http_session: aiohttp.ClientSession) -> None:
    async def run(seed: int) -> list[object]:
        async with run_simulator("calm", speed=0, seed=seed, start_ms=SIM_START_MS,
                                 world_factory=FakeWorld) as sim:
            sim.set_registration("categories", "flapping", p=0.5, every=20)
            http = SimHttp(http_session, sim)
            codes = []
            for _ in range(12):
                codes.append((await http.call("categories")).code)
                sim.advance(20)
            return codes

    first = await run(5)
    assert first == await run(5)
    assert set(first) == {"000000", -2008}


def test_timeline_precedence() -> None:
    spec = KeySpec.model_validate({
        "label": "k", "registration": {"default": "unregistered", "search": "registered"},
        "timeline": [{"at": 0, "answers": {"search": -1022}}, {"at": 100, "answers": {}}],
    })
    key = KeyBook([spec], 1).first
    assert key.verdict("search", 50).code == -1022
    assert key.verdict("search", 150).kind == "ok"
    assert key.verdict("my_ads", 150).kind == "unregistered"
    key.set_behaviour("search", "unregistered")
    assert key.verdict("search", 50).kind == "unregistered"  # an override beats the timeline


async def _six(http: SimHttp) -> dict[str, object]:
    """Call the record's six endpoints; a timed-out call is 'timeout'."""
    results: dict[str, object] = {}
    for name in SIX:
        body = SEARCH if name == "search" else REF if name == "reference_price" else None
        try:
            reply: Reply = await http.call(name, body=body, client_timeout=0.2)
        except TimeoutError:
            results[name] = "timeout"
            continue
        results[name] = (reply.status, reply.code if reply.text else "empty")
    return results


RECORD = [
    (0, {"get_ads": (200, "empty"), "order_summary": (400, -2008), "categories": (400, -2008),
         "search": (400, -2008), "reference_price": (400, -2008), "chat_credential": (400, -2008)}),
    (300, {"get_ads": (500, -1001), "order_summary": (200, "000000"), "categories": (400, -2008),
           "search": "timeout", "reference_price": "timeout", "chat_credential": (400, -1102)}),
    (510, {"get_ads": (200, "empty"), "order_summary": (200, "000000"),
           "categories": (200, "000000"), "search": (400, -1022), "reference_price": (500, -1001),
           "chat_credential": (400, -1102)}),
    (1000, {"get_ads": (200, "empty"), "order_summary": (400, -2008), "categories": (400, -2008),
            "search": (400, -2008), "reference_price": (400, -2008), "chat_credential": (400, -2008)}),
]


@pytest.mark.slow
async def test_key_rollout_reproduces_the_record(http_session: aiohttp.ClientSession) -> None:
    async with run_simulator("key_rollout", speed=0, start_ms=SIM_START_MS,
                             world_factory=FakeWorld) as sim:
        http = SimHttp(http_session, sim)
        working = []
        for at, expected in RECORD:
            sim.advance(at - sim.elapsed)
            got = await _six(http)
            assert got == expected, f"phase at {at}s"
            working.append(sum(1 for v in got.values() if isinstance(v, tuple) and v[0] == 200))
            assert (await http.call("key_permissions")).code == -2015
        assert working == [1, 1, 3, 1]  # 1 of 6 on July 6; 1, 3, back to 1 over July 9
        sim.advance(1600 - sim.elapsed)  # beyond the record: the key is fully enabled
        got = await _six(http)
        assert all(v[0] == 200 for v in got.values() if isinstance(v, tuple)), got
        assert (await http.call("my_ads", body={"page": 1, "rows": 10})).status == 200
        assert (await http.call("key_permissions")).code == -2015


@pytest.mark.parametrize("label", ["main", None])
def test_keybook_lookup(label: str | None) -> None:
    book = KeyBook([KeySpec(label="main"), KeySpec(label="spare")], 1)
    assert book.get(label).label == "main"
    assert book.find(book.keys[1].api_key) is book.keys[1]
    with pytest.raises(KeyError, match="spare"):
        book.get("nope")
