"""The suite's shared fixtures: the simulator (`sim`, `fast_sim`, `fake_sim`), a client
session and raw signed HTTP (`sim_http`), and a private runtime folder for key locks.

Plain helpers (classes, functions, constants) are in tests/support.py; the end-to-end
fixtures in tests/e2e/conftest.py. Add a fixture here when tests of several layers use it.
"""

from __future__ import annotations

import sys

# The compiled-module cache on, whatever the environment says (PYTHONDONTWRITEBYTECODE):
# without it every run compiles the whole project again, pytest rewrites the asserts of
# every test module again (4.8 s of the edit loop's 7 s start on a 2-core machine), and
# each `run` process a test starts compiles the bot again. The caches are __pycache__
# folders, which git ignores.
sys.dont_write_bytecode = False

import os

# The log's default sink at INFO, the bot's own default level, before anything imports loguru:
# a simulated desk day logs 10,700 DEBUG lines (one per request) that pytest captures and
# shows only when a test fails; formatting them was a twentieth of the day's CPU. Sinks a
# test adds keep their own level. `LOGURU_LEVEL=DEBUG .venv/bin/python -m pytest ...` brings
# them back.
os.environ.setdefault("LOGURU_LEVEL", "INFO")
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from simulator.app import Simulator, WorldFactory, run_simulator
from simulator.scenario import generate_credential
from tests.support import SIM_START_MS, FakeWorld, SimHttp, world_factory


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long runs first (`slow`, then the end-to-end tests), the rest after, each group in
    its own order: with `-n 3 --dist worksteal` a worker that finishes its share takes
    the others' remaining short tests, so no worker starts a 30 s run near the end."""
    def weight(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is not None:
            return 0
        return 1 if "/e2e/" in item.nodeid or item.nodeid.startswith("e2e/") else 2

    items.sort(key=weight)  # stable: the order within each group is kept


def _calm(speed: float, world: WorldFactory | None = None) -> Any:
    """The calm scenario with a generated key and a fixed start."""
    return run_simulator("calm", speed=speed, api_key=generate_credential(),
                         api_secret=generate_credential(), start_ms=SIM_START_MS,
                         world_factory=world or world_factory())


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The calm scenario at speed 0 (only sim.advance() moves time), with a generated key."""
    async with _calm(0) as running:
        yield running


@pytest.fixture
async def fast_sim() -> AsyncIterator[Simulator]:
    """The calm scenario, 20x real time, a generated key."""
    async with _calm(20) as running:
        yield running


@pytest.fixture
async def fake_sim() -> AsyncIterator[Simulator]:
    """Like `sim`, but always with FakeWorld: for tests of the gateway alone."""
    async with _calm(0, FakeWorld) as running:
        yield running


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sim_http(http_session: aiohttp.ClientSession, fake_sim: Simulator) -> SimHttp:
    """Raw signed HTTP against `fake_sim`."""
    return SimHttp(http_session, fake_sim)


@pytest.fixture(autouse=True, scope="session")
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Key locks (bot.ops.lock) of the daemons tests start go to a folder of this session alone.

    Another test run on the machine, or the user's own bot, may hold a lock on the
    same key (scenario keys come from a seed): neither must see this run's.
    """
    folder = tmp_path_factory.mktemp("runtime")
    folder.chmod(0o700)
    before = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = before
