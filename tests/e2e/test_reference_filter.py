"""The reference price with a payType filter fails where the unfiltered call works (world switch
`reference_pay_type_fails`): the bot reads it without the filter; a reference that cannot be
read at all is kept, marked stale with its age, and the strategy sees both."""

from __future__ import annotations

import asyncio

import pytest

from simulator.app import run_simulator
from simulator.scenario import parse_scenario
from tests.e2e.support import BUY_AD, running_bot, when, write_config

WORLD = {"markets": [{"volatility": "0", "competitors": 6, "bots": 0, "decoys": 0,
                      "churn_per_hour": 0, "reference_pay_type_fails": True}],
         "orders": {"rate_per_hour": 0}}


def _scenario() -> object:
    return parse_scenario({"sim": {"seed": 5, "speed": 100}, "keys": [{"label": "main"}],
                           "world": WORLD})


@pytest.mark.slow
async def test_a_failing_pay_type_filter_falls_back_and_a_lost_reference_goes_stale(
        tmp_path) -> None:
    config = write_config(tmp_path, BUY_AD, bot='reference_interval = 30\n'
                                               'reference_pay_type = "Tinkoff"')
    async with run_simulator(_scenario()) as sim:  # type: ignore[arg-type]
        async with running_bot(sim, config, tmp_path / "r.db") as bot:
            fresh = when(bot, lambda ad, row: ad.reference is not None
                         and ad.reference.source == "exchange" and not ad.reference.stale)
            await asyncio.wait_for(fresh.wait(), timeout=20)
            sent = [r["body"].get("payType") for r in sim.requests("reference_price")]
            assert sent[:2] == ["Tinkoff", None]  # refused with the filter, read without it
            assert bot.registry.route("reference_price") == "exchange"

            sim.add_fault("http5xx", endpoint="reference_price", duration=3600)
            stale = when(bot, lambda ad, row: ad.reference is not None and ad.reference.stale
                         and ad.reference.age >= 30)
            await asyncio.wait_for(stale.wait(), timeout=20)
            ad = next(a for a in bot.ads if a.reference is not None and a.reference.stale)
            assert ad.last is not None and ad.last.trace["reference"]["stale"] is True
