"""`run`: the daemon. Starts everything and runs until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from loguru import logger

from bot.app import Bot, StartupError
from bot.commands.common import (
    EXIT_CONFIG,
    EXIT_OK,
    ConfigError,
    credentials,
    fail,
    load_settings,
    make_client,
    open_store,
)
from bot.logging import setup_logging
from config.loader import ConfigFileError, LoadedConfig, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `run`."""
    p.add_argument("--config", type=Path, help="the TOML strategy file (default: P2PBOT_CONFIG)")
    p.add_argument("--dry-run", action="store_true", help="decide and log, but never update an ad")


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
    try:
        settings = load_settings()
        creds = credentials(settings)
        loaded = load(args.config or settings.config, args.dry_run)
    except ConfigError as exc:
        return fail(exc)
    setup_logging(args.log_level, args.log_json, secrets=(settings.api_key, settings.api_secret))
    try:
        return asyncio.run(_main(settings, creds, loaded))
    except ConfigError as exc:
        return fail(exc)


async def _main(settings, creds, loaded: LoadedConfig) -> int:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_store(settings.db) as store, make_client(creds) as client:
        bot = Bot(loaded, client, store)
        try:
            await bot.start()
        except StartupError as exc:
            logger.error("cannot start: {}", exc)
            return EXIT_CONFIG
        logger.info("running {} ad(s){}; Ctrl-C or SIGTERM stops", len(bot.ads),
                    " (dry run)" if loaded.app.bot.dry_run else "")
        await bot.run(stop)
    logger.info("stopped cleanly")
    return EXIT_OK
