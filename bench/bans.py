"""Bench: the bot on the `stormy` scenario for a simulated day; bans, 429s and requests.

The bot runs on the simulator's stepped clock (tests.e2e.support.run_tally: time moves only
when the bot has nothing left to do, sleepers wake in deadline order), so a 429's
Retry-After and the bot's wait for it are the same simulated time on any machine, and a
seed gives the same figures. Every fault of `stormy` is
on, its 429s (1% of requests, Retry-After 2 s) included; config/example.toml (two ads,
the order desk and chat).

    .venv/bin/python bench/bans.py [--hours 24] [--seed 13]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._rows import emit, wants_rows  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from tests.e2e.support import run_tally  # noqa: E402
from tests.support import EXAMPLE  # noqa: E402


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=None,
                        help="simulated hours (default 24; 6 with --rows, for make bench)")
    parser.add_argument("--seed", type=int, default=None, help="the scenario's own (13) by default")
    parser.add_argument("--scenario", default="stormy")
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    rows = args.rows or wants_rows()
    args.hours = args.hours if args.hours is not None else 6.0 if rows else 24.0
    setup_logging("CRITICAL")
    with tempfile.TemporaryDirectory() as tmp:
        t = asyncio.run(run_tally(Path(tmp) / "bench.db", EXAMPLE, scenario=args.scenario,
                                  hours=args.hours, seed=args.seed))
    print(f"{args.scenario}: {t.hours:g} simulated hours in {t.real_seconds:.0f} s real")
    print(f"  requests sent:     {t.requests}")
    print(f"  429s received:     {t.rate_limited} ({t.faults_429} injected by the scenario)")
    print(f"  418 bans:          {t.bans}")
    if rows:
        how = (f"{args.scenario} scenario, {t.hours:g} simulated h on the stepped clock, "
               "config/example.toml")
        emit("418 bans", "0", str(t.bans), t.bans / 1.0, how)
        emit("429s received beyond the injected ones", "0",
             str(max(0, t.rate_limited - t.faults_429)),
             max(0, t.rate_limited - t.faults_429) / 1.0, how)
        per_hour = t.requests / t.hours
        emit("weight used per hour (2 ads, orders, chat)", "360,000 (6,000/min budget)",
             f"{per_hour:,.0f}", per_hour / 360_000, how + "; every endpoint weighs 1")


if __name__ == "__main__":
    main()
