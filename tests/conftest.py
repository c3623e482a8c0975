"""Shared fixtures: the simulator (`sim`, `fake_sim`), a raw signed HTTP helper (`sim_http`).

Add fixtures for other parts of the project here; keep each one general.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bot.binance.endpoints import ENDPOINTS
from simulator.app import Simulator, WorldFactory, run_simulator
from simulator.clock import AdvancingClock, VirtualClock
from simulator.errors import SimError, missing
from simulator.scenario import generate_credential

SIM_START_MS = 1_751_796_000_000  # 2025-07-06T10:00:00Z: a whole minute, so weight windows are easy


class FakeWorld:
    """A stand-in world for gateway tests: small answers fixed by the seed and the clock."""

    def __init__(self, cfg: Mapping[str, Any], seed: int, clock: VirtualClock) -> None:
        self.cfg = dict(cfg)
        self.seed = seed
        self.clock = clock
        self.ws_base_url = ""
        self.advanced = 0
        self.calls: list[tuple[str, dict[str, str], Any]] = []

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, seed: int, clock: VirtualClock) -> FakeWorld:
        """The contract's constructor."""
        return cls(cfg, seed, clock)

    def advance(self) -> None:
        """Count the calls."""
        self.advanced += 1

    def price(self) -> Decimal:
        """A reference price that moves once a simulated minute, fixed by the seed."""
        minute = self.clock.now_ms() // 60_000
        return Decimal("92.50") + Decimal(random.Random(f"{self.seed}:{minute}").randint(-50, 50)) / 100

    def handle(self, endpoint: str, query: dict[str, str], body: Any) -> tuple[Any, int | None]:
        """A few endpoints with real-looking answers; the rest echo what they got."""
        self.calls.append((endpoint, query, body))
        if endpoint == "search":
            for name in ("asset", "fiat", "tradeType", "page", "rows"):
                if not isinstance(body, dict) or body.get(name) in (None, ""):
                    raise missing(name)
            return [{"adv": {"advNo": "11111111111111111111", "price": str(self.price())},
                     "advertiser": {"nickName": "alpha"}}], 1
        if endpoint == "order_summary":
            return {"buyerPayedCount": 0, "inAppealCount": 0, "inProcessCount": 0,
                    "tradingCount": 0}, None
        if endpoint == "ad_detail":
            if "adsNo" not in query:
                raise missing("adsNo")
            if query["adsNo"] != "1":
                raise SimError(187022, "Ad not found or not online.")
            return {"advNo": "1", "price": "93.40"}, None
        return {"endpoint": endpoint, "query": query, "body": body}, None

    def add_routes(self, app: web.Application) -> None:
        """One route under /_sim/world/."""

        async def info(request: web.Request) -> web.Response:
            return web.json_response({"fake": True, "advanced": self.advanced})

        app.router.add_get("/_sim/world/info", info)


def world_factory() -> WorldFactory:
    """The real World when simulator/world/core.py exists, else FakeWorld."""
    try:
        from simulator.world.core import World  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name != "simulator.world.core":
            raise
        return FakeWorld
    return World  # type: ignore[no-any-return,unused-ignore]


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


ClientClock = AdvancingClock  # the bot client's Clock on the simulator's virtual clock


@dataclass
class Reply:
    """A raw HTTP reply."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        """The decoded body (None when empty)."""
        return json.loads(self.text) if self.text else None

    @property
    def code(self) -> Any:
        """The body's `code`, if it has one."""
        doc = self.json
        return doc.get("code") if isinstance(doc, dict) else None


def hmac_hex(secret: str, payload: str) -> str:
    """Binance's documented HMAC rule: lowercase hex HMAC-SHA256 of the query as sent."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def encode(params: Mapping[str, Any]) -> str:
    """Percent-encode parameters in order (what gets signed and sent)."""
    return "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in params.items())


class SimHttp:
    """Raw HTTP to a simulator, signed the documented way (not with the bot's signer)."""

    def __init__(self, session: aiohttp.ClientSession, sim: Simulator) -> None:
        self.session = session
        self.sim = sim

    def query(self, params: Mapping[str, Any] | None = None, *, secret: str | None = None,
              timestamp: int | None = None, recv_window: int | None = 5000) -> str:
        """The signed query string: params, recvWindow, timestamp, then signature."""
        full = dict(params or {})
        if recv_window is not None:
            full["recvWindow"] = recv_window
        full["timestamp"] = self.sim.clock.now_ms() if timestamp is None else timestamp
        payload = encode(full)
        return f"{payload}&signature={hmac_hex(secret or self.sim.api_secret or '', payload)}"

    async def send(self, method: str, path: str, raw_query: str = "", *, body: Any = None,
                   api_key: str | None = None, headers: Mapping[str, str | None] | None = None,
                   client_timeout: float = 5.0, data: bytes | None = None) -> Reply:
        """Send exactly this method, path and query."""
        url = f"{self.sim.base_url}{path}" + (f"?{raw_query}" if raw_query else "")
        hdrs = {"clientType": "web", "X-MBX-APIKEY": api_key or self.sim.api_key}
        for name, value in (headers or {}).items():  # None removes a header
            if value is None:
                hdrs.pop(name, None)
            else:
                hdrs[name] = value
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, URL(url, encoded=True), data=data, headers=hdrs,
            timeout=aiohttp.ClientTimeout(total=client_timeout),
        ) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.text())

    async def call(self, endpoint: str, query: Mapping[str, Any] | None = None, *,
                   body: Any = None, **kw: Any) -> Reply:
        """A signed call of a table endpoint (its method and path)."""
        ep = ENDPOINTS[endpoint]
        sign_kw = {k: kw.pop(k) for k in ("secret", "timestamp", "recv_window") if k in kw}
        raw = self.query(query, **sign_kw) if ep.signed else encode(query or {})
        if body is None and ep.method == "POST":
            body = {}
        return await self.send(ep.method, ep.path, raw, body=body, **kw)


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
