"""Degraded mode recovers for writes too, and readiness means "seen working": the real bot
and its web server against the simulator, in simulated time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from bot.commands.probe import probe_once, render
from bot.events import Cause
from bot.health import CapState, EndpointState
from simulator.app import Simulator, run_simulator
from state.db import Store
from state.meta import Meta
from tests.e2e.support import START_MS, registry_on, stepped_bot
from tests.support import ClientClock, bot_on_sim, capability_state, decided, write_config

REFUSED_FOR = 30.0  # simulated seconds during which ads/update answers -2008
FIRST, CAP = 10.0, 20.0  # probe_first, probe_cap
JITTER = 0.2  # the default probe_jitter
SLACK = 10.0  # simulated seconds for the scaled clock's scheduling (20x: 0.5 s of real time)
CAPABILITIES = f"""
[capabilities]
probe_first = {FIRST:g}
probe_cap = {CAP:g}
"""


async def _readyz(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(url + "/readyz") as r:
        return r.status, await r.json()


def _elapsed(sim: Simulator, rows: list[dict]) -> list[tuple[float, int, dict]]:  # type: ignore[type-arg]
    """(simulated seconds since the start, HTTP status, body) of each request."""
    start_ms = sim.clock.now_ms() - int(sim.elapsed * 1000)
    return [((r["time_ms"] - start_ms) / 1000, r["status"], r["body"]) for r in rows]


async def test_repricing_resumes_after_update_ad_answered_2008(tmp_path: Path) -> None:
    """On the stepped clock: the probe's backoff is checked to the second (at 20x real time
    the bound needed 10 simulated seconds of slack for the machine)."""
    async with run_simulator("calm", stepped=True, start_ms=START_MS) as sim:
        sim.set_timeline([{"at": 0, "answers": {"update_ad": -2008}},
                          {"at": REFUSED_FOR, "answers": {}}])
        config = write_config(tmp_path / "bot.toml", tail=CAPABILITIES)
        async with stepped_bot(sim, config, tmp_path / "bot.db", web=True) as r:
            own = r.bot.ads[0].own
            assert own is not None and own.price_type == "fixed"
            price_at_start = own.price
            registry = r.bot.registry
            await r.until(lambda: registry.status("repricing").state is CapState.DISABLED, 60,
                          "the first -2008")
            status, ready = await _readyz(r.web.url)
            assert status == 503 and "repricing" in [d["capability"] for d in ready["down"]]
            applied = decided(r.bot, lambda ad, row: row.result == "applied")
            await r.wait(applied, 120, "an update applied")  # only a restart helped before
            assert registry.status("repricing").state is CapState.ENABLED
            status, ready = await _readyz(r.web.url)
            assert status == 200 and ready["down"] == []
        sent = _elapsed(sim, sim.requests("update_ad"))
    refused = [at for at, code, _ in sent if code != 200]
    first_ok = next((at, body) for at, code, body in sent if code == 200)
    assert refused and max(refused) < REFUSED_FOR < first_ok[0]
    # the endpoint is re-probed on the backoff (not more often), and the first probe after it
    # works brings repricing back: within one backoff step
    gaps = [b - a for a, b in zip(refused, refused[1:], strict=False)]
    assert all(g >= FIRST * (1 - JITTER) for g in gaps), sent
    assert first_ok[0] - max(refused) <= CAP * (1 + JITTER), sent
    # that first success is the probe: it re-sent the price the ad had, so it changed nothing
    assert Decimal(first_ok[1]["price"]) == price_at_start
    assert first_ok[1].keys() == {"advNo", "price"}


async def test_dry_run_sends_no_write_probe(tmp_path: Path) -> None:
    async with run_simulator("calm", stepped=True, start_ms=START_MS) as sim:
        sim.set_registration("update_ad", "unregistered")
        config = write_config(tmp_path / "bot.toml", bot="dry_run = true", tail=CAPABILITIES)
        async with stepped_bot(sim, config, tmp_path / "bot.db") as r:
            reg = r.bot.registry
            assert reg.hints.get("adv_no")  # a write probe would have an ad to re-send
            for write in ("update_ad", "update_ad_status"):  # as an earlier run saw them
                await reg.record(write, EndpointState.UNREGISTERED,
                                 Cause(write, -2008, "Invalid Api-Key ID."))
            until = r.bot.clock.time() + 3 * CAP  # several backoff steps of simulated time
            dry = decided(r.bot, lambda ad, row: row.result == "dry_run" and row.at >= until)
            await r.wait(dry, 3 * CAP + 60, "a dry-run decision after three backoff steps")
        assert sim.requests("update_ad") == []
        assert sim.requests("update_ad_status") == []


async def test_readyz_is_503_during_a_ban_restored_at_start(fast_sim: Simulator,
                                                           tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    until = fast_sim.clock.now() + 3600
    store = await Store.open(db)
    try:
        await Meta(store).set_ban_until(until)
    finally:
        await store.close()
    config = write_config(tmp_path / "bot.toml")
    async with bot_on_sim(fast_sim, config, db) as r:
        assert r.web is not None
        status, ready = await _readyz(r.web.url)
        assert status == 503 and ready["ready"] is False
        assert ready["banned_until"] == pytest.approx(until)
        assert {d["capability"] for d in ready["down"]} == {"market", "repricing"}
        assert {d["state"] for d in ready["down"]} == {"paused"}  # nothing is sent until it ends


async def test_probe_never_calls_repricing_enabled_when_nothing_answered(sim: Simulator,
                                                                        tmp_path: Path) -> None:
    from bot.commands.probe import READ_ONLY

    for name in READ_ONLY:
        sim.set_registration(name, -1022)  # a whitelist problem: every read is refused
    async with registry_on(sim, ClientClock(sim.clock), tmp_path / "p.db") as (reg, _):
        rows = await probe_once(reg)
        text = render(reg, rows)
    assert reg.status("repricing").state is CapState.UNCHECKED
    assert reg.enabled() == frozenset()
    table = text.split("\ncapability ")[1].splitlines()[1:]
    assert {line.split()[0]: line.split()[1] for line in table}["repricing"] == "unchecked"
    assert all(line.split()[1] != "enabled" for line in table)
    assert "update_ad not called" in next(x for x in table if x.startswith("repricing"))


async def test_reference_outage_names_both_of_its_endpoints(fast_sim: Simulator,
                                                            tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml")
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        fast_sim.set_registration("reference_price", "unregistered")
        fast_sim.set_registration("search", "unregistered")
        await capability_state(r.bot, "reference_price", "disabled", within=20)
        async with aiohttp.ClientSession() as s, s.get(r.web.url + "/api/status") as resp:
            doc = await resp.json()
    cap = next(c for c in doc["capabilities"] if c["name"] == "reference_price")
    assert cap["state"] == "disabled"
    assert {c["endpoint"] for c in cap["causes"]} == {"reference_price", "search"}
    assert {c["code"] for c in cap["causes"]} == {-2008}


async def test_probe_writes_sends_the_daemons_harmless_write_probes(sim: Simulator,
                                                                    tmp_path: Path) -> None:
    async with registry_on(sim, ClientClock(sim.clock), tmp_path / "p.db") as (reg, _):
        rows = {r.endpoint: r for r in await probe_once(reg, probe_writes=True)}
    adv_no = reg.hints["adv_no"]
    assert rows["update_ad"].state == "available"
    assert rows["update_ad"].note.startswith(f"re-sent ad {adv_no}'s current ")
    assert rows["update_ad_status"].state == "available"
    assert rows["update_ad_status"].note == f"re-sent ad {adv_no}'s current advStatus 1"
    assert reg.status("repricing").state is CapState.ENABLED
    (update,) = sim.requests("update_ad")
    (status,) = sim.requests("update_ad_status")
    detail = [r for r in sim.requests("ad_detail") if r["time_ms"] <= update["time_ms"]]
    assert detail, "the ad is read before the write"
    assert status["body"] == {"advNos": [adv_no], "advStatus": 1}
    assert update["body"] == {"advNo": adv_no, "price": "93.40"}  # the calm ad's own price
