"""Helpers for the operations tests: a bot with its web server on the simulator, and
`python run.py run` as a subprocess whose log lines the test can wait for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.app import Bot
from bot.binance.client import SignedClient
from bot.ops.web import WebServer, attach_web
from config.loader import load_config
from simulator.app import Simulator
from simulator.clock import ScaledClock
from state.db import Store
from tests.e2e.helpers import sim_client

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "run.py"

# one SELL ad that reprices quickly (real-time runs use it too)
CONFIG = """
[bot]
market_interval = {market_interval}
reference_interval = 30
my_ads_interval = 60
orders_interval = 5
{bot}

[web]
enabled = {web}
port = {port}

[[ads]]
name = "sell-usdt"
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "{strategy}"
[ads.params]
{params}
[ads.filters]
min_completion_rate = "0"
decoy_max_amount = "1000"
[ads.guards]
floor = "80.00"
ceiling = "99.00"
max_updates = 1000
min_interval = 0
"""

UNDERCUT = 'step = "0.01"'


def write_config(path: Path, *, strategy: str = "undercut", params: str = UNDERCUT,
                 market_interval: float = 1.0, web: bool = False, port: int = 8080,
                 bot: str = "", tail: str = "") -> Path:
    """A strategy file with the one SELL ad (and `tail`: more tables)."""
    path.write_text(CONFIG.format(strategy=strategy, params=params, bot=bot,
                                  market_interval=market_interval, web=str(web).lower(),
                                  port=port) + tail, encoding="utf-8")
    return path


@dataclass
class Running:
    """A bot running in the test's loop, with its web server."""

    bot: Bot
    web: WebServer | None
    store: Store
    client: SignedClient
    stop: asyncio.Event


@asynccontextmanager
async def bot_on_sim(sim: Simulator, config: Path, db: Path, *, web: bool = True,
                     token: str | None = None) -> AsyncIterator[Running]:
    """The real Bot on the simulator (simulated time), its web server on 127.0.0.1:<any>."""
    clock = ScaledClock(sim.clock)
    store = await Store.open(db)
    client = sim_client(sim, clock)
    bot = Bot(load_config(config), client, store, clock=clock)
    server = None
    if web:
        settings = type("S", (), {"web_token": SecretStr(token) if token else None})()
        server = attach_web(bot, settings, port=0)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        await bot.start()
        task = asyncio.create_task(bot.run(stop))
        if server is not None:
            await asyncio.wait_for(server.started.wait(), timeout=10)
        yield Running(bot, server, store, client, stop)
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, timeout=15)
        await client.close()
        await store.close()


def decided(bot: Bot, predicate: Callable[[Any, Any], bool] = lambda ad, row: True) -> asyncio.Event:
    """An event set at the first decision (ad, row) for which `predicate` holds."""
    done = asyncio.Event()
    bot.engine.observers.append(lambda ad, row: done.set() if predicate(ad, row) else None)
    return done


def outcome(bot: Bot, endpoint: str, result: str) -> asyncio.Event:
    """An event set when a request to `endpoint` ends with `result` ("ok", "-2008", ...)."""
    done = asyncio.Event()
    bot.registry.observers.append(
        lambda ep, out, _lat: done.set() if (ep, out) == (endpoint, result) else None)
    return done


async def capability_state(bot: Bot, name: str, state: str, within: float = 10.0) -> None:
    """Wait (on the registry's change event) until capability `name` is in `state`."""
    async def reached() -> None:
        while str(bot.registry.status(name).state) != state:
            await bot.registry.wait_for_change()

    await asyncio.wait_for(reached(), within)


# --- the daemon as a subprocess ------------------------------------------------------------


def daemon_env(sim: Simulator, tmp: Path, config: Path, **extra: str) -> dict[str, str]:
    """The environment of `run` against the simulator (no .env is read: cwd is `tmp`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("P2PBOT_", "NOTIFY_",
                                                                     "WATCHDOG_", "CREDENTIALS_"))}
    env.update({"P2PBOT_BASE_URL": sim.base_url, "P2PBOT_API_KEY": sim.api_key,
                "P2PBOT_API_SECRET": sim.api_secret or "", "P2PBOT_DB": str(tmp / "bot.db"),
                "P2PBOT_CONFIG": str(config), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@dataclass
class Daemon:
    """`python run.py ... run` running; its JSON log records, and events on log messages."""

    proc: asyncio.subprocess.Process
    records: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    _waiters: list[tuple[Callable[[str], bool], asyncio.Event]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    def seen(self, test: Callable[[str], bool]) -> asyncio.Event:
        """An event set once a log message satisfies `test` (also one already logged)."""
        done = asyncio.Event()
        if any(test(r["message"]) for r in self.records):
            done.set()
        self._waiters.append((test, done))
        return done

    def saw(self, text: str) -> asyncio.Event:
        """An event set once a log message contains `text`."""
        return self.seen(lambda m: text in m)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            text = line.decode(errors="replace")
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                record = json.loads(text)
                self.records.append(record)
                message = record["message"]
                for test, event in self._waiters:
                    if test(message):
                        event.set()

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal."""
        self.proc.send_signal(sig)

    async def wait(self, within: float = 15.0) -> int:
        """The exit status (the reader is finished too)."""
        code = await asyncio.wait_for(self.proc.wait(), timeout=within)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=5)
        return code

    async def close(self) -> None:
        """Kill the process if it still runs (a failed test must not leave it behind)."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def messages(self) -> list[str]:
        """Every log message so far."""
        return [r["message"] for r in self.records]


async def start_daemon(env: dict[str, str], cwd: Path, *args: str) -> Daemon:
    """Start `python run.py --log-format json run ARGS` with stdout and stderr captured."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RUN_PY), "--log-format", "json", "run", *args, cwd=str(cwd), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    daemon = Daemon(proc)
    daemon._reader = asyncio.create_task(daemon._read())
    return daemon


async def run_command(env: dict[str, str], cwd: Path, *args: str,
                      within: float = 30.0) -> tuple[int, str, str]:
    """Run `python run.py ARGS` to the end: (status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RUN_PY), *args, cwd=str(cwd), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=within)
    except TimeoutError:  # a command that should have ended must not outlive the test
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
