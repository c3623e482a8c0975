"""Scenario files load, validate strictly, run, and repeat themselves for the same seed; the `sim` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator import cli
from simulator.app import run_simulator
from simulator.clock import VirtualClock
from simulator.faults import FaultBook
from simulator.scenario import (
    FaultSpec,
    FaultsSpec,
    ScenarioError,
    UnknownScenario,
    available,
    load_scenario,
)
from tests.support import SIM_START_MS, FakeWorld, SimHttp, world_factory

ROOT = Path(__file__).resolve().parent.parent
SEARCH = {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}


def test_the_four_scenarios_exist() -> None:
    assert {"calm", "key_rollout", "price_war", "stormy"} <= set(available())


@pytest.mark.parametrize("name", available())
async def test_each_scenario_loads_and_runs(name: str, http_session: aiohttp.ClientSession) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name and scenario.sim.description
    async with run_simulator(name, speed=0, start_ms=SIM_START_MS, world_factory=FakeWorld) as sim:
        world = sim.world
        assert isinstance(world, FakeWorld)
        assert world.cfg == scenario.world and world.seed == scenario.sim.seed
        assert world.ws_base_url == f"ws://127.0.0.1:{sim.port}/chat"
        http = SimHttp(http_session, sim)
        assert (await http.send("GET", "/api/v3/time")).json == {"serverTime": SIM_START_MS}
        assert sim.state()["scenario"] == name


def test_unknown_scenario_lists_the_available_ones() -> None:
    with pytest.raises(UnknownScenario) as exc:
        load_scenario("sunny")
    assert "sunny" in str(exc.value) and "key_rollout" in str(exc.value)


def test_invalid_scenario_names_file_key_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[sim]\nseed = 1\n[[keys]]\nlabel = "desk"\n[keys.registration]\nserch = "unregistered"\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    text = str(exc.value)
    assert str(path) in text and "keys[0].registration.serch (key 'desk')" in text
    path.write_text('[sim]\nseed = 1\nsped = 2\n[[keys]]\nlabel = "desk"\n')
    with pytest.raises(ScenarioError, match=r"sim\.sped: Extra inputs are not permitted"):
        load_scenario(path)


def test_stormy_has_every_fault_kind_and_draws_the_same_for_a_seed() -> None:
    rules = load_scenario("stormy").faults.rules
    assert {r.kind for r in rules} == {"latency", "http5xx", "timeout", "drop", "http429",
                                       "skew", "malformed", "html403"}

    def draws(seed: int) -> list[tuple[str, ...]]:
        book = FaultBook(list(rules), seed, hold_seconds=1)
        return [tuple(book.draw("search", t * 0.5).kinds) for t in range(4000)]

    first = draws(13)
    assert first == draws(13) and first != draws(14)
    seen = Counter(kind for kinds in first for kind in kinds)
    assert set(seen) == {r.kind for r in rules}
    assert seen["latency"] > seen["http5xx"] > seen["html403"] > 0


async def _answers(http_session: aiohttp.ClientSession, scenario: Any, seed: int) -> list[tuple[int, str]]:
    async with run_simulator(scenario, speed=0, seed=seed, start_ms=SIM_START_MS,
                             world_factory=FakeWorld) as sim:
        http = SimHttp(http_session, sim)
        out = []
        for i in range(24):
            reply = await (http.call("search", body=SEARCH) if i % 2 else http.call("categories"))
            out.append((reply.status, reply.text))
            sim.advance(11)  # stays inside key_rollout's first phase
        return out


@pytest.mark.parametrize("name", ["calm", "key_rollout", "price_war", "noisy"])
async def test_same_seed_same_answers(name: str, http_session: aiohttp.ClientSession) -> None:
    if name == "noisy":  # stormy's flapping, with reply faults at high rates
        base = load_scenario("stormy")
        rules = [FaultSpec(kind="http5xx", rate=0.2), FaultSpec(kind="html403", rate=0.1),
                 FaultSpec(kind="malformed", rate=0.15)]
        scenario: Any = base.model_copy(update={"faults": FaultsSpec(rules=rules)})
    else:
        scenario = load_scenario(name)
    first = await _answers(http_session, scenario, seed=21)
    assert first == await _answers(http_session, scenario, seed=21)
    if name == "noisy":
        assert first != await _answers(http_session, scenario, seed=22)
        assert len({status for status, _ in first}) >= 3


async def test_credentials_can_be_given(http_session: aiohttp.ClientSession) -> None:
    async with run_simulator("calm", speed=0, api_key="K" * 64, api_secret="s3cret",
                             world_factory=FakeWorld) as sim:
        assert (sim.api_key, sim.api_secret) == ("K" * 64, "s3cret")
        assert (await SimHttp(http_session, sim).call("order_summary")).status == 200


class SignallingWorld(FakeWorld):
    """A FakeWorld that says when it was advanced."""

    def __init__(self, cfg: Any, seed: int, clock: VirtualClock) -> None:
        super().__init__(cfg, seed, clock)
        self.moved = asyncio.Event()

    def advance(self) -> None:
        super().advance()
        self.moved.set()


async def test_the_world_moves_while_nobody_polls() -> None:
    async with run_simulator("calm", speed=0, world_factory=SignallingWorld) as sim:
        world = sim.world
        assert isinstance(world, SignallingWorld)
        await asyncio.wait_for(world.moved.wait(), 2)
        world.moved.clear()
        sim.clock.advance(5)  # the clock alone, no request and no sim.advance()
        await asyncio.wait_for(world.moved.wait(), 2)


# --- the `sim` command ----------------------------------------------------------------


def _args(**kw: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args([f"--{k}={v}" for k, v in kw.items()])


def test_cli_unknown_scenario_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(_args(scenario="sunny")) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'sunny'" in err and "calm" in err and "stormy" in err


def test_cli_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P2PBOT_API_KEY", "k")
    monkeypatch.setenv("P2PBOT_API_SECRET", "s")
    assert cli._credentials() == ("k", "s", False)
    monkeypatch.delenv("P2PBOT_API_SECRET")
    key, secret, generated = cli._credentials()
    assert key == "k" and len(secret) == 64 and generated


@pytest.mark.slow
async def test_cli_serves_until_interrupted() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run.py"), "sim", "--scenario", "calm", "--port", "0",
        "--speed", "0", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        lines = []
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "the simulator exited before it was ready"
            lines.append(line)
            if line.startswith("simulator ready: http://127.0.0.1:"):
                break
        assert any(line.strip().startswith("P2PBOT_API_SECRET=") for line in lines)
        base_url = line.split()[2]
        async with aiohttp.ClientSession() as session, session.get(f"{base_url}/api/v3/time") as resp:
            assert resp.status == 200 and "serverTime" in await resp.json()
    finally:
        proc.send_signal(signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 20)
    assert rc == 0


async def test_invalid_world_table_names_the_file(tmp_path: Path) -> None:
    factory = world_factory()
    if factory is FakeWorld:
        pytest.skip("simulator/world/core.py is not there: nothing validates [world]")
    path = tmp_path / "w.toml"
    path.write_text('[[keys]]\nlabel = "a"\n[world]\n[[world.markets]]\nvolatilty = "1"\n')
    with pytest.raises(ScenarioError, match=r"w\.toml: world\.markets\[0\]\.volatilty"):
        async with run_simulator(path, speed=0, world_factory=factory):
            pass
