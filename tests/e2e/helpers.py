"""Building the real bot against a running simulator, for end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.binance.client import Clock, SignedClient
from bot.binance.signing import HmacSigner
from bot.capabilities import CapabilityRegistry, ProbeConfig
from simulator.app import Simulator
from state.db import Store
from state.endpoints import EndpointLog
from state.meta import Meta


def sim_client(sim: Simulator, clock: Clock, timeout: float = 10.0, key: str | None = None,
               secret: str | None = None) -> SignedClient:
    """The bot's own SignedClient pointed at the simulator (its first key unless given)."""
    return SignedClient(sim.base_url, api_key=SecretStr(key or sim.api_key),
                        signer=HmacSigner(SecretStr(secret or sim.api_secret or "")), clock=clock,
                        timeout=timeout)


@asynccontextmanager
async def registry_on(
    sim: Simulator, clock: Clock, db: Path, request_timeout: float = 10.0, **kw: Any
) -> AsyncIterator[tuple[CapabilityRegistry, Store]]:
    """A capability registry with a store, on the simulator."""
    store = await Store.open(db)
    client = sim_client(sim, clock, request_timeout)
    try:
        config = kw.pop("config", ProbeConfig(jitter=0.0))
        yield CapabilityRegistry(client, log=EndpointLog(store), meta=Meta(store), config=config,
                                 **kw), store
    finally:
        await client.close()
        await store.close()


SELL_AD = """
[[ads]]
name = "sell"
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "undercut"
[ads.params]
step = "0.01"
[ads.filters]
min_completion_rate = "0"
decoy_max_amount = "1000"
[ads.guards]
floor = "{floor}"
ceiling = "{ceiling}"
max_updates = 1000
min_interval = 5
"""

BUY_AD = """
[[ads]]
name = "buy"
asset = "USDT"
fiat = "RUB"
side = "BUY"
strategy = "follow_reference"
[ads.params]
ratio = "99.5"
[ads.guards]
floor = "80"
ceiling = "95"
max_updates = 1000
"""


def write_config(tmp: Path, body: str, bot: str = "") -> Path:
    """A TOML file in `tmp` with `[bot]` settings and the given ads."""
    path = tmp / "bot.toml"
    path.write_text(f"[bot]\nmarket_interval = 10\n{bot}\n{body}", encoding="utf-8")
    return path


@asynccontextmanager
async def running_bot(sim: Simulator, config: Path, db: Path) -> AsyncIterator[Any]:
    """The real Bot on the simulator, in simulated time (ScaledClock), until the block ends."""
    from tests.ops import bot_on_sim

    async with bot_on_sim(sim, config, db, web=False) as running:
        yield running.bot


def after(bot: Any, seconds: float) -> Any:
    """An event set once a decision is made `seconds` of simulated time after now."""
    import asyncio

    done = asyncio.Event()
    until = bot.clock.time() + seconds
    bot.engine.observers.append(lambda ad, row: done.set() if row.at >= until else None)
    return done


def when(bot: Any, predicate: Any) -> Any:
    """An event set at the first decision (ad, row) for which `predicate` is true."""
    import asyncio

    done = asyncio.Event()
    if any(ad.last is not None and predicate(ad, ad.last) for ad in bot.ads):
        done.set()  # it happened already
    bot.engine.observers.append(lambda ad, row: done.set() if predicate(ad, row) else None)
    return done


@asynccontextmanager
async def started(sim: Simulator, tmp: Path, body: str, bot: str = "",
                  request_timeout: float = 10.0) -> AsyncIterator[Any]:
    """A started (not running) Bot on a frozen simulator: the test drives every step.

    `request_timeout` is aiohttp's, in real seconds: long enough for a loaded machine (a page
    of 250 own ads took over 2 s there); tests of a held request pass a short one."""
    from bot.app import Bot
    from config.loader import load_config
    from tests.conftest import ClientClock

    clock = ClientClock(sim.clock)
    store = await Store.open(tmp / "started.db")
    client = sim_client(sim, clock, timeout=request_timeout)
    try:
        b = Bot(load_config(write_config(tmp, body, bot)), client, store, clock=clock)
        await b.start()
        yield b
    finally:
        await client.close()
        await store.close()


FLOATING_BUY = """
[[ads]]
name = "buy"
asset = "USDT"
fiat = "RUB"
side = "BUY"
strategy = "follow_reference"
[ads.params]
ratio = "101.5"
[ads.guards]
floor = "{floor}"
ceiling = "{ceiling}"
max_updates = {max_updates}
min_interval = {min_interval}
"""
