"""Bench: how long `p2pbot --help` and `p2pbot run --help` take, above a bare interpreter start.

Each is started as a process `--runs` times (interleaved with `python -c pass`, so a busy
machine slows both alike); the figure is the median of the differences run by run, and the
peak memory (RSS) of one `--help` is printed too.

    .venv/bin/python bench/cli_start.py [--runs 15] [--rows]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rows import emit, wants_rows  # noqa: E402

GOAL = 0.150  # seconds above `python -c pass`
CLI = [sys.executable, "-c", "import sys; from p2pbot.cli import main; sys.exit(main())"]


def took(argv: list[str]) -> float:
    """Seconds from spawn to exit."""
    began = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - began


def above_bare(args: list[str], runs: int) -> tuple[float, float]:
    """(median seconds above a bare start, median bare start)."""
    bare, diffs = [], []
    for _ in range(runs):
        b = took([sys.executable, "-c", "pass"])
        diffs.append(took([*CLI, *args]) - b)
        bare.append(b)
    return statistics.median(diffs), statistics.median(bare)


def peak_rss_mb(args: list[str]) -> float:
    """Peak RSS of one run, in MB (the children's maximum so far: this run's, as it is the largest)."""
    subprocess.run([*CLI, *args], cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main(runs: int, rows: bool) -> None:
    """Measure and print."""
    help_top, bare = above_bare(["--help"], runs)
    help_run, _ = above_bare(["run", "--help"], runs)
    rss = peak_rss_mb(["--help"])
    print(f"python -c pass: {bare * 1000:.0f} ms; p2pbot --help: +{help_top * 1000:.0f} ms "
          f"({rss:.0f} MB peak); p2pbot run --help: +{help_run * 1000:.0f} ms "
          f"(medians of {runs})", file=sys.stderr)
    if rows:
        how = f"process spawn to exit minus `python -c pass`, median of {runs}"
        emit("p2pbot --help, above a bare interpreter", "150 ms", f"{help_top * 1000:.0f} ms",
             help_top / GOAL, how)
        emit("p2pbot run --help, above a bare interpreter", "150 ms", f"{help_run * 1000:.0f} ms",
             help_run / GOAL, how)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    main(args.runs, args.rows or wants_rows())
