"""Bench: how fast `backtest` replays a recorded day, and how faithful the replay is.

Speed: a day of the `price_war` scenario (two markets: USDT/RUB searched on both sides,
and BTC/RUB) is generated once with the simulator's own world and written as
`p2pbot export` writes it (generating is the simulator's time, not the replay's);
then `backtest` reads the file and replays config/example.toml over it, and the real
time of reading and replaying is printed (target: under 30 s on one core).

Fidelity is the test tests/e2e/test_replay.py (the bot on the stepped simulator,
recorded, exported and replayed with the same config: every decision the same).

    .venv/bin/python bench/backtest.py [--hours 24] [--seed 7] [--config PATH] [--keep FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._rows import emit  # noqa: E402
from bot.recording import data  # noqa: E402
from config.loader import load_config  # noqa: E402
from p2pbot.backtest.command import quiet  # noqa: E402
from p2pbot.backtest.report import measure  # noqa: E402
from p2pbot.backtest.runner import replay  # noqa: E402
from p2pbot.backtest.scenario import generate_entries  # noqa: E402
from p2pbot.backtest.world import build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--config", type=Path, default=ROOT / "config" / "example.toml")
    p.add_argument("--keep", type=Path, default=None, help="write the recording here and keep it")
    p.add_argument("--rows", action="store_true",
                   help="the rows of the bench table (2 simulated hours: generating a day takes "
                        "minutes; the replay speed is what is measured)")
    args = p.parse_args()
    if args.rows:
        args.hours = min(args.hours, 2.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "day.jsonl.gz"
        if not path.exists():
            began = time.perf_counter()
            entries, _, _ = generate_entries("price_war", hours=args.hours, seed=args.seed)
            data.write(path, {"from": entries[0][0], "to": entries[-1][0], "pseudonymised": True},
                       data.export_lines(entries, data.Pseudonyms()))
            print(f"generated {args.hours:g} h of price_war in {time.perf_counter() - began:.1f} s "
                  f"({path.stat().st_size / 1e6:.1f} MB)")
        began, cpu = time.perf_counter(), time.process_time()
        rec = data.read(path)
        history = build(rec.entries)
        read_s = time.perf_counter() - began
        loaded = load_config(args.config)
        with quiet():
            run = asyncio.run(replay(args.config.stem, loaded, history))
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
        m = measure(run)
        markets = len({s.market for s in history.steps})
        print(f"replayed {m.hours:g} h, {len(history.steps)} snapshots of {markets} markets, "
              f"{m.decisions} decisions of {args.config.name}: read {read_s:.1f} s, read + "
              f"replay {total:.1f} s wall, {cpu:.1f} s CPU on one core "
              f"({m.hours * 3600 / cpu:,.0f}x real time); rank-1 {m.rank1_share:.0%}, "
              f"{m.edits} edits")
        if args.rows:
            speed = m.hours * 3600 / cpu
            goal = 86400 / 30  # a recorded day replayed in 30 s of one core
            emit("backtest replay speed (x real time)", f">= {goal:,.0f}x (a day in 30 s)",
                 f"{speed:,.0f}x", goal / speed,
                 f"price_war {m.hours:g} h, {markets} markets, {args.config.name}, CPU of one core")


if __name__ == "__main__":
    main()
