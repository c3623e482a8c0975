"""Schedules on the simulator's stepped clock: a simulated day takes an ad out and back.

The bot runs whole (pollers, engine, order desk, the schedule keeper) in simulated time
(tests.e2e.support); the simulator's record of requests and its ads' status say what the
exchange saw. START_MS is Sunday 2025-07-06 07:00 in Sao Paulo (10:00 UTC).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.chat.session import ChatTimings
from config.loader import load_config
from simulator.app import Simulator, run_simulator
from tests.e2e.support import BUY_ADV as BUY_AD
from tests.e2e.support import SELL_ADV as SELL_AD
from tests.e2e.support import START_MS, Life, Lives, Stepper, loop_watch, scenario

pytestmark = pytest.mark.slow  # each test steps a simulated day


HOUR_MS = 3600_000
TIMINGS = ChatTimings(keepalive=3600, silence=3600, ack=120, rest_poll=600)


def config(*, bot: str = "", schedule: str = "", ad_schedule: str = "") -> str:
    """One scheduled SELL ad; slow pollers and no recording (the day is about the hours, not
    the market: the recorder's flush every 30 s was a quarter of the loop's wake-ups)."""
    return f"""
[bot]
timezone = "America/Sao_Paulo"
market_interval = 600
reference_interval = 600
my_ads_interval = 300
orders_interval = 600
{bot}

[recording]
enabled = false

[capabilities]
probe_first = 60
probe_cap = 600
probe_jitter = 0

{schedule}

[[ads]]
name = "sell"
adv_no = "{SELL_AD}"
strategy = "undercut"
[ads.params]
step = "0.01"
[ads.guards]
floor = "90"
ceiling = "99"
max_updates = 1000
{ad_schedule}
"""


DAILY = '[schedule]\nwindows = ["daily 08:00-20:00"]\n'


def status_of(sim: Simulator, adv_no: str = SELL_AD) -> int:
    return sim.world.account.ads[adv_no].status


@dataclass
class Desk:
    """The stepped simulator from START_MS, the bot's config file and its lives."""

    sim: Simulator
    path: Path
    lives: Lives
    stepper: Stepper

    async def to_hours(self, hours: float) -> None:
        """Move to `hours` after START_MS."""
        await self.stepper.to(START_MS + int(hours * HOUR_MS))

    async def reload(self, life: Life, toml: str | None = None) -> list[str]:
        """Write `toml` (None: the file as it is) and reload the running bot with it."""
        if toml is not None:
            self.path.write_text(toml)
        assert life.bot is not None
        changes: list[str] = await life.bot.reload(load_config(self.path))
        return changes


@asynccontextmanager
async def desk(tmp_path: Path, toml: str, setup: Any = None) -> AsyncIterator[Desk]:
    """A stepped simulator (after `setup(sim)`) and the bot's lives on `toml`, unstarted."""
    async with run_simulator(scenario(speed=0, three_ads=False), start_ms=START_MS,
                             stepped=True) as sim:
        if setup is not None:
            setup(sim)
        path = tmp_path / "bot.toml"
        path.write_text(toml)
        lives = Lives(sim, path, tmp_path / "bot.db", 7, TIMINGS)
        with loop_watch(lives):
            yield Desk(sim, path, lives, Stepper(sim))


async def day(tmp_path: Path, toml: str, checks: list[tuple[float, Any]],
              setup: Any = None) -> tuple[Simulator, Lives]:
    """Run the bot from START_MS; at each (hours, check) move there and call check(sim, bot)."""
    async with desk(tmp_path, toml, setup) as d:
        life = d.lives.start()
        for hours, check in checks:
            await d.to_hours(hours)
            assert life.error is None, life.error
            check(d.sim, life.bot)
        await d.lives.stop()
    return d.sim, d.lives


def status_changes(sim: Simulator) -> list[tuple[float, int]]:
    """(hours after the start, advStatus) of every updateStatus the bot sent."""
    return [((r["time_ms"] - START_MS) / HOUR_MS, r["body"]["advStatus"])
            for r in sim.requests("update_ad_status")]


async def test_a_day_takes_the_ad_offline_at_night_and_back_in_the_morning(
        tmp_path: Path, inline_store: None) -> None:
    def offline(sim: Simulator, bot: Any) -> None:
        assert status_of(sim) == 3
        assert bot.ads[0].closed.startswith("outside its hours (daily 08:00-20:00); back ")

    def online(sim: Simulator, bot: Any) -> None:
        assert status_of(sim) == 1 and bot.ads[0].closed == "" and bot.ads[0].online

    sim, _ = await day(tmp_path, config(schedule=DAILY), [
        (0.5, offline),  # 07:30 local: before the hours, taken out at start
        (1.01, online),  # 08:00 local
        (12.5, online),  # 19:30
        (13.01, offline),  # 20:00
        (24.5, offline),  # 07:30 the next morning
        (25.01, online),  # 08:00 the next morning
    ])
    changes = status_changes(sim)
    assert [s for _, s in changes] == [3, 1, 3, 1], changes
    assert [round(h, 2) for h, _ in changes[1:]] == [1.0, 13.0, 25.0], changes
    assert status_of(sim, BUY_AD) == 1  # an ad without hours is left alone
    # no price update while the ad was out: every update of it falls inside its hours
    for r in sim.requests("update_ad"):
        hours = ((r["time_ms"] - START_MS) / HOUR_MS) % 24
        assert 1.0 <= hours < 13.0, r


async def test_a_restart_in_the_night_still_brings_the_ad_back(tmp_path: Path,
                                                               inline_store: None) -> None:
    async with desk(tmp_path, config(schedule=DAILY)) as d:
        d.lives.start()
        await d.to_hours(0.5)
        assert status_of(d.sim) == 3
        d.lives.kill("in the night")
        await d.lives.bury()
        life = d.lives.start()  # the new life sees an offline ad: it took it out itself
        await d.to_hours(1.01)
        assert life.error is None, life.error
        assert status_of(d.sim) == 1
        await d.lives.stop()


async def test_an_ad_taken_offline_by_hand_is_left_offline(tmp_path: Path,
                                                           inline_store: None) -> None:
    def by_hand(sim: Simulator) -> None:
        sim.world.account.ads[SELL_AD].status = 3

    sim, _ = await day(tmp_path, config(schedule=DAILY), [
        (0.5, lambda sim, bot: None), (2.0, lambda sim, bot: None)], setup=by_hand)
    assert status_changes(sim) == []
    assert status_of(sim) == 3


async def test_hide_keeps_the_ad_online_and_out_of_search(tmp_path: Path,
                                                          inline_store: None) -> None:
    def hidden(sim: Simulator, bot: Any) -> None:
        ad = sim.world.account.ads[SELL_AD]
        assert ad.status == 1 and not ad.visible

    def shown(sim: Simulator, bot: Any) -> None:
        ad = sim.world.account.ads[SELL_AD]
        assert ad.status == 1 and ad.visible

    sim, _ = await day(tmp_path, config(schedule=DAILY, ad_schedule='[ads.schedule]\noutside = "hide"'),
                       [(0.5, hidden), (1.01, shown), (13.01, hidden)])
    assert status_changes(sim) == []
    visible = [r["body"]["visible"] for r in sim.requests("update_ad") if "visible" in r["body"]]
    assert visible == [0, 1, 0]


async def test_a_dry_run_day_sends_nothing(tmp_path: Path, inline_store: None) -> None:
    def held(sim: Simulator, bot: Any) -> None:
        assert status_of(sim) == 1  # nothing was sent
        assert bot.ads[0].closed  # but the engine holds it
        assert bot.ads[0].last is None or "outside its hours" in bot.ads[0].last.reason

    sim, _ = await day(tmp_path, config(bot="dry_run = true", schedule=DAILY),
                       [(0.5, held), (1.01, lambda sim, bot: None), (13.5, held)])
    assert status_changes(sim) == []
    assert sim.requests("update_ad") == []


async def test_business_hours_close_and_open_the_business_and_bring_the_ads_back(
        tmp_path: Path, inline_store: None) -> None:
    def closed(sim: Simulator, bot: Any) -> None:
        assert sim.world.account.business_status == 2
        assert status_of(sim) == 3 and status_of(sim, BUY_AD) == 3  # the exchange closed both

    def opened(sim: Simulator, bot: Any) -> None:
        assert sim.world.account.business_status == 1
        assert status_of(sim) == 1  # brought back by the bot: opening alone would not
        assert status_of(sim, BUY_AD) == 3  # not the bot's to bring back: it has no hours
        assert bot.registry.status("merchant_state").state == "enabled"

    sim, _ = await day(tmp_path, config(schedule=DAILY + "business = true\n"),
                       [(0.5, closed), (1.01, opened), (13.01, closed)])
    starts = [r for r in sim.requests("start_business")]
    closes = [r for r in sim.requests("close_business")]
    assert len(starts) == 1 and len(closes) == 2


async def test_without_the_merchant_endpoints_the_ads_are_switched_one_by_one(
        tmp_path: Path, inline_store: None) -> None:
    def unregistered(sim: Simulator) -> None:
        for name in ("merchant_detail", "start_business", "close_business"):
            sim.set_registration(name, "unregistered")

    def offline(sim: Simulator, bot: Any) -> None:
        assert status_of(sim) == 3 and status_of(sim, BUY_AD) == 1
        assert sim.world.account.business_status == 1
        assert bot.registry.status("merchant_state").state == "disabled"

    def online(sim: Simulator, bot: Any) -> None:
        assert status_of(sim) == 1

    sim, _ = await day(tmp_path, config(schedule=DAILY + "business = true\n"),
                       [(0.5, offline), (1.01, online), (13.01, offline)], setup=unregistered)
    assert [s for _, s in status_changes(sim)] == [3, 1, 3]
    closes = sim.requests("close_business")
    assert closes and all(r["code"] == -2008 for r in closes)  # tried, refused, never looped


async def test_a_hidden_ad_taken_offline_with_the_business_comes_back_online_and_shown(
        tmp_path: Path, inline_store: None) -> None:
    def out(sim: Simulator, bot: Any) -> None:
        ad = sim.world.account.ads[SELL_AD]
        assert ad.status == 3 and not ad.visible  # hidden by the bot, offline by the exchange

    def back(sim: Simulator, bot: Any) -> None:
        ad = sim.world.account.ads[SELL_AD]
        assert ad.status == 1 and ad.visible

    sim, _ = await day(tmp_path, config(schedule=DAILY + 'business = true\noutside = "hide"\n'),
                       [(0.5, out), (1.01, back), (13.01, out), (25.01, back)])
    assert [s for _, s in status_changes(sim)] == [1, 1]


async def test_a_reload_takes_new_hours_and_dry_run_at_once_and_releases_an_ad_without_hours(
        tmp_path: Path, inline_store: None) -> None:
    """[schedule] and [bot] dry_run changes take effect at the reload, not at a restart; an ad
    whose hours are removed while the keeper has it out comes back and is priced again."""
    async with desk(tmp_path, config(schedule=DAILY)) as d:
        sim = d.sim
        minutes = 30.0  # 07:30 local, outside 08:00-20:00

        async def reload(toml: str) -> list[str]:  # then a minute on
            nonlocal minutes
            changes = await d.reload(life, toml)
            minutes += 1
            await d.to_hours(minutes / 60)
            return changes

        life = d.lives.start()
        await d.to_hours(minutes / 60)
        assert status_of(sim) == 3
        sell = life.bot.ads[0]  # type: ignore[union-attr]
        assert sell.closed

        changes = await reload(config(schedule='[schedule]\nwindows = ["daily 06:00-20:00"]\n'))
        assert "[schedule] taken" in changes
        assert status_of(sim) == 1 and sell.closed == "" and sell.online  # open now

        await reload(config(schedule=DAILY))
        assert status_of(sim) == 3 and sell.closed

        await reload(config())  # the hours are gone: the keeper brings back what it took out
        assert status_of(sim) == 1 and sell.closed == ""
        sent = len(sim.requests("update_ad_status"))

        await reload(config(bot="dry_run = true", schedule=DAILY))
        assert status_of(sim) == 1 and sell.closed  # held, and nothing sent
        assert len(sim.requests("update_ad_status")) == sent

        await reload(config(schedule=DAILY))  # live again: the keeper sends
        assert status_of(sim) == 3 and sell.closed
        assert life.error is None, life.error

        # the hours removed while the bot is stopped: the next start brings the ad back
        await d.lives.stop()
        d.path.write_text(config())
        life = d.lives.start()
        minutes += 1
        await d.to_hours(minutes / 60)
        assert life.error is None, life.error
        assert status_of(sim) == 1 and life.bot is not None and life.bot.ads[0].closed == ""
        updates = len(sim.requests("update_ad"))
        await d.to_hours((minutes + 12) / 60)  # the next market read (market_interval 600): priced
        assert len(sim.requests("update_ad")) > updates
        await d.lives.stop()


async def test_business_switched_off_by_a_reload_opens_the_business_the_bot_closed(
        tmp_path: Path, inline_store: None) -> None:
    async with desk(tmp_path, config(schedule=DAILY + "business = true\n")) as d:
        sim = d.sim
        life = d.lives.start()
        await d.to_hours(0.5)
        assert sim.world.account.business_status == 2 and status_of(sim) == 3
        closes = len(sim.requests("close_business"))
        await d.reload(life)  # the same file: nothing sent again
        await d.to_hours(0.5 + 0.5 / 60)
        assert len(sim.requests("close_business")) == closes
        await d.reload(life, config(schedule=DAILY))
        await d.to_hours(0.5 + 1 / 60)
        assert life.error is None, life.error
        assert sim.world.account.business_status == 1  # opened: no hours of its own now
        assert status_of(sim) == 3  # the ad is still outside its own hours
        await d.to_hours(1.01)
        assert status_of(sim) == 1  # and comes back at 08:00 (the business closed it)
        await d.lives.stop()
    assert len(sim.requests("start_business")) == 1
