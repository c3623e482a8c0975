"""The rows every bench script prints with `--rows`, for `bench/table.py` (`make bench`).

One JSON object per line on stdout: figure, goal, measured, ratio, how. `ratio` is
measured/goal where lower is better, goal/measured where higher is better, so a ratio
of 1.0 or less always means the goal is met; None when the figure has no goal.
"""

from __future__ import annotations

import json
import sys


def wants_rows() -> bool:
    """True when the script was run with `--rows` (by bench/table.py)."""
    return "--rows" in sys.argv[1:]


def emit(figure: str, goal: str | None, measured: str, ratio: float | None, how: str) -> None:
    """Print one row of the bench table as a JSON line on stdout."""
    row = {"figure": figure, "goal": goal or "", "measured": measured,
           "ratio": None if ratio is None else round(ratio, 2), "how": how}
    print(json.dumps(row, ensure_ascii=False), flush=True)


def ms(seconds: float) -> str:
    """Seconds as milliseconds for the table: 0.42 ms, 31 ms, 677 ms."""
    value = seconds * 1000
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"
