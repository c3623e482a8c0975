"""`make bench`: run every bench script with `--rows` and print one table of all their rows.

Each `bench/*.py` (but this one and the modules starting with `_`) is run as
`python bench/NAME.py --rows`; what it prints to stdout as JSON lines (bench/_rows.py) are
its rows, the rest of its output goes to the terminal as it comes. Then one table:
figure | goal | measured | ratio | how (a ratio of 1.0 or less: the goal is met).

    .venv/bin/python bench/table.py [--only engine,cli_start] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
COLUMNS = ("figure", "goal", "measured", "ratio", "how")


def scripts(only: set[str] | None = None) -> list[Path]:
    """The bench scripts, by name."""
    found = [p for p in sorted(BENCH.glob("*.py")) if p.name != "table.py" and not p.name.startswith("_")]
    return [p for p in found if only is None or p.stem in only]


def rows_of(script: Path) -> tuple[list[dict[str, Any]], str]:
    """The rows one script printed, and '' or why it gave none."""
    began = time.perf_counter()
    print(f"--- {script.name}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, str(script), "--rows"], capture_output=True,
                          text=True, cwd=BENCH.parent, check=False)
    print(done.stderr, end="", file=sys.stderr)
    if done.returncode == 2 and "unrecognized arguments: --rows" in done.stderr:
        return [], ""  # a script that prints no rows yet: nothing to gather, not a failure
    rows = []
    for line in done.stdout.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            print(line, file=sys.stderr)  # a script's own report on stdout: pass it on
            continue
        if isinstance(row, dict) and set(COLUMNS) <= row.keys():
            rows.append(row)
    print(f"--- {script.name}: {len(rows)} rows in {time.perf_counter() - began:.0f} s",
          file=sys.stderr, flush=True)
    return rows, "" if done.returncode == 0 else f"{script.name} exited {done.returncode}"


def ratio_text(ratio: Any) -> str:
    """The ratio for the table: two decimals; '-' without a goal."""
    return "-" if ratio is None else f"{float(ratio):.2f}"


def table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The rows as aligned text, or as a Markdown table."""
    cells = [[str(r["figure"]), str(r["goal"] or "-"), str(r["measured"]), ratio_text(r["ratio"]),
              str(r["how"])] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]
    widths[-1] = 0  # the last column is not padded
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*COLUMNS), "-+-".join("-" * w for w in widths[:-1]) + "-+-" + "-" * 20]
    return "\n".join(out + [fmt.format(*c) for c in cells])


def main() -> int:
    """Run the scripts and print the table; exit 1 when a script failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated script names (no .py)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    only = None if args.only is None else set(args.only.split(","))
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    failed = []
    for script in scripts(only):
        got, problem = rows_of(script)
        rows += got
        if problem:
            failed.append(problem)
    print(table(rows, args.markdown))
    met = [r for r in rows if r["ratio"] is not None]
    print(f"\n{sum(1 for r in met if float(r['ratio']) <= 1.0)} of {len(met)} goals met; "
          f"{len(rows)} rows from {len(scripts(only))} scripts in {time.perf_counter() - began:.0f} s")
    for problem in failed:
        print(f"FAILED: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
