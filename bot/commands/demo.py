"""`demo`: the simulator in-process and the bot against it, with a live view. No keys needed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

from pydantic import SecretStr

from bot.app import Bot
from bot.binance.client import SignedClient
from bot.binance.signing import HmacSigner
from bot.commands.common import EXIT_OK, ConfigError, fail
from bot.commands.run import load
from bot.logging import setup_from_args
from bot.view import render
from bot.web import WebServer, attach_web
from config.settings import Settings
from simulator.app import run_simulator
from simulator.clock import ScaledClock
from state.db import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `demo`."""
    p.add_argument("--scenario", default="price_war",
                   help="simulator scenario: price_war (default), key_rollout, calm, stormy")
    p.add_argument("--speed", type=float, default=10.0,
                   help="simulated seconds per real second (default 10)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many real seconds (default: until Ctrl-C)")
    p.add_argument("--config", type=Path, default=EXAMPLE, help="strategy file (default: example)")
    p.add_argument("--no-view", action="store_true", help="log lines instead of the live view")
    p.add_argument("--web-port", type=int, default=None,
                   help="port of the status page (default: [web] port of the config; 0: any)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `demo`."""
    try:
        loaded = load(args.config)
    except ConfigError as exc:
        return fail(exc)
    view = not args.no_view and sys.stdout.isatty()
    setup_from_args(args, level="WARNING" if view else None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(args, loaded, view))
    return EXIT_OK


async def _demo(args: argparse.Namespace, loaded, view: bool) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(args.scenario, speed=args.speed) as sim:
        clock = ScaledClock(sim.clock)
        print(f"simulator {sim.base_url} scenario={args.scenario} speed={args.speed}x", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            store = await Store.open(Path(tmp) / "demo.db")
            client = SignedClient(sim.base_url, api_key=SecretStr(sim.api_key),
                                  signer=HmacSigner(SecretStr(sim.api_secret)), clock=clock)
            try:
                # no environment: a demo never reaches the merchant's Telegram or webhook
                bot = Bot(loaded, client, store, clock=clock, settings=Settings.model_construct())
                web = attach_web(bot, port=args.web_port) if loaded.app.web.enabled else None
                await bot.start()
                if web is not None:
                    bot.parts.tasks.append(lambda: _announce(web))
                if args.duration:
                    loop.call_later(args.duration, stop.set)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(bot.run(stop))
                    tg.create_task(_show(bot, clock, stop, args.scenario, view, web))
            finally:
                await client.close()
                await store.close()


async def _announce(web: WebServer) -> None:
    await web.started.wait()
    print(f"status page: {web.url}/", flush=True)


async def _show(bot: Bot, clock: ScaledClock, stop: asyncio.Event, title: str, view: bool,
                web: WebServer | None = None) -> None:
    while not stop.is_set():
        screen = render(bot, clock.time(), title)
        if view:
            page = f"status page: {web.url}/  " if web is not None and web.started.is_set() else ""
            sys.stdout.write("\x1b[H\x1b[2J" + screen + f"\n\n{page}(Ctrl-C stops)\n")
        else:
            print(screen + "\n", flush=True)
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0 if view else 5.0)
    print(render(bot, clock.time(), title), flush=True)
