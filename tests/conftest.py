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

import gc
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

# The longest runs and their CPU seconds on a 2-core machine (docs/testing.md, "What the
# long runs cost"): how `make test` spreads them over its workers.
LONGEST = {
    "test_chaos_day.py::": 25.0, "test_pricing.py::test_example_edit_budget": 16.0,
    "test_desk_day.py::": 11.5, "test_bans.py::": 7.5, "test_desk_crash.py::test_sigkill": 5.5,
    "test_report_day.py::": 4.5, "test_prometheus.py::": 0.5,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order `make test` (`-n 3 --dist worksteal`) hands the tests out in.

    Worksteal gives each worker a contiguous share of the list (the first third to the first
    worker, ...) and a worker that finishes its share takes the second half of the longest
    queue left, from its end. So each share starts with its part of the longest runs (dealt
    longest first to the share with the least so far, LONGEST) and goes on with the other
    tests, the slow and end-to-end ones first: no worker starts a long run near the end, and
    none gets two of the longest while another gets none. Without workers: longest first.
    """
    def cost(item: pytest.Item) -> float:
        return next((c for name, c in LONGEST.items() if name in item.nodeid), 0.0)

    def group(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is not None:
            return 0
        return 1 if "/e2e/" in item.nodeid or item.nodeid.startswith("e2e/") else 2

    longest = sorted((i for i in items if cost(i)), key=cost, reverse=True)
    rest = sorted((i for i in items if not cost(i)), key=group)  # stable: order kept within
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        items[:] = longest + rest
        return
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for item in longest:
        i = load.index(min(load))
        shares[i].append(item)
        load[i] += cost(item)
    left, at = len(items), 0
    for n, share in enumerate(shares):  # worksteal's split: what is left over the workers left
        size = left // (workers - n)
        take = max(size - len(share), 0)
        share.extend(rest[at:at + take])
        at += take
        left -= len(share)
    shares[-1].extend(rest[at:])
    items[:] = [item for share in shares for item in share]


def pytest_collection_finish(session: pytest.Session) -> None:
    """What is alive once the tests are collected (the project, its libraries, pytest's items)
    lives as long as the run: out of the collector's reach (gc.freeze), a full collection
    looks only at what the tests made. Timed with gc.callbacks over `make test`, runs paired:
    the workers spent 10.2 to 15.4 s of CPU in the collector before, 6.4 to 8.0 s after."""
    gc.collect()
    gc.freeze()


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
