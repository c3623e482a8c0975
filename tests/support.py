"""Plain helpers of the whole suite (fixtures are in tests/conftest.py).

Unit tests (fakes, the wire), tests against the simulator over HTTP, the bot on a
simulator with its web server, `python run.py` as a subprocess, the driven clock.
End-to-end helpers that step the simulator are in tests/e2e/support.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import web
from aioresponses import aioresponses
from pydantic import SecretStr
from yarl import URL

from bot.app import Bot
from bot.binance.client import Response, SignedClient
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import BinanceError
from bot.binance.signing import HmacSigner
from bot.clock import Clock
from bot.ops.web import WebServer, attach_web
from config.loader import load_config
from p2pbot.cli import main
from simulator.app import Simulator, WorldFactory
from simulator.clock import AdvancingClock, ScaledClock, VirtualClock
from simulator.errors import SimError, missing
from state.db import Store
from tests import zygote

# --- fakes: a clock and a client for unit tests --------------------------------------------------


class FakeClock:
    """A clock whose sleep moves time instead of waiting."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


Outcome = Response | BinanceError | Callable[[Mapping[str, Any] | None], Any]


class FakeClient:
    """Stands in for SignedClient: answers from a script per endpoint and logs calls."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.answers: dict[str, Outcome] = {}
        self.calls: list[tuple[str, Mapping[str, Any] | None]] = []
        self.used_weight: dict[str, int] = {}
        self.banned_until = 0.0
        self.paused_until = 0.0
        self.rate_limited = 0  # 429s met (the registry's governor learns from them)

    def ok(self, endpoint: str, data: Any = None) -> None:
        self.answers[endpoint] = Response(
            ENDPOINTS[endpoint], 200, {"code": "000000", "data": data, "success": True}
        )

    def fail(self, endpoint: str, exc: BinanceError) -> None:
        self.answers[endpoint] = exc

    async def call(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Response:
        self.calls.append((endpoint, params))
        answer = self.answers.get(endpoint)
        if answer is None:
            self.ok(endpoint, {})
            answer = self.answers[endpoint]
        if isinstance(answer, BinanceError):
            raise answer
        if isinstance(answer, Response):
            return answer
        return answer(params)

    def restore_ban(self, until: float) -> None:
        self.banned_until = max(self.banned_until, until)

    def sent(self, endpoint: str) -> int:
        return sum(1 for name, _ in self.calls if name == endpoint)


# --- the wire: aioresponses, envelopes and signed requests ---------------------------------------


BASE = "https://api.binance.com"
# Binance's documented example key pair (docs/exchange.md §1.1)
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW_MS = 1_700_000_000_000
SAMPLE_ADV_NO = "12345678901234567890"


@dataclass(slots=True)
class Sent:
    """One request exactly as the client handed it to aiohttp."""

    method: str
    url: URL
    headers: dict[str, str]
    body: bytes | None
    timeout: aiohttp.ClientTimeout | None = None

    @property
    def raw_query(self) -> str:
        """The query string as sent, percent-encoding untouched."""
        return self.url.raw_query_string

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The query's (name, raw value) pairs, in order."""
        if not self.raw_query:
            return []
        return [tuple(p.split("=", 1)) for p in self.raw_query.split("&")]  # type: ignore[misc]

    @property
    def keys(self) -> list[str]:
        """The query's parameter names, in order."""
        return [k for k, _ in self.pairs]

    def param(self, name: str) -> str:
        """One query value, decoded once."""
        return unquote(dict(self.pairs)[name])

    def json(self) -> Any:
        """The decoded JSON body."""
        assert self.body is not None
        return json.loads(self.body)


def sent_requests() -> list[Sent]:
    """Every request sent so far in the current `aioresponses` block (it patches `_request`)."""
    mock: Any = aiohttp.client.ClientSession._request
    out = []
    for call in mock.call_args_list:
        _session, method, url = call.args[:3]
        assert isinstance(url, URL), "the client must hand aiohttp a yarl.URL(..., encoded=True)"
        data = call.kwargs.get("data")
        headers = dict(call.kwargs.get("headers") or {})
        out.append(Sent(method, url, headers, data, call.kwargs.get("timeout")))
    return out


def expected_signature(raw_query: str, secret: str = SECRET) -> str:
    """The documented rule: hex HMAC-SHA256 of the query as sent, up to `&signature=`."""
    signed = raw_query.rsplit("&signature=", 1)[0]
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()


def assert_signed(sent: Sent) -> None:
    """recvWindow, timestamp, then signature last; the signature matches the sent bytes."""
    keys = sent.keys
    assert keys[-3:] == ["recvWindow", "timestamp", "signature"], keys
    assert keys.count("signature") == 1
    assert sent.param("timestamp").isdigit()
    assert sent.param("signature") == expected_signature(sent.raw_query)


def path_re(path: str) -> re.Pattern[str]:
    """A URL pattern for `path` with any query."""
    return re.compile(rf"^{re.escape(BASE + path)}(\?.*)?$")


def envelope(data: Any = None, total: int | None = None) -> dict[str, Any]:
    """The success envelope."""
    body: dict[str, Any] = {"code": "000000", "message": "success", "data": data, "success": True}
    if total is not None:
        body["total"] = total
    return body


def ad_json(**overrides: Any) -> dict[str, Any]:
    """An ad as search and listWithPagination give it."""
    ad: dict[str, Any] = {
        "advNo": SAMPLE_ADV_NO, "classify": "mass", "tradeType": "SELL", "asset": "USDT",
        "fiatUnit": "RUB", "fiatSymbol": "₽", "advStatus": 1, "priceType": 1,
        "price": "92.51", "priceFloatingRatio": "0.00000000", "initAmount": "1000.00000000",
        "surplusAmount": "114.00000000", "tradableQuantity": "114.00000000",
        "minSingleTransAmount": "500.00000000", "maxSingleTransAmount": "10546.14000000",
        "dynamicMaxSingleTransAmount": "10546.14000000", "payTimeLimit": 15,
        "tradeMethods": [{"payId": None, "identifier": "TinkoffNew", "tradeMethodName": "Tinkoff",
                          "iconUrlColor": "#FFDD2D"}],
        "remarks": None, "autoReplyMsg": "", "createTime": 1700000000000,
        "advUpdateTime": 1700000100000, "assetScale": 2, "fiatScale": 2, "priceScale": 2,
        "offlineReason": None, "isTradable": True,
    }
    ad.update(overrides)
    return ad


def search_item(**overrides: Any) -> dict[str, Any]:
    """One search row."""
    return {
        "adv": ad_json(**overrides),
        "advertiser": {"userNo": "s0123456789abcdef0123456789abcdef", "nickName": "alpha",
                       "userType": "merchant", "monthOrderCount": 1520,
                       "monthFinishRate": 0.987, "orderCount": 20000, "advConfirmTime": 45,
                       "positiveRate": "0.99", "userGrade": 3, "proMerchant": None},
    }


def make_client(clock: FakeClock | None = None, **kwargs: Any) -> SignedClient:
    """A client with the documented key pair and a fake clock, time already synced (offset 0)."""
    client = SignedClient(
        BASE,
        api_key=SecretStr(KEY),
        signer=HmacSigner(SecretStr(SECRET)),
        clock=clock or FakeClock(NOW_MS / 1000),
        **kwargs,
    )
    client.time_synced = True
    client.synced_at = client.clock.monotonic()
    return client


@contextmanager
def mocked() -> Iterator[aioresponses]:
    """An `aioresponses` block (aiohttp is pinned below 3.14, which aioresponses 0.7.9 cannot mock)."""
    with aioresponses() as m:
        yield m


# --- the simulator over HTTP: worlds, signed raw requests, the client's clock --------------------


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
    """The simulator's real World."""
    from simulator.world.core import World

    return World


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


# --- the bot's client on a simulator --------------------------------------------------------


def sim_client(sim: Simulator, clock: Clock, timeout: float = 10.0, key: str | None = None,
               secret: str | None = None) -> SignedClient:
    """The bot's own SignedClient pointed at the simulator (its first key unless given)."""
    return SignedClient(sim.base_url, api_key=SecretStr(key or sim.api_key),
                        signer=HmacSigner(SecretStr(secret or sim.api_secret or "")), clock=clock,
                        timeout=timeout)


# --- the bot on a simulator with its web server; `run` as a subprocess ---------------------------


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
        try:
            if task is not None:
                await asyncio.wait_for(task, timeout=15)
        finally:  # a bot that did not stop must not leave the store's thread: pytest would hang
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

    proc: zygote.Forked
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
    """Start `python run.py --log-format json run ARGS` (forked from the zygote: tests/zygote.py)
    with its stderr captured."""
    proc = await zygote.spawn("--log-format", "json", "run", *args, cwd=cwd, env=env,
                              stdout=zygote.DEVNULL, stderr=zygote.PIPE)
    daemon = Daemon(proc)
    daemon._reader = asyncio.create_task(daemon._read())
    return daemon


async def run_command(env: dict[str, str], cwd: Path, *args: str,
                      within: float = 30.0) -> tuple[int, str, str]:
    """Run `python run.py ARGS` to the end: (status, stdout, stderr)."""
    proc = await zygote.spawn(*args, cwd=cwd, env=env, stdout=zygote.PIPE, stderr=zygote.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=within)
    except TimeoutError:  # a command that should have ended must not outlive the test
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


EXAMPLE = ROOT / "config" / "example.toml"


# --- the desk layout (issue 17): Accounts laid out by `desk init` and started the way deploy/p2pbot@.service starts them.

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "p2pbot@.service"
HOST_PATHS = ("/etc/p2pbot", "/var/lib/p2pbot", "/run/p2pbot")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(key: str) -> list[str]:
    return re.findall(rf"(?m)^{key}=(.*)$", TEMPLATE.read_text(encoding="utf-8"))


@dataclass
class Instance:
    """One account under the layout: its name, port, web token and environment."""

    name: str
    port: int
    token_file: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        """Its web server."""
        return f"http://127.0.0.1:{self.port}"


def moved(path: str, name: str, host: Path) -> str:
    """A template path for instance `name`, under the test's `host` folder."""
    path = path.replace("%i", name)
    for prefix in HOST_PATHS:
        if path.startswith(prefix):
            return str(host / prefix.strip("/").replace("/", "_")) + path[len(prefix):]
    return path


def lay_out(host: Path, name: str, sim: Simulator, config_edits: dict[str, str]) -> Instance:
    """`desk init NAME`, the key pasted into its credential files, the config edited
    (regex -> replacement), and the environment systemd would give p2pbot@NAME."""
    etc = Path(moved("/etc/p2pbot", name, host))
    port = free_port()
    assert main(["desk", "init", name, "--root", str(etc), "--port", str(port)]) == 0
    creds = etc / name / "credentials"
    (creds / "api_key").write_text(sim.api_key)
    (creds / "api_secret").write_text(sim.api_secret or "")
    config = etc / name / "p2pbot.toml"
    text = config.read_text(encoding="utf-8")
    for pattern, replacement in config_edits.items():
        text, n = re.subn(pattern, replacement, text, count=1, flags=re.M)
        assert n == 1, pattern
    config.write_text(text, encoding="utf-8")
    credentials = host / "credentials" / name  # $CREDENTIALS_DIRECTORY: systemd's private copy
    credentials.mkdir(parents=True, mode=0o700)
    for line in _lines("LoadCredential"):
        cred, _, source = line.partition(":")
        shutil.copyfile(moved(source, name, host), credentials / cred)
        os.chmod(credentials / cred, 0o600)
    env = {k: moved(v, name, host) for k, _, v in (e.partition("=") for e in _lines("Environment"))}
    runtime = Path(env["XDG_RUNTIME_DIR"])
    runtime.mkdir(mode=0o700, exist_ok=True)  # RuntimeDirectory=, shared by the instances
    Path(env["P2PBOT_DB"]).parent.mkdir(parents=True, mode=0o700)  # StateDirectory=p2pbot/%i
    full = daemon_env(sim, host, Path(env["P2PBOT_CONFIG"]), **env,
                      CREDENTIALS_DIRECTORY=str(credentials))
    for secret in ("P2PBOT_API_KEY", "P2PBOT_API_SECRET"):  # from the credentials only
        full.pop(secret)
    return Instance(name, port, creds / "web_token", full)

# --- PromQL metric names (issue 17): Metric names in PromQL expressions, and the names a bot's live /metrics exposes: the

KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                      "and", "or", "unless", "offset", "inf", "nan", "atan2"})
MADE_BY_PROMETHEUS = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:$.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (functions, keywords, labels, durations left out)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub("", text)
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every series name a /metrics text can carry: from its TYPE lines (so a labelled
    counter without samples yet counts), with the suffixes of histograms and summaries."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(maxsplit=3)
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
        elif kind == "summary":
            names.update(f"{name}{s}" for s in ("_sum", "_count"))
        elif kind == "counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
    return names


async def live_metric_names(sim: Simulator, tmp: Path) -> set[str]:
    """The names on the live /metrics of a bot (with its order desk) on the simulator."""
    config = write_config(tmp / "bot.toml", market_interval=2)
    async with bot_on_sim(sim, config, tmp / "bot.db") as r:
        assert r.web is not None
        async with aiohttp.ClientSession() as s, s.get(r.web.url + "/metrics") as resp:
            assert resp.status == 200
            return exported_names(await resp.text()) | MADE_BY_PROMETHEUS

# --- a fake Telegram Bot API on 127.0.0.1 (issue 16): A fake Telegram Bot API on 127.0.0.1: getUpdates (long polling) and sendMessage.

TOKEN = "123456:test-console-token"
HOLD = 1.0  # seconds one getUpdates waits for a message before answering with none


class FakeTelegram:
    """The two Bot API methods the console uses, with what was sent kept for assertions."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[tuple[int, str]] = []
        self.answers: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.polls = 0
        self.polled = asyncio.Event()  # set at every getUpdates (cleared by `next_poll`)
        self.hang_sends = False  # True: sendMessage never answers (a Telegram API gone silent)
        self.release = asyncio.Event()
        self._new = asyncio.Event()
        self._next_id = 1
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/getUpdates", self.get_updates)
        app.router.add_post("/bot{token}/sendMessage", self.send_message)
        return app

    def say(self, chat_id: int, text: str, username: str = "merchant",
            date: int | None = None) -> None:
        """A message from `chat_id` to the bot (sent at `date`, epoch seconds: now by default)."""
        self.updates.append({"update_id": self._next_id, "message": {
            "message_id": self._next_id, "text": text, "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()) if date is None else date,
            "from": {"id": chat_id, "is_bot": False, "username": username}}})
        self._next_id += 1
        self._new.set()

    async def answer(self, within: float = 10.0) -> tuple[int, str]:
        """The bot's next answer (chat id, text)."""
        return await asyncio.wait_for(self.answers.get(), within)

    async def next_poll(self, within: float = 10.0) -> None:
        """Wait for the console's next getUpdates: what it received before is handled."""
        self.polled.clear()
        await asyncio.wait_for(self.polled.wait(), within)

    def _authorised(self, request: web.Request) -> bool:
        return request.match_info["token"] == self.token

    async def get_updates(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        body = await request.json()
        offset = int(body.get("offset") or 0)
        self.polls += 1
        self.polled.set()
        self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed: gone
        pending = [u for u in self.updates if u["update_id"] >= offset]
        if not pending:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), min(HOLD, float(body.get("timeout", 0))))
            except TimeoutError:
                pass
            pending = [u for u in self.updates if u["update_id"] >= offset]
        return web.json_response({"ok": True, "result": pending})

    async def send_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        body = await request.json()
        item = (int(body["chat_id"]), str(body["text"]))
        self.sent.append(item)
        self.answers.put_nowait(item)
        if self.hang_sends:
            await self.release.wait()
        return web.json_response({"ok": True, "result": {"message_id": len(self.sent)}})


@asynccontextmanager
async def fake_telegram(token: str = TOKEN) -> AsyncIterator[FakeTelegram]:
    """The fake served on 127.0.0.1 at a free port (`fake.url`)."""
    fake = FakeTelegram(token)
    runner = web.AppRunner(fake.app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        fake._new.set()  # a getUpdates still held answers now: the shutdown need not wait for it
        await runner.cleanup()


# --- headless Chromium (Debian's package; .ci/run installs it) ---

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def render_dom(url: str, profile: Path) -> str:
    """The DOM of `url` after headless Chromium ran its scripts (5 s of virtual time)."""
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(profile), "PATH": "/usr/bin:/bin"})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()
