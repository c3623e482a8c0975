"""The simulator's aiohttp app, and `run_simulator`: how tests, `demo` and benchmarks start it.

    async with run_simulator("calm", speed=0) as sim:
        client = SignedClient(sim.base_url, ...)
        sim.advance(60)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from pydantic import ValidationError

from simulator.clock import VirtualClock
from simulator.control import Control
from simulator.gateway import Gateway, WorldLike
from simulator.scenario import Scenario, ScenarioError, describe_errors, load_scenario

HOST = "127.0.0.1"
TICK_SECONDS = 0.1  # real seconds between background world.advance() calls
SHUTDOWN_SECONDS = 2.0


class WorldFactory(Protocol):
    """Builds the world (simulator.world.core.World satisfies this)."""

    def from_config(self, cfg: Mapping[str, Any], *, seed: int, clock: VirtualClock) -> WorldLike:
        """A world from the scenario's [world] table."""
        ...


def default_world_factory() -> WorldFactory:
    """simulator.world.core.World, imported only when a simulator starts."""
    from simulator.world.core import World

    return World


def start_ms_of(scenario: Scenario) -> int | None:
    """The scenario's fixed start time in epoch ms, if it names one."""
    start = scenario.sim.start
    if start is None:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp() * 1000)


@dataclass
class Simulator:
    """A running simulator: where it listens, its clock and world, and helpers for tests."""

    base_url: str
    port: int
    clock: VirtualClock
    world: WorldLike
    scenario: Scenario
    gateway: Gateway
    control: Control

    @property
    def api_key(self) -> str:
        """The first key's API key."""
        return self.gateway.keys.first.api_key

    @property
    def api_secret(self) -> str | None:
        """The first key's HMAC secret (None for an Ed25519 key)."""
        return self.gateway.keys.first.spec.secret

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the scenario started."""
        return self.gateway.elapsed()

    def requests(self, endpoint: str | None = None, *, since: int | None = None,
                 after: int | None = None) -> list[dict[str, Any]]:
        """The recorded exchange requests (see GET /_sim/requests)."""
        return self.control.requests(endpoint, since, after)

    def set_registration(self, endpoint: str, behaviour: Any, *, key: str | None = None,
                         **params: Any) -> dict[str, Any]:
        """Set how an endpoint answers for a key: 'registered', 'unregistered', 'flapping'
        (params: until=, p=, every=), or a fixed answer (-1022, 'http500', 'timeout', 'empty');
        None clears the override."""
        if params and isinstance(behaviour, str):
            behaviour = {"mode": behaviour, **params}
        return self.control.set_registration(endpoint, behaviour, key)

    def set_timeline(self, phases: list[Any], *, key: str | None = None) -> dict[str, Any]:
        """Replace a key's timeline of phases."""
        return self.control.set_timeline(phases, key)

    def add_fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        """Add a fault rule (see simulator.scenario.FaultSpec for the fields)."""
        return self.control.add_fault({"kind": kind, **spec})

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.control.clear_faults()

    def advance(self, seconds: float) -> int:
        """Move the virtual clock forward and bring the world up to it; returns the new ms."""
        return self.control.move(seconds)

    def state(self) -> dict[str, Any]:
        """See GET /_sim/state."""
        return self.control.state()


def build_app(gateway: Gateway, control: Control) -> web.Application:
    """The aiohttp app: /_sim/ control routes, the world's routes, then the exchange catch-all."""
    app = web.Application()
    control.add_routes(app)
    gateway.world.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", gateway.handle)
    return app


def prepare(
    scenario: Scenario, *, seed: int | None = None, speed: float | None = None,
    start_ms: int | None = None, world_factory: WorldFactory | None = None,
    stepped: bool = False,
) -> Gateway:
    """Clock, world and gateway for a scenario (overrides as run_simulator takes them)."""
    seed = scenario.sim.seed if seed is None else seed
    speed = 0 if stepped else scenario.sim.speed if speed is None else speed
    start = start_ms if start_ms is not None else start_ms_of(scenario)
    clock = VirtualClock(start_ms=start, speed=speed, stepped=stepped)
    factory = world_factory or default_world_factory()
    try:
        world = factory.from_config(dict(scenario.world), seed=seed, clock=clock)
    except ValidationError as exc:
        raise ScenarioError(describe_errors(exc, scenario.source, prefix="world.")) from None
    return Gateway(scenario, clock=clock, world=world, start_ms=clock.now_ms(), seed=seed)


async def _tick(gateway: Gateway) -> None:
    """Keep the world moving while nobody polls (orders arrive, chat pushes)."""
    last = -1
    while True:
        await asyncio.sleep(TICK_SECONDS)
        now = gateway.clock.now_ms()
        if now != last:
            gateway.advance_world()
            last = now


@contextlib.asynccontextmanager
async def run_simulator(
    scenario: str | Path | Scenario = "calm",
    *,
    port: int = 0,
    speed: float | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    seed: int | None = None,
    start_ms: int | None = None,
    world_factory: WorldFactory | None = None,
    stepped: bool = False,
) -> AsyncIterator[Simulator]:
    """Run the simulator on 127.0.0.1 (port 0: any free port) for the duration of the block.

    `stepped=True`: the clock stands still (speed 0) and only `sim.advance()` moves it;
    what sleeps on it (SteppedClock, the gateway's latency and held requests) wakes in
    deadline order as it moves, and nothing moves the world in the background.
    """
    spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if api_key or api_secret:
        spec = spec.with_first_key(api_key, api_secret)
    gateway = prepare(spec, seed=seed, speed=speed, start_ms=start_ms, world_factory=world_factory,
                      stepped=stepped)
    control = Control(gateway)
    runner = web.AppRunner(build_app(gateway, control), access_log=None,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    ticker: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        gateway.world.ws_base_url = f"ws://{HOST}:{bound}/chat"
        if not stepped:  # stepped: advance() brings the world along, at the test's steps
            ticker = asyncio.create_task(_tick(gateway), name="sim-world-tick")
        yield Simulator(f"http://{HOST}:{bound}", bound, gateway.clock, gateway.world, spec,
                        gateway, control)
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        gateway.close()
        await runner.cleanup()
