"""The capability registry against the simulator: the recorded key rollout, no traffic to
unregistered endpoints, and a 429 that pauses every sender."""

from __future__ import annotations

import asyncio

import pytest

from bot.commands.history import render
from bot.commands.probe import probe_once, watch
from simulator.app import run_simulator
from state.endpoints import EndpointLog
from tests.e2e.support import registry_on
from tests.support import ClientClock

SIX = ("get_ads", "order_summary", "categories", "search", "reference_price", "chat_credential")
# phase start (simulated seconds) -> what the merchant recorded for the six endpoints
RECORD = {
    10: {"get_ads": "bogus", "order_summary": "unregistered", "categories": "unregistered",
         "search": "unregistered", "reference_price": "unregistered", "chat_credential": "unregistered"},
    310: {"get_ads": "failing", "order_summary": "available", "categories": "unregistered",
          "search": "failing", "reference_price": "failing", "chat_credential": "failing"},
    520: {"get_ads": "bogus", "order_summary": "available", "categories": "available",
          "search": "refused", "reference_price": "failing", "chat_credential": "failing"},
    1010: {"get_ads": "bogus", "order_summary": "unregistered", "categories": "unregistered",
           "search": "unregistered", "reference_price": "unregistered", "chat_credential": "unregistered"},
}
WORKING = {10: 1, 310: 1, 520: 3, 1010: 1}  # HTTP 200s, counted the merchant's way


@pytest.mark.slow
async def test_probe_watch_records_the_key_rollout(tmp_path) -> None:
    async with run_simulator("key_rollout", speed=0) as sim:
        sim.advance(10)
        clock = ClientClock(sim.clock)
        async with registry_on(sim, clock, tmp_path / "p.db", request_timeout=0.3) as (reg, store):
            reg.hints.update(asset="USDT", fiat="RUB")
            seen: list[dict[str, str]] = []
            stops = iter(sorted(RECORD)[1:])

            async def between() -> None:
                sim.advance(next(stops) - sim.elapsed)

            await watch(reg, 1, len(RECORD), lambda rows: seen.append(
                {r.endpoint: r.state for r in rows if r.endpoint in SIX}), between)
            assert seen == [RECORD[t] for t in sorted(RECORD)]
            assert [sum(1 for ep in SIX if _http_200(sim, ep, t)) for t in sorted(RECORD)] == \
                [WORKING[t] for t in sorted(RECORD)]
            log = await EndpointLog(store).transitions("search")
            assert [(t.new, t.code) for t in log] == [
                ("unregistered", -2008), ("failing", None), ("refused", -1022),
                ("unregistered", -2008)]
            text = render(await EndpointLog(store).transitions())
    assert "search" in text and "-2008" in text and "-1022" in text
    assert "outages (not available):" in text


def _http_200(sim, endpoint: str, at: float) -> bool:  # type: ignore[no-untyped-def]
    """Whether the probe round at `at` got an HTTP 200 from `endpoint`."""
    start_ms = sim.clock.now_ms() - int(sim.elapsed * 1000)
    rows = [r for r in sim.requests(endpoint)
            if abs(r["time_ms"] - (start_ms + at * 1000)) < 1000]
    return bool(rows) and rows[-1]["status"] == 200


async def test_unregistered_endpoint_gets_no_traffic_between_probes(tmp_path) -> None:
    async with run_simulator("calm", speed=0) as sim:
        sim.set_registration("search", "unregistered")
        clock = ClientClock(sim.clock)
        async with registry_on(sim, clock, tmp_path / "n.db") as (reg, store):
            reg.hints.update(asset="USDT", fiat="RUB")
            await probe_once(reg)
            assert reg.state("search") == "unregistered"
            probes = 0
            for _ in range(40):  # 40 polling ticks of 10 s
                for _ in range(3):
                    try:
                        await reg.call("search", {"asset": "USDT", "fiat": "RUB",
                                                  "tradeType": "BUY", "page": 1, "rows": 5})
                    except Exception:  # noqa: BLE001 - CapabilityUnavailable expected
                        pass
                sim.advance(10)
                for name in reg.due():
                    probes += name == "search"
                    await reg.probe(name)
            sent = len(sim.requests("search"))
            assert probes >= 2  # re-probed on backoff: after ~60 s, then ~120 s more
            assert sent == 1 + probes  # the first call and the probes, nothing else


async def test_429_pauses_every_sender(tmp_path) -> None:
    async with run_simulator("calm", speed=0) as sim:
        clock = ClientClock(sim.clock)
        async with registry_on(sim, clock, tmp_path / "r.db") as (reg, store):
            await reg.call("categories", {})
            sim.add_fault("http429", count=1, endpoint="order_summary", retry_after=7)
            t0 = sim.clock.now_ms()
            await asyncio.gather(reg.call("order_summary", {}), reg.call("my_ads",
                                 {"page": 1, "rows": 1}), reg.call("categories", {}))
            rows = [r for r in sim.requests() if r["time_ms"] >= t0]
            limited = next(r for r in rows if r["status"] == 429)
            after = [r for r in rows if r["id"] > limited["id"]]
            assert after, "the senders went on after the pause"
            assert all(r["time_ms"] >= limited["time_ms"] + 7000 for r in after)


@pytest.mark.slow
async def test_probe_prints_the_matrix_for_every_scenario(tmp_path) -> None:
    from bot.commands.probe import READ_ONLY, WRITES, render

    for scenario in ("calm", "key_rollout", "price_war", "stormy"):
        async with run_simulator(scenario, speed=0, seed=1) as sim:
            clock = ClientClock(sim.clock)
            async with registry_on(sim, clock, tmp_path / f"{scenario}.db",
                                   request_timeout=0.3) as (reg, store):
                rows = await probe_once(reg)
                text = render(reg, rows)
        assert [r.endpoint for r in rows] == [*READ_ONLY, *WRITES], scenario
        assert all(r.state for r in rows)
        for name in ("market", "reference_price", "orders", "chat"):
            assert name in text


async def test_probe_tells_the_truth_in_the_realistic_scenario(tmp_path) -> None:
    """The real exchange's habits (-9000 wrappers, clientType, weight headers, read lag, ...)
    are not outages: every read endpoint is available, and the writes' harmless probes too."""
    from bot.capabilities.table import WRITE_PROBES

    async with run_simulator("realistic", speed=0, seed=7) as sim:
        clock = ClientClock(sim.clock)
        async with registry_on(sim, clock, tmp_path / "realistic.db",
                               request_timeout=2.0) as (reg, _store):
            rows = await probe_once(reg)
            states = {r.endpoint: str(reg.state(r.endpoint)) for r in rows}
            ad = next(a for a in sim.world.account.ads.values() if a.side == "SELL")
            reg.hints["adv_no"] = ad.adv_no
            for name in WRITE_PROBES:
                await reg.probe(name)
                states[name] = str(reg.state(name))
            unsent = {n for n in WRITE_PROBES if reg.probe_params.get(n) is None}
    # a write whose harmless form does not exist now is not sent (closeBusiness while open)
    assert unsent == {"close_business"}
    down = {n: s for n, s in states.items()
            if s != "available" and n not in ("get_ads", "order_detail", *unsent)}
    assert down == {}, down
    assert states["get_ads"] == "bogus"  # probed only: it answers an empty 200 everywhere
