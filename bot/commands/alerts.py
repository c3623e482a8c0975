"""`alerts` lists the alerts waiting for an acknowledgement; `ack ID` acknowledges one.

Works while the daemon runs (the store takes one writer at a time): an acknowledged alert
is not repeated. ID is the number each alert shows (`[alert 12]`), or an order number,
which acknowledges every open alert of that order.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from pathlib import Path

from bot.alerts.acks import UnknownAlert, acknowledge, describe
from bot.commands.common import EXIT_CONFIG, EXIT_OK, ConfigError, fail, load_settings, open_store
from state.alerts import AlertStore


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ack` and `alerts` (ack takes the alert's id)."""
    if p.prog.split()[-1] == "ack":
        p.add_argument("id", metavar="ID", help="the alert's id ([alert ID]) or an order number")
    else:
        p.add_argument("--all", action="store_true",
                       help="the latest alerts whatever their state, not only the open ones")
    p.add_argument("--db", type=Path, default=None, help="the store (default: P2PBOT_DB)")


def run(args: argparse.Namespace) -> int:
    """`ack`: 0 when acknowledged, 2 for an unknown id; `alerts`: the list, 0."""
    try:
        db = args.db or load_settings().db
    except ConfigError as exc:
        return fail(exc)
    if not Path(db).exists():
        print(f"no alert recorded (no store at {db})")
        return EXIT_OK if args.command == "alerts" else EXIT_CONFIG
    if args.command == "ack":
        return asyncio.run(_ack(db, args.id))
    return asyncio.run(_list(db, args.all))


async def _ack(db: Path, ref: str) -> int:
    async with open_store(db) as store:
        try:
            rows = await acknowledge(AlertStore(store), ref, f"cli:{getpass.getuser()}",
                                     time.time())
        except UnknownAlert as exc:
            print(f"p2pbot ack: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    for row in rows:
        print(f"acknowledged: {describe(row)}")
    return EXIT_OK


async def _list(db: Path, every: bool) -> int:
    async with open_store(db) as store:
        alerts = AlertStore(store)
        rows = await (alerts.recent() if every else alerts.open())
    if not rows:
        print("no open alert" if not every else "no alert recorded")
    for row in rows:
        print(describe(row))
    return EXIT_OK
