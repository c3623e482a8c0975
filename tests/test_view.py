"""What a person reads: the status document's sentence per capability state, the terminal
view (80 columns, alerts kept across redraws), and `demo` off a terminal (log lines only)."""

from __future__ import annotations

import argparse
import asyncio
from types import SimpleNamespace

import pytest
from loguru import logger

from bot.capabilities.registry import CapabilityStatus
from bot.capabilities.table import CAPABILITIES
from bot.commands.run import load
from bot.health import CapState
from bot.ops import status_api as status
from bot.ops.terminal import WIDTH, Alerts, render
from p2pbot import demo
from simulator.app import run_simulator
from tests.e2e.support import SELL_AD
from tests.e2e.test_engine import decide, started


def fake_bot(states: dict[str, CapState]) -> SimpleNamespace:
    registry = SimpleNamespace(status=lambda name: CapabilityStatus(
        name, states.get(name, CapState.ENABLED), "x", None), halted=lambda: None)
    return SimpleNamespace(cfg=SimpleNamespace(capabilities=SimpleNamespace(essential=())),
                           registry=registry)


@pytest.mark.parametrize("name", ["chat", "orders", "reference_price"])
def test_each_capability_state_has_its_own_sentence(name: str) -> None:
    spec = CAPABILITIES[name]
    said = {}
    for state in CapState:
        (doc,) = [c for c in status.capabilities(fake_bot({name: state})) if c["name"] == name]  # type: ignore[arg-type]
        said[state] = doc["says"]
    assert said[CapState.ENABLED] == spec.does
    assert said[CapState.DEGRADED] == spec.degraded
    assert said[CapState.DISABLED] == spec.without
    assert len(set(said.values())) == 3


def test_degraded_chat_is_not_described_as_lost() -> None:
    (doc,) = [c for c in status.capabilities(fake_bot({"chat": CapState.DEGRADED}))  # type: ignore[arg-type]
              if c["name"] == "chat"]
    assert "incoming messages are read over REST" in doc["says"]
    assert "not read" not in doc["says"]


# --- the terminal view -------------------------------------------------------------------------

LONG = SELL_AD.format(floor="80", ceiling="99").replace('name = "sell"',
                                                       'name = "a-rather-long-ad-name-for-the-view"')


async def test_the_view_fits_80_columns_and_keeps_the_last_alerts(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim:
        async with started(sim, tmp_path, LONG) as bot:
            await decide(bot)
            sim.set_registration("categories", "unregistered")
            await bot.registry.probe("categories")  # an endpoint line with a long message
            alerts = Alerts(keep=3, now=bot.clock.time)
            handler = alerts.attach()
            try:
                for n in range(5):
                    logger.warning("ALERT [test] number {} " + "x" * 120, n)
                logger.info("an info line is not an alert")
            finally:
                logger.remove(handler)
            first = render(bot, bot.clock.time(), "calm", alerts=alerts)
            again = render(bot, bot.clock.time() + 1, "calm", alerts=alerts)
    for screen in (first, again):
        assert max(len(line) for line in screen.splitlines()) <= WIDTH, screen
        assert "last alerts:" in screen
        assert [line.split("number ")[1][:1] for line in screen.splitlines()
                if "ALERT [test]" in line] == ["2", "3", "4"]  # the last three, oldest first
        assert "info line" not in screen
        assert "a-rather-long-" in screen and "categories: unregistered -2008" in screen


async def test_demo_off_a_terminal_prints_no_screen(capsys: pytest.CaptureFixture[str]) -> None:
    stop = asyncio.Event()
    seen = logger.add(lambda m: stop.set() if "status page:" in m.record["message"] else None,
                      level="INFO")
    args = argparse.Namespace(scenario="calm", speed=60.0, duration=None, config=demo.EXAMPLE,
                              no_view=False, web_port=0)
    try:
        await asyncio.wait_for(demo._demo(args, load(demo.EXAMPLE), False, stop), timeout=60)
    finally:
        logger.remove(seen)
    assert stop.is_set()
    out = capsys.readouterr().out
    assert out == ""  # the log lines go to the log; stdout carries no screen dump



async def test_the_view_shows_the_merchants_time_zone_and_a_closed_ad(tmp_path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    hours = LONG + '[ads.schedule]\nwindows = ["mon 00:00-00:01"]\n'
    async with run_simulator("calm", speed=0, seed=4) as sim:
        async with started(sim, tmp_path, hours, bot='timezone = "America/Sao_Paulo"') as bot:
            alerts = Alerts(keep=3, now=bot.clock.time)
            handler = alerts.attach()
            try:
                logger.warning("ALERT [test] late")
            finally:
                logger.remove(handler)
            now = bot.clock.time()
            screen = render(bot, now, "calm", alerts=alerts)
    local = datetime.fromtimestamp(now, ZoneInfo("America/Sao_Paulo"))
    assert screen.splitlines()[0].endswith(
        f"{local:%Y-%m-%d %H:%M:%S} -03 (simulated, America/Sao_Paulo)")
    alert = next(line for line in screen.splitlines() if "ALERT [test] late" in line)
    said_at = datetime.fromtimestamp(alerts.items[0].at, ZoneInfo("America/Sao_Paulo"))
    assert alert.strip().startswith(f"{said_at:%H:%M:%S}")
    assert "  closed: outside its hours (mon 00:00-00:01)" in screen
