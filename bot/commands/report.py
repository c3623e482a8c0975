"""`report`: orders, volume, prices, spread, rates, release times and edits over a span of days.

Read from the store, completed by the order history endpoint when the key may read it
(finished orders the store never saw, final statuses it missed), read in fixed windows
(docs/exchange.md §11.11). Days are the merchant's (`[bot] timezone`). Read-only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from bot.binance.errors import BinanceError
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
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
from bot.localtime import zone_name, zone_of_file
from bot.report import (
    Report,
    ReportOrder,
    build,
    from_history,
    from_store,
    merge,
    render,
    render_csv,
    span,
)
from config.settings import Settings, config_path
from state.db import Store
from state.endpoints import EndpointLog
from state.meta import Meta
from state.report import ad_names, edits_between, orders_between


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (write 2026-11-25)") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `report`."""
    p.add_argument("--from", dest="first", type=_day, metavar="DATE",
                   help="first day, your time zone (default: six days before --to)")
    p.add_argument("--to", dest="last", type=_day, metavar="DATE",
                   help="last day, included (default: today)")
    p.add_argument("--csv", action="store_true", help="the daily table as CSV")
    p.add_argument("--no-exchange", action="store_true",
                   help="the store only: do not read the order history endpoint")
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="the TOML file whose [bot] timezone is used (default: P2PBOT_CONFIG)")


def run(args: argparse.Namespace) -> int:
    """Print the report (0); 2 on a configuration problem or a span that ends before it starts."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        return fail(exc)
    tz = zone_of_file(config_path(args.config, settings.config))
    last = args.last or datetime.now(tz).date()
    first = args.first or last - timedelta(days=6)
    if first > last:
        print(f"p2pbot report: --from {first} is after --to {last}", file=sys.stderr)
        return EXIT_CONFIG
    if not Path(settings.db).exists():
        return fail(ConfigError(f"no store at {settings.db} (set P2PBOT_DB): nothing to report"))
    try:
        report, note = asyncio.run(make_report(settings, first, last, tz,
                                               exchange=not args.no_exchange))
    except ConfigError as exc:
        return fail(exc)
    if note:
        print(note, file=sys.stderr if args.csv else sys.stdout)
    print(render_csv(report) if args.csv else render(report, zone_name(tz)),
          end="" if args.csv else "\n")
    return EXIT_OK


async def make_report(settings: Settings, first: date, last: date, tz: tzinfo, *,
                      exchange: bool) -> tuple[Report, str]:
    """The report, and a note on where its orders came from ("" when all went well)."""
    start, end = span(first, last, tz)
    async with open_store(settings.db) as store:
        stored = [from_store(o) for o in await orders_between(store, start, end)]
        edits = await edits_between(store, start, end)
        names = await ad_names(store)
        history, note = ([], "") if not exchange else await _history(settings, store, start, end)
    orders = merge([o for o in stored if o is not None], history)
    return build(orders, first=first, last=last, tz=tz, labels=names, edits=edits), note


async def _history(settings: Settings, store: Store, start: float,
                   end: float) -> tuple[list[ReportOrder], str]:
    """Finished orders of the span from the order history endpoint, both sides."""
    try:
        creds = credentials(settings)
    except ConfigError:
        return [], "order history not read (no API key set): from the store only"
    async with make_client(creds) as client:
        reg = CapabilityRegistry(client, log=EndpointLog(store), meta=Meta(store))
        await reg.restore()
        api = P2PApi(reg)
        found: list[ReportOrder] = []
        try:
            for side in ("SELL", "BUY"):
                rows = await api.order_history_between(side, int(start * 1000), int(end * 1000) - 1)
                found += [o for o in (from_history(r, side) for r in rows) if o is not None]
        except (BinanceError, CapabilityUnavailable) as exc:
            return [], f"order history not read ({exc}): from the store only"
    return found, ""
