"""Finding the configured ads among many own ads: every page is read, the ones not found are
named once at start, and no market is searched for an ad that does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger

from bot.pricing.pollers import MarketPoller, OwnAdsPoller
from simulator.app import run_simulator
from simulator.scenario import load_scenario
from tests.e2e.test_engine import started

MANY = 250
FAR = f"{12345678900000000000 + 230}"  # the 231st own ad: beyond ten pages of twenty
GUARDS = '[ads.params]\nprice = "93.00"\n[ads.guards]\nfloor = "80"\nceiling = "99"\n'
ADS = f"""
[[ads]]
name = "far"
adv_no = "{FAR}"
strategy = "fixed"
{GUARDS}
[[ads]]
name = "gone"
adv_no = "99999999999999999999"
strategy = "fixed"
{GUARDS}
[[ads]]
asset = "USDT"
fiat = "RUB"
side = "BUY"
strategy = "fixed"
{GUARDS}
"""


def many_ads() -> object:
    """The calm scenario with 250 SELL ads of the merchant (offline but the far one)."""
    calm = load_scenario("calm")
    own = [{"asset": "USDT", "fiat": "RUB", "side": "SELL", "price": "93.40",
            "adv_no": f"{12345678900000000000 + i}", "status": 1 if i == 230 else 3}
           for i in range(MANY)]
    return calm.model_copy(update={"world": {**calm.world, "own_ads": own}})


@contextmanager
def warnings() -> Iterator[list[str]]:
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        yield said
    finally:
        logger.remove(sink)


async def test_every_page_of_250_own_ads_is_read(tmp_path) -> None:
    async with run_simulator(many_ads(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        async with started(sim, tmp_path, ADS) as bot:
            far = bot.ads[0]
            assert far.own is not None and far.own.adv_no == FAR
            assert len(sim.requests("my_ads")) == 13  # 250 ads, 20 a page


async def test_the_ads_not_found_are_named_once_at_start(tmp_path) -> None:
    async with run_simulator(many_ads(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        with warnings() as said:
            async with started(sim, tmp_path, ADS) as bot:
                (missing,) = [m for m in said if "not found among your" in m]
                assert f"not found among your {MANY} ads" in missing
                assert "gone (adv_no 99999999999999999999)" in missing
                assert "USDT/RUB BUY" in missing and "far" not in missing
                poller = next(p for p in bot.pollers if isinstance(p, OwnAdsPoller))
                for _ in range(3):  # the next reads say nothing new
                    await bot._on_own_ads(await poller.fetch("my_ads"))
        assert len([m for m in said if "not found" in m or "matches" in m]) == 1


async def test_no_market_is_searched_for_an_ad_that_does_not_exist(tmp_path) -> None:
    async with run_simulator(many_ads(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        async with started(sim, tmp_path, ADS) as bot:
            gone, buy = bot.ads[1:]
            assert gone.own is None and buy.own is None
            # only the found ad's market: its rivals (SELL ads) come from a BUY search
            markets = [p for p in bot.pollers if isinstance(p, MarketPoller)]
            assert [(p.search_side, p.name) for p in markets] == [
                ("BUY", "market USDT/RUB SELL ads")]
