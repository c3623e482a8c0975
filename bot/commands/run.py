"""`run`: the daemon. Starts everything and runs until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from bot.app import Bot, StartupError
from bot.commands import options
from bot.commands.common import (
    EXIT_CONFIG,
    EXIT_OK,
    ConfigError,
    Credentials,
    credentials,
    fail,
    load_settings,
    make_client,
    open_store,
)
from bot.console.telegram import telegram_problems
from bot.logs import register_secret, say_error
from bot.ops import sdnotify
from bot.ops.lock import AlreadyRunning, InstanceLock, KeyLock
from bot.ops.service import (
    check_credentials,
    check_key,
    reloader,
    report_first_decision,
    status_line,
)
from bot.ops.web import listen_web
from config.loader import ConfigFileError, LoadedConfig, load_config
from config.settings import EXAMPLE_CONFIG, Settings, config_path
from state.db import StoreFull
from state.maintenance import StoreDamaged, integrity_check

add_arguments = options.run  # the options live in a light module (fast --help)


def load(path: Path, dry_run: bool = False) -> LoadedConfig:
    """The TOML file, validated, with --dry-run applied; a ConfigError when invalid."""
    try:
        loaded = load_config(path)
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None
    if dry_run:
        bot_cfg = loaded.app.bot.model_copy(update={"dry_run": True})
        loaded = loaded.__class__(loaded.path, loaded.app.model_copy(update={"bot": bot_cfg}),
                                  loaded.ads)
    return loaded


def run(args: argparse.Namespace) -> int:
    """Entry point of `run`: config errors exit 2 before any request is sent."""
    began = time.monotonic()
    try:
        settings = load_settings()
        creds = credentials(settings)
        loaded = load(config_path(args.config, settings.config), args.dry_run)
        for problem in telegram_problems(loaded.app.telegram, settings.telegram_token, loaded.path):
            raise ConfigError(problem)
    except ConfigError as exc:
        return fail(exc)
    for secret in (settings.api_key, settings.api_secret, settings.private_key_password,
                   settings.web_token, settings.telegram_token):
        register_secret(secret)
    with contextlib.ExitStack() as held:
        try:  # one bot per store, and one per API key on this machine
            held.enter_context(InstanceLock(settings.db))
            held.enter_context(KeyLock(settings.require_key(), settings.db))
        except (AlreadyRunning, OSError) as exc:
            return _refuse(str(exc))
        try:
            integrity_check(settings.db)
            return asyncio.run(_main(args, settings, creds, loaded, began))
        except (StoreDamaged, StoreFull) as exc:
            return _refuse(str(exc))
        except ConfigError as exc:
            return fail(exc)


def _refuse(message: str) -> int:
    say_error(message, "p2pbot run")
    return EXIT_CONFIG


async def _main(args: argparse.Namespace, settings: Settings, creds: Credentials,
                loaded: LoadedConfig, began: float) -> int:
    stop, hup = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(stop))
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    path = config_path(args.config, settings.config)
    _say_where(settings, path)
    async with open_store(settings.db) as store, make_client(creds) as client:
        bot = Bot(loaded, client, store, settings=settings)
        if loaded.app.web.enabled:  # listening first: a bad [web] exits 2 before any request
            await listen_web(bot, settings, loaded.path)
        await bot.registry.restore()  # a persisted ban holds even for the key check
        refusal = (await check_key(bot.api, args.accept_withdrawals)  # before anything else
                   or await check_credentials(bot.registry))
        if refusal is not None:
            return _refuse(refusal)
        try:
            await bot.start()
        except StartupError as exc:
            logger.error("cannot start: {}", exc)
            return EXIT_CONFIG
        bot.add_part(lambda: reloader(bot, hup, lambda: load(path, args.dry_run)))
        bot.add_part(lambda: report_first_decision(bot, began))
        bot.add_part(sdnotify.watchdog)
        logger.info("running {} ad(s){}; Ctrl-C or SIGTERM stops, SIGHUP reloads {}",
                    len(bot.ads), " (dry run)" if loaded.app.bot.dry_run else "", path)
        sdnotify.ready(status_line(bot))
        await bot.run(stop)
    if bot.fatal is not None:
        return _refuse(bot.fatal)
    logger.info("stopped cleanly")
    return EXIT_OK


def _say_where(settings: Settings, path: Path) -> None:
    """The exchange the bot talks to and the file it follows, first thing in the log."""
    logger.info("exchange: {}{}; strategy file: {}", settings.base_url,
                " (through the proxy in P2PBOT_PROXY)" if settings.proxy else "", path)
    if path == EXAMPLE_CONFIG:
        logger.warning("no strategy file given: running the example {} (made for the simulator); "
                       "copy it to ./config.toml and edit it, or set P2PBOT_CONFIG", path)


def _stopper(stop: asyncio.Event) -> Callable[[], None]:
    def on_signal() -> None:
        if not stop.is_set():
            sdnotify.stopping()
        stop.set()
    return on_signal
