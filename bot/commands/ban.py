"""`ban`: the IP ban the exchange imposed (HTTP 418) as the store keeps it; `--clear` forgets it.

A stored ban holds across restarts: every run waits it out (at most three days, the
longest ban Binance gives). Clearing is for a ban known to be over or wrong, and is
refused while a bot runs on the store: that bot holds the ban in memory and would
store it again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from bot.binance.client import MAX_BAN_SECONDS
from bot.clock import describe_duration, describe_until, local_time
from bot.commands import options
from bot.commands.common import EXIT_CONFIG, EXIT_OK, ConfigError, fail, load_settings, open_store
from bot.ops.lock import AlreadyRunning, InstanceLock
from state.meta import Meta

add_arguments = options.ban  # the options live in a light module (fast --help)


def run(args: argparse.Namespace) -> int:
    """Print the stored ban (0), or clear it (0; 2 while a bot runs on the store)."""
    try:
        db = args.db or load_settings().db
    except ConfigError as exc:
        return fail(exc)
    if not Path(db).exists():
        print(f"no IP ban recorded (no store at {db})")
        return EXIT_OK
    if not args.clear:
        print(asyncio.run(_show(db, time.time())))
        return EXIT_OK
    try:
        lock = InstanceLock(db).acquire()
    except (AlreadyRunning, OSError) as exc:
        print(f"p2pbot ban --clear: refused: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        print(asyncio.run(_clear(db, time.time())))
    finally:
        lock.release()
    return EXIT_OK


async def _show(db: Path, now: float) -> str:
    async with open_store(db) as store:
        until = await Meta(store).ban_until()
    return describe(until, now)


async def _clear(db: Path, now: float) -> str:
    async with open_store(db) as store:
        meta = Meta(store)
        until = await meta.ban_until()
        await meta.clear_ban()
    if until <= now:
        return "no IP ban in force; nothing stored now"
    return f"cleared the stored IP ban ({describe(until, now)}); the next run sends requests again"


def describe(until: float, now: float) -> str:
    """The stored ban in words: in force until when, and for how long the bot will wait."""
    if until <= now:
        return "no IP ban in force" + (f" (the last one ended {local_time(until)})" if until else "")
    said = f"IP banned by the exchange until {describe_until(until, now)}"
    if until - now > MAX_BAN_SECONDS:
        said += (f"; longer than Binance's longest ban, so a run waits "
                 f"{describe_duration(MAX_BAN_SECONDS)} at most")
    return said + "; `p2pbot ban --clear` forgets it"
