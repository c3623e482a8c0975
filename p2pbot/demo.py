"""`demo`: the simulator in-process and the bot against it, with a live view. No keys needed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from loguru import logger
from pydantic import SecretStr

from bot.app import Bot
from bot.binance.client import SignedClient
from bot.binance.signing import HmacSigner
from bot.commands import options
from bot.commands.common import EXIT_OK, ConfigError, fail
from bot.commands.run import load
from bot.logs import setup_from_args
from bot.ops.terminal import WIDTH, Alerts, render
from bot.ops.web import WebServer, attach_web
from config.settings import EXAMPLE_CONFIG, Settings
from simulator.app import Simulator, run_simulator
from simulator.clock import ScaledClock
from state.db import Store

EXAMPLE = EXAMPLE_CONFIG


add_arguments = options.demo  # the options live in a light module (fast --help)


def run(args: argparse.Namespace) -> int:
    """Entry point of `demo`."""
    try:
        loaded = load(args.config)
    except ConfigError as exc:
        return fail(exc)
    view = not args.no_view and sys.stdout.isatty()
    setup = setup_from_args(args, level="WARNING" if view else None)
    if view and sys.stderr.isatty():
        # the next redraw would wipe these lines: the view shows warnings itself (Alerts)
        logger.remove(setup.handler_ids.pop(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(args, loaded, view))
    return EXIT_OK


SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def _demo(args: argparse.Namespace, loaded, view: bool,  # type: ignore[no-untyped-def]
                stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM, `--duration` or `stop`: screens on a terminal, else log lines only."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with run_simulator(args.scenario, speed=args.speed) as sim:
            logger.info("simulator {} scenario={} speed={}x", sim.base_url, args.scenario, args.speed)
            if args.duration:
                loop.call_later(args.duration, stop.set)
            await _session(args, loaded, sim, stop, view)
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


async def _session(args: argparse.Namespace, loaded, sim: Simulator,  # type: ignore[no-untyped-def]
                   stop: asyncio.Event, view: bool) -> None:
    clock = ScaledClock(sim.clock)
    alerts = Alerts(now=clock.time) if view else None
    handler = alerts.attach() if alerts is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(getattr(args, "db", None) or Path(tmp) / "demo.db")
        client = SignedClient(sim.base_url, api_key=SecretStr(sim.api_key),
                              signer=HmacSigner(SecretStr(sim.api_secret or "")), clock=clock)
        try:
            # no environment: a demo never reaches the merchant's Telegram or webhook
            bot = Bot(loaded, client, store, clock=clock, settings=Settings.model_construct())
            web = attach_web(bot, port=args.web_port) if loaded.app.web.enabled else None
            await bot.start()
            if web is not None:
                bot.add_part(lambda: _announce(web))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(bot.run(stop))
                if view:  # off a terminal: log lines only, no screens among them
                    tg.create_task(_show(bot, clock, stop, args.scenario, web, alerts))
        finally:
            if handler is not None:
                logger.remove(handler)
            await client.close()
            await store.close()


async def _announce(web: WebServer) -> None:
    await web.started.wait()
    logger.info("status page: {}/", web.url)


async def _show(bot: Bot, clock: ScaledClock, stop: asyncio.Event, title: str,
                web: WebServer | None = None, alerts: Alerts | None = None) -> None:
    """Redraw the view every second until stopped; the last screen stays."""
    width = max(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)
    while not stop.is_set():
        screen = render(bot, clock.time(), title, alerts=alerts, width=width)
        page = f"status page: {web.url}/  " if web is not None and web.started.is_set() else ""
        sys.stdout.write("\x1b[H\x1b[2J" + screen + f"\n\n{page}(Ctrl-C stops)\n")
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    print(render(bot, clock.time(), title, alerts=alerts, width=width), flush=True)
