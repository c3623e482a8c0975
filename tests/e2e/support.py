"""Plain helpers of the end-to-end tests (fixtures are in tests/e2e/conftest.py).

The real bot against the simulator: the pricing side (ad tables `SELL_AD`, `BUY_AD`, a
running or a started bot), the order desk (scenarios with the own ads `SELL_ADV`,
`BUY_ADV`, `SELL_ADV_2`, configs, `desk_bot`), and the stepped clock. A new test of the
running bot should use `stepped_bot`: the same run on a slow or a fast machine
(docs/testing.md).

The stepped clock:

- `settle()` runs the event loop until nothing is left to do before the clock moves:
  no callback ready, no socket with something to read or write. The store runs inline
  (`inline_sqlite`), so no thread can still be working when the loop looks quiet.
- `Stepper` moves the simulator's clock from one sleeper's deadline to the next (at most
  one world step at a time), settling in between: the same seed gives the same run on a
  slow or a fast machine, and a simulated day takes seconds.
- `Lives` runs one Bot after another on the same store file; `kill()` ends the current
  one the way SIGKILL ends a process (see its docstring).
- `stepped_bot` runs one bot; the test steps time with `run.until` / `run.wait` until what
  it waits for happens, bounded in simulated seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import aiosqlite
from multidict import CIMultiDict
from pydantic import SecretStr

from bot.app import Bot
from bot.binance.client import SignedClient
from bot.binance.errors import ExchangeUnavailable
from bot.binance.signing import HmacSigner
from bot.capabilities.registry import CapabilityRegistry
from bot.capabilities.table import ProbeConfig
from bot.chat.session import ChatTimings
from bot.clock import Clock, within
from bot.ops.web import attach_web
from config.loader import load_config
from simulator.app import Simulator, run_simulator
from simulator.clock import ScaledClock, SteppedClock
from simulator.gateway import Incoming, Reply
from simulator.scenario import Scenario, parse_scenario
from state.db import Store
from state.endpoints import EndpointLog
from state.meta import Meta
from tests.support import ClientClock, bot_on_sim, sim_client

# --- the pricing side: ad tables, a running or a started bot -------------------------------------


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


# --- the order desk: scenarios, configs, a running bot, waits ------------------------------------


START_MS = 1_751_796_000_000
SELL_ADV, BUY_ADV, SELL_ADV_2 = "11000000000000000001", "11000000000000000002", "11000000000000000003"

GREETING = "Hello {nickname}! Order {order_no}: {amount} {asset} for {total} {fiat}, pay with {pay_method}."
REACTIONS = {"new": GREETING, "buyer_paid": "Payment noted for {order_no}, checking.",
             "completed": "Thank you, {nickname}!", "cancelled": "Order {order_no} cancelled.",
             "appeal": "We see the appeal on {order_no}."}


def config_text(*, orders_interval: float = 15, expiry_minutes: int = 30, stuck: int = 15,
                probe_first: float = 5, chat: dict[str, str] | None = None) -> str:
    """A bot TOML with every reaction's chat message, notifications on new/paid/appeal/stuck."""
    lines = [f"[bot]\norders_interval = {orders_interval}",
             f"[capabilities]\nprobe_first = {probe_first}\nprobe_cap = {max(probe_first, 60)}\n"
             "probe_jitter = 0",
             f"[orders]\nstuck_after_minutes = {stuck}"]
    for status, text in (REACTIONS if chat is None else chat).items():
        notify = "true" if status in ("new", "buyer_paid", "appeal") else "false"
        lines.append(f'[orders.on.{status}]\nchat = "{text}"\nnotify = {notify}')
    lines.append("[orders.on.stuck]\nnotify = true")
    lines.append(f"[chat]\noutbox_expiry_minutes = {expiry_minutes}")
    return "\n\n".join(lines) + "\n"


def scenario(*, speed: float, seed: int = 7, orders: dict[str, Any] | None = None,
             chat: dict[str, Any] | None = None, three_ads: bool = True,
             realism: dict[str, Any] | None = None) -> Scenario:
    """A quiet market with two or three own ads (several ads take orders)."""
    ads = [{"side": "SELL", "price": "93.00", "adv_no": SELL_ADV, "surplus": "1000000", "max": "20000"},
           {"side": "BUY", "price_type": "floating", "ratio": "99", "adv_no": BUY_ADV,
            "surplus": "1000000", "max": "20000"}]
    if three_ads:
        ads.append({"side": "SELL", "price": "93.20", "adv_no": SELL_ADV_2, "surplus": "1000000",
                    "max": "20000", "pay_methods": ["SBP"]})
    world = {
        "markets": [{"volatility": "0", "competitors": 4, "bots": 0, "decoys": 0,
                     "churn_per_hour": 0}],
        "own_ads": ads,
        "orders": {"rate_per_hour": 0, "rank_decay": "1", **(orders or {})},
        "chat": {"credential_ttl_seconds": 86400, "ping_interval_seconds": 0, **(chat or {})},
    }
    return parse_scenario({"sim": {"seed": seed, "speed": speed}, "keys": [{"label": "main"}],
                           "world": world, "realism": realism or {}})


@dataclass
class DeskRun:
    """A started bot on a simulator, and what the test needs around it."""

    bot: Bot
    sim: Simulator
    store: Store
    stop: asyncio.Event
    task: asyncio.Task[None]
    events: list[Any]

    @property
    def desk(self) -> Any:
        """The order desk."""
        return self.bot.desk


@contextlib.asynccontextmanager
async def desk_bot(sim: Simulator, tmp_path: Path, toml: str, *,
                      timings: ChatTimings | None = None,
                      collect: tuple[type, ...] = ()) -> AsyncIterator[DeskRun]:
    """The real Bot in simulated time (ScaledClock) against `sim`, with the order desk attached.

    Events of the `collect` types published on the bot's bus land in `DeskRun.events`.
    """
    path = tmp_path / "bot.toml"
    path.write_text(toml)
    clock = ScaledClock(sim.clock)
    store = await Store.open(tmp_path / "bot.db")
    client = SignedClient(sim.base_url, api_key=SecretStr(sim.api_key),
                          signer=HmacSigner(SecretStr(sim.api_secret or "")), clock=clock,
                          recv_window=60000)
    try:
        bot = Bot(load_config(path), client, store, clock=clock)
        await bot.start()
        bot.desk.chat.set_timings(timings or ChatTimings(keepalive=20, silence=10, ack=60))
        events: list[Any] = []
        if collect:
            async def keep(event: Any) -> None:
                events.append(event)

            bot.bus.subscribe(collect, keep, name="test")
        stop = asyncio.Event()
        task = asyncio.create_task(bot.run(stop))
        running = DeskRun(bot, sim, store, stop, task, events)
        try:
            yield running
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)
    finally:
        await client.close()
        await store.close()


async def until(cond: Callable[[], Any], limit: float = 10.0, what: str = "") -> Any:
    """Wait (real seconds at most) for `cond()` (sync or async) to be truthy; its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        value = cond()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit:g} s waiting for {what or cond}")
        # a condition without an event of its own (another process's store, the simulator's
        # clock): looked at again every 20 ms, returning as soon as it holds
        await asyncio.sleep(0.02)  # real-time ok


async def sim_get(sim: Simulator, path: str) -> Any:
    """GET a /_sim/ control route."""
    async with aiohttp.ClientSession() as session, session.get(sim.base_url + path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def sim_post(sim: Simulator, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to a /_sim/ control route."""
    async with aiohttp.ClientSession() as session, \
            session.post(sim.base_url + path, json=body or {}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def accepted_sent(sim: Simulator) -> list[dict[str, Any]]:
    """The messages the simulator accepted from the merchant (GET /_sim/world/chat/sent)."""
    return [s for s in (await sim_get(sim, "/_sim/world/chat/sent"))["sent"] if s["accepted"]]


async def open_order(sim: Simulator, adv_no: str = SELL_ADV) -> str:
    """Open an order on an own ad now; its number."""
    return str((await sim_post(sim, "/_sim/world/orders", {"adv_no": adv_no}))["order"]["orderNumber"])


# --- the stepped clock: settle, step, kill, a stepped bot ----------------------------------------


STEP_MS = 1000  # the world moves in one-second steps: the clock never jumps further at once
QUIET_CHECKS = 1  # quiet looks at the loop in a row before it counts as settled
MAX_SPINS = 200_000  # loop turns one settle() may take before it gives up (a busy loop)

LIFE: contextvars.ContextVar[int | None] = contextvars.ContextVar("bot_life", default=None)


# --- the store without its thread -------------------------------------------------------------


class InlineConnection(aiosqlite.Connection):
    """aiosqlite run in the loop's own thread: a call runs at once and does not yield (no
    thread hop), so the loop sees every effect when it next runs; the kills land at the
    commit hooks (`on_commit`) and at the awaits that do yield. `kill()` closes the SQLite
    connection without a commit: SQLite rolls back the open transaction, as after SIGKILL."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, 64)
        self.killed = False
        self.on_commit: Callable[[str], None] | None = None  # "before" / "after"

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread is started

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.killed or self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        commit = bool(args) and args[0] == "COMMIT" and self.on_commit is not None
        if commit:
            self.on_commit("before")  # type: ignore[misc]
            if self.killed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        result = partial(fn, *args, **kwargs)()
        if commit:
            self.on_commit("after")  # type: ignore[misc]
        return result

    async def close(self) -> None:
        if self._connection is not None:
            conn, self._connection = self._connection, None
            conn.close()

    def kill(self) -> None:
        """Close now, committing nothing (an open transaction is rolled back by SQLite)."""
        self.killed = True
        if self._connection is not None:
            conn, self._connection = self._connection, None
            conn.close()


def inline_sqlite(database: str | Path, **kwargs: Any) -> InlineConnection:
    """Stands in for aiosqlite.connect (monkeypatched by the test)."""
    return InlineConnection(lambda: sqlite3.connect(str(database), **kwargs))


# --- the loop and the clock ---------------------------------------------------------------------


def _busy(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the loop has work before the clock moves: a ready callback, or a socket event
    (a peek: the selector is level-triggered, so looking consumes nothing)."""
    if loop._ready:  # type: ignore[attr-defined]
        return True
    # epoll itself, not selectors' wrapper (which maps every event back to its key): a peek
    return bool(loop._selector._selector.poll(0))  # type: ignore[attr-defined]


async def settle() -> None:
    """Run the loop until it is quiet (see _busy) QUIET_CHECKS times in a row."""
    loop = asyncio.get_running_loop()
    quiet = 0
    for _ in range(MAX_SPINS):
        await asyncio.sleep(0)
        quiet = 0 if _busy(loop) else quiet + 1
        if quiet >= QUIET_CHECKS:
            return
    raise AssertionError("the event loop never went quiet: something spins without sleeping")


@dataclass
class Stepper:
    """Moves a stepped simulator's clock to `until`, waking sleepers in deadline order."""

    sim: Simulator
    steps: int = 0

    @property
    def now_ms(self) -> int:
        """The simulator's time."""
        return self.sim.clock.now_ms()

    async def to(self, until_ms: int) -> None:
        """Settle, move to the next deadline (a sleeper's, a world step or `until_ms`), repeat."""
        clock = self.sim.clock
        loop = asyncio.get_running_loop()
        while True:
            await settle()
            while True:  # world steps that wake nobody need no settling
                now = clock.now_ms()
                if now >= until_ms:
                    break
                target = min(now + STEP_MS, until_ms)
                wake = clock.next_wake_ms()
                if wake is not None and wake < target:
                    target = max(wake, now + 1)
                self.sim.advance((target - now + 0.5) / 1000)
                self.steps += 1
                # after a settle, only the step can have made work, and a step only schedules
                # callbacks (sleepers woken, frames queued): no socket was written meanwhile
                if loop._ready:  # type: ignore[attr-defined]
                    break
            if clock.now_ms() >= until_ms:
                await settle()
                return


# --- a bot that can be killed -----------------------------------------------------------------


class SteppedClient(SignedClient):
    """The bot's client on a stepped simulator: its request timeout on the bot's clock
    (aiohttp's own is real time, which a stepped clock leaves behind), and its requests handed
    to the simulator's gateway in-process (`Gateway.exchange`: the same answers, faults,
    limits and request log, without a socket, an HTTP parser or aiohttp on either side; the
    bot's HTTP path itself is tested on sockets elsewhere, see docs/testing.md). `dead`:
    nothing more leaves it.

    The gateway serves each request in a task of its own, outside the caller's context, as a
    server does: a kill cancels the bot's wait for the answer, never the exchange's work.
    Requests in flight together use a connection each, one that is free again once its
    answer has been read, as aiohttp's pool does (the simulator's 429 rule tells connections
    apart); the connection of a request dropped, refused unread or given up is gone."""

    dead = False

    def __init__(self, sim: Simulator, **kwargs: Any) -> None:
        super().__init__(sim.base_url, **kwargs)
        self.gateway = sim.gateway
        self._idle: list[str] = []  # connections free for the next request
        self._opened = 0

    async def _send_once(self, ep: Any, params: Any) -> Any:
        if self.dead:
            raise asyncio.CancelledError
        try:
            return await within(self.clock, self.timeout, super()._send_once(ep, params))
        except TimeoutError:
            raise ExchangeUnavailable(f"no answer within {self.timeout:g} s: {ep.method} "
                                      f"{self.base_url}{ep.path}", endpoint=ep.name) from None

    async def _wire(self, ep: Any, req: Any) -> tuple[int, dict[str, str], bytes]:
        path, _, query = req.url[len(self.base_url):].partition("?")
        headers = CIMultiDict(self._headers(ep, req.body))
        incoming = Incoming(req.method, path, query, headers, req.body or b"",
                            headers.get("Content-Type", "application/octet-stream"), "127.0.0.1")
        if self._idle:
            conn = self._idle.pop()
        else:
            self._opened += 1
            conn = f"in-process:{self._opened}"
        served = asyncio.get_running_loop().create_task(
            self.gateway.exchange(incoming, conn), context=contextvars.Context())
        served.add_done_callback(_retrieved)
        reply = await asyncio.shield(served)  # given up (a timeout, a kill): the connection too
        if reply is None:
            raise aiohttp.ServerDisconnectedError()
        if len(reply.body) > self.max_response_bytes:  # refused unread: the connection dropped
            raise self.too_large(ep, reply.status, f"it declares {len(reply.body)} bytes")
        self._idle.append(conn)  # the answer was read: the connection is free again
        headers_out = {"Content-Type": "application/octet-stream", **reply.headers,
                       "Content-Length": str(len(reply.body))}
        return reply.status, headers_out, reply.body


def _retrieved(served: asyncio.Task[Reply | None]) -> None:
    """An answer nobody waits for any more (the bot gave up): its error is not an orphan."""
    if not served.cancelled():
        served.exception()


@dataclass
class Life:
    """One run of the bot: from its start to its kill."""

    number: int
    store: Store | None = None
    client: SteppedClient | None = None
    bot: Bot | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    dead: bool = False
    error: BaseException | None = None  # how the life ended when no kill ended it


def task_factory(lives: Lives) -> Callable[..., asyncio.Task[Any]]:
    """Notes every task created inside a life (the context variable LIFE says which)."""

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, context: Any = None) -> Any:
        task = asyncio.Task(coro, loop=loop, context=context)
        number = context.get(LIFE) if context is not None else LIFE.get()
        if number is not None:
            lives.note(number, task)
        return task

    return factory


@contextmanager
def loop_watch(lives: Lives) -> Iterator[None]:
    """The task factory that tells which life a task belongs to, while the block runs."""
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    loop.set_task_factory(task_factory(lives))
    try:
        yield
    finally:
        loop.set_task_factory(before)


@dataclass
class Lives:
    """The bot started, killed and started again on one store file, on a stepped simulator."""

    sim: Simulator
    config: Path
    db: Path
    seed: int
    timings: ChatTimings
    on_life: Callable[[Life], Any] = lambda life: None  # called once a life's store is open
    current: Life | None = None
    kills: list[tuple[int, str]] = field(default_factory=list)  # (time ms, what)
    _count: int = 0
    _all: dict[int, Life] = field(default_factory=dict)

    def note(self, number: int, task: asyncio.Task[Any]) -> None:
        """A task of life `number`."""
        life = self._all.get(number)
        if life is not None and not life.dead:
            life.tasks.add(task)
            task.add_done_callback(life.tasks.discard)
        elif life is not None:  # born after the kill (a finally block): it dies at once
            task.cancel()

    def start(self) -> Life:
        """Start the next life (its start-up runs in the loop as the test steps the clock)."""
        self._count += 1
        life = Life(self._count)
        self._all[life.number] = life
        self.current = life
        main = asyncio.get_running_loop().create_task(self._live(life), name=f"life-{life.number}")
        life.tasks.add(main)
        main.add_done_callback(life.tasks.discard)
        return life

    async def _live(self, life: Life) -> None:
        LIFE.set(life.number)
        try:
            await self._run(life)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            if life.dead:
                return  # what a killed life did on its way out (a commit refused, ...)
            life.error = exc
            raise

    async def _run(self, life: Life) -> None:
        clock = SteppedClock(self.sim.clock)
        life.store = await Store.open(self.db)
        self.on_life(life)
        life.client = SteppedClient(
            self.sim, api_key=SecretStr(self.sim.api_key),
            signer=HmacSigner(SecretStr(self.sim.api_secret or "")), clock=clock, timeout=10.0,
            rng=random.Random(f"{self.seed}:client:{life.number}"))
        bot = life.bot = Bot(load_config(self.config), life.client, life.store, clock=clock)
        bot.registry.rng = random.Random(f"{self.seed}:registry:{life.number}")
        await bot.start()
        chat = bot.desk.chat
        chat.rng = random.Random(f"{self.seed}:chat:{life.number}")
        chat.set_timings(self.timings)
        ids = random.Random(f"{self.seed}:uuid:{life.number}")
        bot.desk.make_uuid = lambda: str(uuid.UUID(int=ids.getrandbits(128), version=4))
        await bot.run(asyncio.Event())  # runs until killed (or stopped by the test)

    def kill(self, what: str) -> None:
        """End the current life as SIGKILL would, now, from wherever this is called.

        What crosses the process boundary stops at once: the store connection is closed
        without a commit (SQLite rolls back the open transaction), the client sends nothing
        more, the chat socket is cut (no close frame). Then every task of the life is
        cancelled: its finally blocks run, but they can no longer reach the store, the
        exchange or the socket, so they change nothing anyone can see.
        """
        life = self.current
        if life is None or life.dead:
            return
        life.dead = True
        self.kills.append((self.sim.clock.now_ms(), what))
        if life.store is not None and isinstance(life.store._db, InlineConnection):
            life.store._db.kill()
        if life.client is not None:
            life.client.dead = True
        ws = getattr(getattr(getattr(life.bot, "desk", None), "chat", None), "_ws", None)
        if ws is not None:
            ws.transport.abort()
        for task in list(life.tasks):
            task.cancel()

    async def bury(self) -> None:
        """Wait until the killed life's tasks are gone, and drop its HTTP session."""
        life = self.current
        assert life is not None and life.dead
        for _ in range(100):
            if not life.tasks:
                break
            await settle()
        assert not life.tasks, f"tasks outlived the kill: {life.tasks}"
        if life.client is not None:
            with contextlib.suppress(Exception):
                await SignedClient.close(life.client)

    async def stop(self) -> None:
        """Stop the current life gracefully (the end of the test)."""
        life = self.current
        if life is None or life.dead or life.bot is None:
            return
        stopper = life.bot._stop_event
        if stopper is not None:
            stopper.set()
        for _ in range(100):
            if not life.tasks:
                break
            await settle()
        if life.client is not None:
            await life.client.close()
        if life.store is not None:
            await life.store.close()


def every_life(lives: Lives) -> Iterator[Life]:
    """The lives so far, in order."""
    return iter(lives._all[n] for n in sorted(lives._all))



# --- one bot on a stepped simulator, the test stepping time until what it waits for ----------


@dataclass
class SteppedRun:
    """A started, running bot on a stepped simulator; the test moves time with `until`."""

    sim: Simulator
    bot: Bot
    store: Store
    client: SteppedClient
    stepper: Stepper
    web: Any = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    events: list[Any] = field(default_factory=list)

    @property
    def desk(self) -> Any:
        """The order desk."""
        return self.bot.desk

    async def until(self, cond: Callable[[], Any], within: float, what: str = "") -> Any:
        """Step simulated time until `cond()` (sync or async) is truthy; its value.

        Looked at after the loop settles, and again after each simulated second (every
        sleeper due in it woken in order): the same answer on a slow or a fast machine.
        Fails after `within` simulated seconds.
        """
        deadline = self.sim.clock.now_ms() + int(within * 1000)
        while True:
            await settle()
            value = cond()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            now = self.sim.clock.now_ms()
            if now >= deadline:
                raise AssertionError(f"not within {within:g} simulated s: {what or cond}")
            await self.stepper.to(min(now + STEP_MS, deadline))

    async def wait(self, event: asyncio.Event, within: float, what: str = "") -> None:
        """Step simulated time until `event` is set."""
        await self.until(event.is_set, within, what or "the event")

    async def run_for(self, seconds: float) -> None:
        """Step `seconds` of simulated time."""
        await self.stepper.to(self.sim.clock.now_ms() + int(seconds * 1000))


@contextlib.asynccontextmanager
async def stepped_bot(sim: Simulator, config: Path, db: Path, *, seed: int = 7,
                      timings: ChatTimings | None = None, web: bool = False,
                      collect: tuple[type, ...] = ()) -> AsyncIterator[SteppedRun]:
    """The real Bot on a stepped simulator (run_simulator(..., stepped=True)), running.

    Its store runs inline (no thread the loop cannot see), its randomness is seeded, its
    request timeout is on the simulated clock, its web server (`web`) on 127.0.0.1:<any>.
    Events of the `collect` types published on its bus land in `run.events`.
    """
    if not sim.clock.stepped:
        raise ValueError("stepped_bot needs run_simulator(..., stepped=True)")
    with mock.patch.object(aiosqlite, "connect", inline_sqlite):
        clock = SteppedClock(sim.clock)
        store = await Store.open(db)
        client = SteppedClient(sim, api_key=SecretStr(sim.api_key),
                               signer=HmacSigner(SecretStr(sim.api_secret or "")), clock=clock,
                               timeout=10.0, rng=random.Random(f"{seed}:client"))
        task: asyncio.Task[None] | None = None
        try:
            bot = Bot(load_config(config), client, store, clock=clock)
            bot.registry.rng = random.Random(f"{seed}:registry")
            server = None
            if web:
                settings = type("S", (), {"web_token": None})()
                server = attach_web(bot, settings, port=0)  # type: ignore[arg-type]
            run = SteppedRun(sim, bot, store, client, Stepper(sim), server)
            await bot.start()
            chat = getattr(bot.desk, "chat", None)
            if chat is not None:
                chat.rng = random.Random(f"{seed}:chat")
                chat.set_timings(timings or ChatTimings())
                ids = random.Random(f"{seed}:uuid")
                bot.desk.make_uuid = lambda: str(uuid.UUID(int=ids.getrandbits(128), version=4))
            if collect:
                async def keep(event: Any) -> None:
                    run.events.append(event)

                bot.bus.subscribe(collect, keep, name="test")
            task = asyncio.create_task(bot.run(run.stop))
            if server is not None:
                await run.wait(server.started, 10, "the web server")
            yield run
        finally:
            try:
                if task is not None:
                    run.stop.set()
                    for _ in range(1000):
                        if task.done():
                            break
                        await run.stepper.to(sim.clock.now_ms() + STEP_MS)
                    await task
            finally:
                await client.close()
                await store.close()


@dataclass(frozen=True, slots=True)
class Tally:
    """What a run did to the exchange's limits."""

    hours: float
    requests: int  # requests the bot put on the wire
    rate_limited: int  # 429s it received
    bans: int  # 418 bans the simulator imposed
    faults_429: int  # 429s the scenario's faults injected
    real_seconds: float


async def run_tally(db: Path, config: Path, *, scenario: str = "stormy", hours: float = 3.0,
                    seed: int | None = None) -> Tally:
    """The bot on `scenario` (its own seed unless `seed`) for `hours` on the stepped clock:
    requests, 429s, bans. The same on a slow or a fast machine."""
    began = time.perf_counter()
    async with run_simulator(scenario, start_ms=START_MS, stepped=True, seed=seed) as sim:
        async with stepped_bot(sim, config, db) as run:
            await run.stepper.to(START_MS + int(hours * 3600_000))
            client = run.client
            sent, rate_limited = client.requests_sent, client.rate_limited
        bans = sum(int(o["bans"]) for o in sim.gateway.limiter.snapshot(0)["bans"].values())
        faults = sum(f.hits for f in sim.gateway.faults.faults if f.spec.kind == "http429")
    return Tally(hours, sent, rate_limited, bans, faults, time.perf_counter() - began)
