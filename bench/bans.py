"""Bench: the bot on the `stormy` scenario for a simulated day; bans, 429s and requests.

The bot and the simulator share a driven clock (simulator.clock.DrivenClock: time moves
to the next wake-up whenever nothing is in flight), so the scenario's latency faults and
held requests take simulated time and a day runs in minutes. Every fault of `stormy` is
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

from bot.logging import setup_logging  # noqa: E402
from tests.support import run_driven  # noqa: E402


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=None, help="the scenario's own (13) by default")
    parser.add_argument("--scenario", default="stormy")
    args = parser.parse_args()
    setup_logging("CRITICAL")
    with tempfile.TemporaryDirectory() as tmp:
        t = asyncio.run(run_driven(Path(tmp) / "bench.db", scenario=args.scenario,
                                   hours=args.hours, seed=args.seed))
    print(f"{args.scenario}: {t.hours:g} simulated hours in {t.real_seconds:.0f} s real")
    print(f"  requests sent:     {t.requests}")
    print(f"  429s received:     {t.rate_limited} ({t.faults_429} injected by the scenario)")
    print(f"  418 bans:          {t.bans}")


if __name__ == "__main__":
    main()
