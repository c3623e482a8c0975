"""Shared pieces of the order desk's end-to-end tests: scenarios, configs, a running bot, waits."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.app import Bot
from bot.binance.client import SignedClient
from bot.binance.signing import HmacSigner
from bot.chat.session import ChatTimings
from config.loader import load_config
from simulator.app import Simulator
from simulator.clock import ScaledClock
from simulator.scenario import Scenario, parse_scenario
from state.db import Store

START_MS = 1_751_796_000_000
SELL_AD, BUY_AD, SELL_AD_2 = "11000000000000000001", "11000000000000000002", "11000000000000000003"

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
    ads = [{"side": "SELL", "price": "93.00", "adv_no": SELL_AD, "surplus": "1000000", "max": "20000"},
           {"side": "BUY", "price_type": "floating", "ratio": "99", "adv_no": BUY_AD,
            "surplus": "1000000", "max": "20000"}]
    if three_ads:
        ads.append({"side": "SELL", "price": "93.20", "adv_no": SELL_AD_2, "surplus": "1000000",
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
class Running:
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
async def running_bot(sim: Simulator, tmp_path: Path, toml: str, *,
                      timings: ChatTimings | None = None,
                      collect: tuple[type, ...] = ()) -> AsyncIterator[Running]:
    """The real Bot in simulated time (ScaledClock) against `sim`, with the order desk attached.

    Events of the `collect` types published on the bot's bus land in `Running.events`.
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
        running = Running(bot, sim, store, stop, task, events)
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


async def open_order(sim: Simulator, adv_no: str = SELL_AD) -> str:
    """Open an order on an own ad now; its number."""
    return str((await sim_post(sim, "/_sim/world/orders", {"adv_no": adv_no}))["order"]["orderNumber"])
