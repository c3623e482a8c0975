"""Keeping an ad's available amount at a target from the funding wallet, on the simulator:
the quantity formula of docs/exchange.md §11.8, off by default, nothing sent in a dry run,
and -2008 on the funding wallet leaves the ad alone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.alerts.refill import refill_plan
from bot.app import Bot
from bot.pricing.pollers import OwnAdsPoller
from simulator.app import Simulator, run_simulator
from simulator.scenario import load_scenario
from tests.e2e.support import SELL_AD, started

AD = SELL_AD.format(floor="80", ceiling="99")
REFILL = "[inventory]\nrefill = true\n[inventory.targets]\nsell = 500\n"


def low_stock(surplus: str = "40") -> Any:
    """The calm scenario with the SELL ad nearly sold out (and a funding wallet of 1000 USDT)."""
    calm = load_scenario("calm")
    own = [{"asset": "USDT", "fiat": "RUB", "side": "SELL", "price": "93.40", "surplus": surplus}]
    world = {**calm.world, "own_ads": own, "account": {"funding": {"USDT": "1000"}}}
    return calm.model_copy(update={"world": world})


async def read_own(bot: Bot) -> None:
    """One read of the merchant's ads, through the bus's handlers (the refiller among them)."""
    poller = next(p for p in bot.pollers if isinstance(p, OwnAdsPoller))
    await bot.refiller.on_own_ads(await poller.fetch("my_ads"))


def sim_ad(sim: Simulator) -> Any:
    (ad,) = sim.world.account.ads.values()
    return ad


def test_the_quantity_formula() -> None:
    assert refill_plan(Decimal(1500), Decimal(40), Decimal(500), Decimal(1000)).init_amount \
        == Decimal(1960)  # type: ignore[union-attr]
    capped = refill_plan(Decimal(1500), Decimal(40), Decimal(500), Decimal(100))
    assert capped is not None and capped.added == Decimal(100)
    assert refill_plan(Decimal(1500), Decimal(600), Decimal(500), Decimal(1000)) is None
    assert refill_plan(Decimal(1500), Decimal(40), Decimal(500), Decimal(0)) is None


async def test_an_ad_below_half_its_target_is_refilled_from_the_funding_wallet(tmp_path: Path) -> None:
    async with run_simulator(low_stock(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        async with started(sim, tmp_path, REFILL + AD) as bot:
            ad = sim_ad(sim)
            ad.init_amount = Decimal(1500)  # 1460 traded, 40 left
            await read_own(bot)
            assert ad.surplus == Decimal(500) and ad.init_amount == Decimal(1960)
            assert sim.world.account.funding["USDT"] == Decimal(540)
            (sent,) = [r for r in sim.requests("update_ad")]
            assert "initAmount" in str(sent)
            await read_own(bot)  # at the target now: nothing more
            assert len(sim.requests("update_ad")) == 1


async def test_refill_is_off_by_default(tmp_path: Path) -> None:
    async with run_simulator(low_stock(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        async with started(sim, tmp_path, "[inventory.targets]\nsell = 500\n" + AD) as bot:
            await read_own(bot)
            assert sim.requests("update_ad") == [] and sim.requests("funding_asset") == []


async def test_a_dry_run_sends_nothing(tmp_path: Path) -> None:
    async with run_simulator(low_stock(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        async with started(sim, tmp_path, REFILL + AD, bot="dry_run = true") as bot:
            await read_own(bot)
            assert sim.requests("update_ad") == []
            assert sim_ad(sim).surplus == Decimal(40)


async def test_a_funding_wallet_not_enabled_for_the_key_leaves_the_ad_alone(tmp_path: Path) -> None:
    async with run_simulator(low_stock(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        sim.set_registration("funding_asset", "unregistered")
        async with started(sim, tmp_path, REFILL + AD) as bot:
            await read_own(bot)
            assert sim.requests("update_ad") == []
            assert bot.registry.health["funding_asset"].code == -2008
            bot.refiller.tried.clear()
            await read_own(bot)  # blocked now: not even asked again
            assert len(sim.requests("funding_asset")) == 1


async def test_a_refill_the_exchange_refuses_is_said_and_not_looped(tmp_path: Path) -> None:
    async with run_simulator(low_stock(), speed=0, seed=4) as sim:  # type: ignore[arg-type]
        async with started(sim, tmp_path, REFILL + AD) as bot:
            sim.world.account.funding["USDT"] = Decimal(0)
            await read_own(bot)
            await read_own(bot)  # within REFILL_EVERY: not tried again
            assert sim.requests("update_ad") == [] and len(sim.requests("funding_asset")) == 1
            assert "no USDT to refill" in bot.refiller.said[sim_ad(sim).adv_no]
