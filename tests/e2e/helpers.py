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


def sim_client(sim: Simulator, clock: Clock, timeout: float = 10.0) -> SignedClient:
    """The bot's own SignedClient pointed at the simulator."""
    assert sim.api_secret is not None
    return SignedClient(sim.base_url, api_key=SecretStr(sim.api_key),
                        signer=HmacSigner(SecretStr(sim.api_secret)), clock=clock, timeout=timeout)


@asynccontextmanager
async def registry_on(
    sim: Simulator, clock: Clock, db: Path, timeout: float = 10.0, **kw: Any
) -> AsyncIterator[tuple[CapabilityRegistry, Store]]:
    """A capability registry with a store, on the simulator."""
    store = await Store.open(db)
    client = sim_client(sim, clock, timeout)
    try:
        config = kw.pop("config", ProbeConfig(jitter=0.0))
        yield CapabilityRegistry(client, log=EndpointLog(store), meta=Meta(store), config=config,
                                 **kw), store
    finally:
        await client.close()
        await store.close()
