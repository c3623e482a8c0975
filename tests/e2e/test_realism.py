"""The real exchange's habits (the `[realism]` switches), end to end: the real bot's engine
and client against the simulator with the switch on.

The read-lag tests drive the engine step by step on a frozen simulator (a search every 10
simulated seconds, the own-ads list every 20), so that every read the lag can spoil is made.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from bot.app import Bot
from bot.binance.endpoints import Endpoint, Style, UnofficialPath
from bot.binance.errors import ClientBug, QuantityConflict
from bot.health import EndpointState
from bot.ops import status_api as status
from bot.ops.terminal import render
from bot.pricing.pollers import MarketPoller, OwnAdsPoller
from simulator.app import Simulator, run_simulator
from simulator.scenario import Scenario, load_scenario
from tests.e2e.support import SELL_AD, registry_on, sim_client, started
from tests.support import ClientClock

LAG = 30.0  # simulated seconds reads lag an update, longer than the search and list intervals


def scenario(**realism: Any) -> Scenario:
    """calm's world with these [realism] switches."""
    base = load_scenario("calm")
    return base.model_copy(update={"realism": base.realism.model_copy(update=realism)})




def _own(sim: Simulator, side: str) -> Any:
    return next(a for a in sim.world.account.ads.values() if a.side == side)  # type: ignore[attr-defined]


def _accepted(sim: Simulator) -> list[str]:
    """The prices of the accepted ads/update calls, in order."""
    return [r["body"].get("price") or r["body"].get("priceFloatingRatio")
            for r in sim.requests("update_ad") if r["code"] == "000000"]


async def _drive(sim: Simulator, bot: Bot, steps: int) -> list[Any]:
    """`steps` times: 10 simulated seconds, a search and a decision; the own-ads list every
    other step. The decision rows, in order."""
    market = next(p for p in bot.pollers if isinstance(p, MarketPoller))
    own = next(p for p in bot.pollers if isinstance(p, OwnAdsPoller))
    rows: list[Any] = []
    bot.engine.observers.append(lambda ad, row: rows.append(row))
    for step in range(steps):
        sim.advance(10)
        if step % 2:
            await bot.engine.on_own_ads(await own.fetch("my_ads"))
        await bot.engine.on_market(await market.fetch("search"))
    return rows


SELL = SELL_AD.format(floor="90.00", ceiling="96.00").replace("min_interval = 5", "min_interval = 0")


@pytest.mark.slow
async def test_read_lag_never_resends_the_same_update_nor_trusts_the_stale_price(
        tmp_path: Path) -> None:
    spec = scenario(read_lag_seconds=LAG, read_lag_endpoints=["search", "ad_detail", "my_ads"])
    async with run_simulator(spec, speed=0, seed=3) as sim:
        async with started(sim, tmp_path, SELL) as bot:
            rows = await _drive(sim, bot, 90)  # 15 simulated minutes
            ad = bot.ads[0]
            assert ad.own is not None and ad.own.price == _own(sim, "SELL").price
            # the view and the status page say that lagging reads were not believed
            assert ad.stale_reads > 0
            said = (await status.ad_status(bot, ad, bot.clock.time()))["settle"]
            assert said["stale_reads_ignored"] == ad.stale_reads
            assert f"lagging reads of its own price not believed: {ad.stale_reads}" in \
                render(bot, bot.clock.time())
    sent = _accepted(sim)
    assert len(sent) > 5
    assert [a for a, b in zip(sent, sent[1:], strict=False) if a == b] == []
    applied = [r for r in rows if r.result == "applied"]
    # every move starts from the price the bot set last, never from a stale read of the old one
    for prev, row in zip(applied, applied[1:], strict=False):
        assert row.price_before == prev.target, (prev, row)
    # rank and standing count the ad at its own price while search still shows the old one
    stale = [r for r in rows if r.trace.get("rank") is not None and r.result != "applied"]
    assert stale and all(r.trace["standing"] is not None for r in stale)


async def test_rank_while_search_lags_is_the_place_of_the_price_set(tmp_path: Path) -> None:
    spec = scenario(read_lag_seconds=LAG)
    async with run_simulator(spec, speed=0, seed=3) as sim:
        async with started(sim, tmp_path, SELL) as bot:
            rows = await _drive(sim, bot, 1)
            assert rows[-1].result == "applied"  # undercut moved the ad to first place
            sim.advance(10)
            market = next(p for p in bot.pollers if isinstance(p, MarketPoller))
            snap = await market.fetch("search")
            mine = bot.ads[0].own.adv_no
            items = list(snap.items)
            stale_at = next(n for n, i in enumerate(items, 1) if i.adv.adv_no == mine)
            assert items[stale_at - 1].adv.price == rows[-1].price_before  # search shows the old
            price = rows[-1].target
            row = await bot.engine.evaluate(bot.ads[0], snap)
            assert row is not None and row.price_before == price  # the price it set is the truth
            placed = 1 + sum(1 for i in items if i.adv.adv_no != mine and i.adv.price <= price)
            assert row.trace["rank"] == placed != stale_at
            assert row.trace["standing"] == 1


async def test_a_wrapped_quantity_refusal_is_read_back_and_resent_once(tmp_path: Path) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    spec = scenario(wrap_business_errors=True)
    try:
        async with run_simulator(spec, speed=0, seed=3) as sim:
            async with started(sim, tmp_path, SELL) as bot:
                _own(sim, "SELL").conflict = 187040  # the ad's amounts disagree until it is read
                rows = await _drive(sim, bot, 1)
    finally:
        logger.remove(sink)
    assert rows[-1].result == "applied", rows[-1]
    assert "resent after reading the ad back: code 187040" in rows[-1].reason
    # the warning said "resending once": the log says how it went, as for any update
    assert any(line.startswith(f"repriced sell {rows[-1].price_before} -> {rows[-1].target}: ")
               and line.endswith("(resent after reading the ad back: code 187040)")
               for line in lines), lines
    calls = [r["endpoint"] for r in sim.requests() if r["endpoint"] in ("update_ad", "ad_detail")]
    assert calls[-3:] == ["update_ad", "ad_detail", "update_ad"]
    assert [r["code"] for r in sim.requests("update_ad")] == [-9000, "000000"]
    assert _own(sim, "SELL").price == Decimal(rows[-1].target)


async def test_a_quantity_refusal_that_persists_holds_the_ad_and_alerts_once(
        tmp_path: Path) -> None:
    spec = scenario(wrap_business_errors=True, quantity_conflict_clears=False)
    alerts: list[tuple[str, str, str]] = []

    async def alert(kind: str, key: str, text: str) -> None:
        alerts.append((kind, key, text))

    async with run_simulator(spec, speed=0, seed=3) as sim:
        async with started(sim, tmp_path, SELL) as bot:
            bot.engine.alerts[:] = [alert]
            _own(sim, "SELL").conflict = 187031  # and a read does not settle it
            rows = await _drive(sim, bot, 6)  # one minute: the ad holds after its first refusal
    updates = sim.requests("update_ad")
    assert len(updates) == 2  # the update and its one resend, then nothing
    assert all(r["code"] == -9000 for r in updates)
    assert rows[0].result == "failed" and rows[0].code == 187031
    assert [r.result for r in rows[1:]] and all(r.result == "held" for r in rows[1:])
    assert any("not sent: held" in r.reason for r in rows[1:])
    assert [a[0] for a in alerts] == ["ad_refused"]
    assert "quantities disagree" in alerts[0][2]


async def test_client_type_is_sent_and_a_missing_one_is_a_client_bug(tmp_path: Path) -> None:
    spec = scenario(require_client_type=True)
    async with run_simulator(spec, speed=0, seed=3) as sim:
        clock = ClientClock(sim.clock)
        async with registry_on(sim, clock, tmp_path / "c.db") as (registry, _store):
            await registry.call("chat_credential")  # the bot's client sends clientType: web
            assert registry.state("chat_credential") is EndpointState.AVAILABLE
            assert sim.requests("chat_credential")[-1]["client_type"] == "web"
            # the same request without the header: -31002, a bug in the request, not -2008
            client = registry.client
            real = client._headers
            client._headers = lambda ep, body: {k: v for k, v in real(ep, body).items()  # type: ignore[method-assign]
                                                if k != "clientType"}
            with pytest.raises(ClientBug) as got:
                await registry.call("chat_credential")
            with pytest.raises(QuantityConflict) as refused:
                await registry.call("update_ad", {"advNo": _own(sim, "SELL").adv_no,
                                                  "price": "93.00"})
            client._headers = real  # type: ignore[method-assign]
            assert got.value.code == -31002 and "clientType" in str(got.value)
            assert registry.state("chat_credential") is not EndpointState.UNREGISTERED
            assert refused.value.code == 187049 and refused.value.wrapper == -9000


async def test_the_governor_reads_the_mbx_weight_header_of_c2c_answers(tmp_path: Path) -> None:
    from bot.ratelimit import RateGovernor

    spec = scenario(c2c_weight_header="mbx")
    async with run_simulator(spec, speed=0, seed=3) as sim:
        clock = ClientClock(sim.clock)
        governor = RateGovernor(12000, clock=clock)
        async with registry_on(sim, clock, tmp_path / "w.db", governor=governor) as (registry, _s):
            for _ in range(3):
                resp = await registry.call("my_ads", {"page": 1, "rows": 10})
            names = {k.lower() for k in resp.headers}
            assert "x-mbx-used-weight-1m" in names
            assert not any(n.startswith("x-sapi-used") for n in names)
            assert governor.used() >= int(resp.headers["x-mbx-used-weight-1m"]) >= 3


async def test_the_client_refuses_a_path_outside_the_official_api(tmp_path: Path) -> None:
    async with run_simulator("calm", speed=0, seed=3) as sim:
        client = sim_client(sim, ClientClock(sim.clock))
        try:
            web = object.__new__(Endpoint)  # as a plugin could smuggle one past the table
            for name, value in dict(name="web_ads", method="POST", path="/bapi/c2c/v2/friendly/c2c/adv/search",
                                    style=Style.JSON, weight=1, signed=True, envelope=True,
                                    write=False, query_params=(), summary="").items():
                object.__setattr__(web, name, value)
            with pytest.raises(UnofficialPath, match="official API paths"):
                await client.call(web, {"asset": "USDT"})
            assert sim.requests() == []  # nothing went out, not even the clock sync
        finally:
            await client.close()
