"""The options of every bot command, in a module that imports nothing but the standard library.

`p2pbot --help` and `p2pbot COMMAND --help` build their parser from here alone: the command's
own module (and with it the bot, aiohttp, pydantic) is imported only when the command runs.
Each command module takes its `add_arguments` from here, so there is one list of options.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ACCEPT_FLAG = "--i-accept-withdrawal-permission"  # bot.ops.service.ACCEPT_FLAG (a test keeps them one)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


def run(p: argparse.ArgumentParser) -> None:
    """Options of `run`."""
    p.add_argument("--config", type=Path,
                   help="the TOML strategy file (default: P2PBOT_CONFIG, else ./config.toml)")
    p.add_argument("--dry-run", action="store_true",
                   help="follow and decide, log and store what would be sent, but change nothing "
                        "at the exchange and send no chat message ([bot] dry_run)")
    p.add_argument(ACCEPT_FLAG, dest="accept_withdrawals", action="store_true",
                   help="run even though the API key can withdraw funds (not recommended)")


def demo(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--db", type=Path, default=None,
                   help="keep the store (and its recording, for `export`) in this file "
                        "(default: a temporary one, deleted at the end)")


def probe(p: argparse.ArgumentParser) -> None:
    """Options of `probe`."""
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--watch", type=float, metavar="N", help="repeat every N seconds, recording transitions")
    p.add_argument("--count", type=int, help="with --watch: stop after this many rounds")
    p.add_argument("--probe-writes", action="store_true",
                   help="also probe the writes with writes that change nothing: ads/update re-sends "
                        "an ad's current price, ads/updateStatus its current status (read just before)")
    p.add_argument("--asset", default="USDT", help="asset for search/reference probes (default USDT)")
    p.add_argument("--fiat", default=None, help="fiat for search/reference probes (default: from your ads)")
    p.add_argument("--evidence", metavar="FILE",
                   help="also write an evidence pack for a Binance support ticket to FILE ('-': "
                        "print it): per endpoint the code, message, time (UTC and local) and "
                        "request id; never the key, the secret or a signature")


def check_config(p: argparse.ArgumentParser) -> None:
    """Options of `check-config`."""
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="the TOML file to check (default: P2PBOT_CONFIG, else ./config.toml, "
                        "else the example shipped with p2pbot)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def history(p: argparse.ArgumentParser) -> None:
    """Options of `history`."""
    p.add_argument("--endpoint", help="only this endpoint (e.g. search)")
    p.add_argument("--since", help="from this time: ISO date/time (your [bot] timezone unless it "
                                   "names one) or a span back, like 6h or 2d")
    p.add_argument("--until", help="up to this time: ISO date/time or a span back")
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="the TOML file whose [bot] timezone the times are shown in "
                        "(default: P2PBOT_CONFIG; the machine's zone without one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--show", default="endpoints,prices,orders",
                   help="what to print, comma-separated: endpoints, prices, orders, decisions "
                        "(every decision, holds included, with its repeat count; default: "
                        "endpoints,prices,orders)")


def backup(p: argparse.ArgumentParser) -> None:
    """Options of `backup`."""
    p.add_argument("path", type=Path,
                   help="the file to write, or a folder (a time-stamped file is written in it)")
    p.add_argument("--db", type=Path, default=None, help="the store (default: P2PBOT_DB)")


def ban(p: argparse.ArgumentParser) -> None:
    """Options of `ban`."""
    p.add_argument("--clear", action="store_true",
                   help="forget the stored ban (refused while a bot runs on the store)")
    p.add_argument("--db", type=Path, default=None, help="the store (default: P2PBOT_DB)")
