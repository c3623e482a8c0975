"""Issue 13: the bot against a simulator that behaves like the real exchange.

The price band is learned from refusals (named bounds, or bisection when none), an ad the
exchange hides for its open orders is held with a reason, and an ad whose price cannot be
kept inside its guards is hidden with `visible = 0` and shown again when safe.
"""

from __future__ import annotations

import math
from decimal import Decimal as D
from typing import Any

from bot.health import CapState
from bot.ops.status_api import build
from bot.ops.terminal import render
from bot.pricing.band import BAND_TTL
from simulator.app import Simulator, run_simulator
from simulator.scenario import Scenario, load_scenario
from tests.e2e.support import BUY_AD, SELL_AD
from tests.e2e.test_engine import decide, started

FIXED_70 = SELL_AD.format(floor="60", ceiling="99").replace(
    'strategy = "undercut"', 'strategy = "fixed"').replace(
    '[ads.params]\nstep = "0.01"', '[ads.params]\nprice = "70.00"')


def scenario(**rules: Any) -> Scenario:
    """calm, with a still reference, no random orders, and these [world.rules]."""
    world = {"markets": [{"volatility": "0"}], "orders": {"rate_per_hour": 0}, "rules": rules}
    return load_scenario("calm").model_copy(update={"world": world})


def updates(sim: Simulator) -> list[dict[str, Any]]:
    return sim.requests("update_ad")


def prices_sent(sim: Simulator) -> list[D]:
    return [D(r["body"]["price"]) for r in updates(sim) if "price" in r["body"]]


def visibility_sent(sim: Simulator, ok: bool = False) -> list[int]:
    return [int(r["body"]["visible"]) for r in updates(sim)
            if "visible" in r["body"] and (not ok or r["status"] == 200)]


# ----- item 3: the price band is learned ------------------------------------------------------


async def test_a_refusal_naming_the_bounds_clamps_the_next_update_without_a_retry_loop(tmp_path) -> None:
    async with run_simulator(scenario(band_in_message=True), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, FIXED_70) as bot:
            row = await decide(bot)
            assert row.result == "failed" and row.code == 187055
            assert "the exchange allows 74.00 to 111.00" in row.reason
            assert prices_sent(sim) == [D("70.00")]  # no immediate retry of the refused price
            sim.advance(10)
            row = await decide(bot)
            assert row.result == "applied" and row.target == D("74.00") and "band" in row.guards
            assert row.trace["band"] == {"low": "74.00", "high": "111.00", "source": "message"}
            sim.advance(10)
            row = await decide(bot)
            assert row.result == "held" and "already at 74.00" in row.reason
            assert prices_sent(sim) == [D("70.00"), D("74.00")]
            assert sim.world.account.ads[bot.ads[0].own.adv_no].price == D("74.00")


async def test_the_moving_band_is_learned_too(tmp_path) -> None:
    sc = scenario(price_band_mode="moving", moving_band=["5", "5"])
    async with run_simulator(sc, speed=0, seed=4) as sim:
        async with started(sim, tmp_path, FIXED_70) as bot:
            low, _ = sim.world.account.band(sim.world.markets[("USDT", "RUB")])
            assert low > D("74.00")  # not 80%
            assert (await decide(bot)).code == 187055
            sim.advance(10)
            row = await decide(bot)
            assert row.result == "applied" and row.target == low


async def test_without_bounds_the_edge_is_found_by_bisection(tmp_path) -> None:
    async with run_simulator(scenario(band_in_message=False), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, FIXED_70) as bot:
            start = bot.ads[0].own.price
            bound = math.ceil(math.log2((start - D("70.00")) / D("0.01"))) + 1  # + the first try
            rows = []
            for _ in range(bound + 3):
                rows.append(await decide(bot))
                sim.advance(10)
            sent = prices_sent(sim)
            refused = [r.target for r in rows if r.code == 187055]
            assert len(sent) <= bound, sent
            assert len(set(refused)) == len(refused)  # never the same refused price twice
            assert bot.ads[0].own.price == D("74.00")  # the edge itself
            assert sim.world.account.ads[bot.ads[0].own.adv_no].price == D("74.00")
            assert rows[-1].result == "held"


async def test_the_learned_band_expires(tmp_path) -> None:
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, FIXED_70) as bot:
            await decide(bot)
            sim.advance(10)
            assert (await decide(bot)).target == D("74.00")
            sim.advance(BAND_TTL + 10)
            row = await decide(bot)  # forgotten: the strategy's price is tried once more
            assert row.code == 187055 and prices_sent(sim)[-1] == D("70.00")


# ----- item 5: hidden ads ---------------------------------------------------------------------

async def test_an_ad_hidden_for_its_open_orders_holds_and_says_why(tmp_path) -> None:
    async with run_simulator(scenario(hide_on_open_orders=True), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, BUY_AD) as bot:
            adv_no = bot.ads[0].own.adv_no
            ad = sim.world.account.ads[adv_no]
            scales = sim.world.account.market_of(ad).scales
            orders = [sim.world.orders.create(ad, scales, sim.clock.now_ms(), total=ad.min_amount)[0]
                      .order.order_no for _ in range(8)]
            await bot.desk.poller.fetch("list_orders")
            await bot.bus.drain()  # the desk hears the list through the bus
            assert bot.desk.open_count(adv_no) == 8
            row = await decide(bot)
            assert row.result == "held" and row.reason.startswith(
                "hidden by the exchange: 8 open orders (a BUY ad is hidden at 8, shown again at 4)")
            assert row.trace["rank"] is None and updates(sim) == []
            assert "hidden by the exchange: 8 open orders" in render(bot, bot.clock.time())
            doc = await build(bot)
            assert doc["ads"][0]["hidden"].startswith("8 open orders")
            for no in orders[:4]:
                sim.world.orders.force(no, 6, sim.clock.now_ms())
            sim.advance(5)
            await bot.desk.poller.fetch("list_orders")
            await bot.bus.drain()  # the desk hears the list through the bus
            row = await decide(bot)
            assert row.trace["rank"] is not None and bot.ads[0].hidden == ""
            assert not row.reason.startswith("hidden")


async def test_an_ad_below_its_minimum_is_hidden_and_the_merchant_alerted(tmp_path) -> None:
    alerts: list[tuple[str, str, str]] = []
    async with run_simulator(scenario(hide_below_min=True), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, BUY_AD) as bot:

            async def alert(kind: str, key: str, text: str) -> None:
                alerts.append((kind, key, text))

            bot.engine.alerts.append(alert)
            adv_no = bot.ads[0].own.adv_no
            sim.world.account.ads[adv_no].surplus = D("1")
            await bot._on_own_ads(await bot.pollers[0].fetch("my_ads"))
            row = await decide(bot)
            assert row.result == "held" and "below the minimum order" in row.reason
            assert [a[0] for a in alerts] == ["ad_hidden"]
            await decide(bot)
            assert len(alerts) == 1  # once per episode


# ----- item 6: emergency hide -----------------------------------------------------------------

HIDE = '\non_unsafe = "hide"\n[ads.params]'


async def test_the_kill_switch_hides_the_ad_once_and_shows_it_again(tmp_path) -> None:
    body = SELL_AD.format(floor="80", ceiling="99").replace("\n[ads.params]", HIDE)
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body, bot="kill_switch = true") as bot:
            adv_no = bot.ads[0].own.adv_no
            for _ in range(3):
                row = await decide(bot)
                assert row.result == "held" and "kill switch" in row.reason
            assert visibility_sent(sim) == [0]
            assert sim.world.account.ads[adv_no].visible is False
            assert sim.world.account.ads[adv_no].status == 1  # still online
            assert "hidden by the bot (visible = 0): the kill switch is on" in render(bot, 0)
            assert (await build(bot))["ads"][0]["hidden_by_bot"] == "the kill switch is on"
            bot.engine.kill_switch = False
            await decide(bot)
            await decide(bot)
            assert visibility_sent(sim) == [0, 1]
            assert sim.world.account.ads[adv_no].visible is True


async def test_hold_is_the_default_and_sends_nothing(tmp_path) -> None:
    body = SELL_AD.format(floor="80", ceiling="99")
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body, bot="kill_switch = true") as bot:
            await decide(bot)
            assert updates(sim) == []


async def test_repricing_lost_hides_the_ad_and_it_comes_back(tmp_path) -> None:
    body = SELL_AD.format(floor="80", ceiling="99").replace("\n[ads.params]", HIDE)
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body) as bot:
            sim.add_fault("http5xx", endpoint="update_ad", count=3)
            row = await decide(bot)  # the update, its reissue and the hide fail (500)
            assert row.result == "unknown"
            assert bot.registry.status("repricing").state is CapState.DISABLED
            assert visibility_sent(sim) == [0] and bot.ads[0].hidden_by_bot == ""
            await bot.engine.check_visibility()  # the next check (what a capability change runs)
            await bot.engine.check_visibility()
            assert visibility_sent(sim, ok=True) == [0]  # once
            assert sim.world.account.ads[bot.ads[0].own.adv_no].visible is False
            assert bot.ads[0].hidden_by_bot == "ad updates are unavailable"
            sim.advance(10)
            await decide(bot)  # updates work again: a fresh decision shows it
            assert visibility_sent(sim, ok=True) == [0, 1]


async def test_stale_market_data_hides_the_ad_and_fresh_data_shows_it(tmp_path) -> None:
    body = SELL_AD.format(floor="80", ceiling="99").replace("\n[ads.params]", HIDE)
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body) as bot:
            await decide(bot)
            sim.advance(bot.engine.market_stale + 1)
            await bot.engine.check_visibility()
            assert visibility_sent(sim) == [0]
            assert "market data is" in bot.ads[0].hidden_by_bot
            await decide(bot)
            assert visibility_sent(sim) == [0, 1]


async def test_a_band_outside_the_guards_holds_and_hides_the_ad(tmp_path) -> None:
    body = SELL_AD.format(floor="60", ceiling="70").replace(
        'strategy = "undercut"', 'strategy = "fixed"').replace(
        '[ads.params]\nstep = "0.01"', 'on_unsafe = "hide"\n[ads.params]\nprice = "65.00"')
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body) as bot:
            assert (await decide(bot)).code == 187055  # 65 refused: the band is 74 to 111
            assert visibility_sent(sim) == []  # a refusal alone is not unsafe: the band is known
            sim.advance(10)
            row = await decide(bot)
            assert row.result == "held" and row.guards == ("band",)
            assert "leaves no price within the floor 60 and ceiling 70" in row.reason
            assert visibility_sent(sim) == [0] and prices_sent(sim) == [D("65.00")]
            assert bot.ads[0].hidden_by_bot == row.reason


async def test_a_dry_run_only_says_it_would_hide(tmp_path) -> None:
    body = SELL_AD.format(floor="80", ceiling="99").replace("\n[ads.params]", HIDE)
    async with run_simulator(scenario(), speed=0, seed=4) as sim:
        async with started(sim, tmp_path, body, bot="kill_switch = true\ndry_run = true") as bot:
            await decide(bot)
            await decide(bot)
            assert updates(sim) == []
            assert bot.ads[0].hidden_by_bot == "dry run, not sent: the kill switch is on"
