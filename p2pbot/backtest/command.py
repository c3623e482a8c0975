"""`backtest`: run one or more configs over the same market history and compare them.

The history is a recording (`p2pbot export`) or a simulator scenario; the pricing is the
bot's own engine on a virtual clock (p2pbot.backtest). Bad input (a config that does not
validate, a foreign or truncated file, a bad --sweep) exits 2 before anything is written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from bot.commands.common import EXIT_CONFIG, EXIT_OK, ConfigError
from bot.commands.history import parse_when
from bot.commands.run import load
from bot.recording import data
from config.loader import LoadedConfig
from p2pbot.backtest.html import page
from p2pbot.backtest.report import Metrics, document, measure, text
from p2pbot.backtest.runner import ReplayError, Run, replay
from p2pbot.backtest.scenario import ScenarioProblem, generate
from p2pbot.backtest.sweep import (
    Axis,
    Objective,
    SweepError,
    parse_axis,
    parse_objective,
    rank,
    snippet,
)
from p2pbot.backtest.sweep import variants as sweep_variants
from p2pbot.backtest.world import History, OrderModel, build

QUIET = ("bot", "strategies")  # the engine's own log lines are not the backtest's output


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `backtest`."""
    p.add_argument("--config", type=Path, action="append", required=True, metavar="FILE",
                   help="a config to run (repeat to compare; the first is the baseline)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, metavar="RECORDING",
                     help="a recording written by `p2pbot export`")
    src.add_argument("--scenario", metavar="NAME",
                     help="generate the history from a simulator scenario (calm, price_war, ...)")
    p.add_argument("--from", dest="since", default=None,
                   help="start: ISO date/time (UTC) or a span before the history's end (6h)")
    p.add_argument("--to", dest="until", default=None, help="end: ISO date/time or a span")
    p.add_argument("--seed", type=int, default=None, help="the scenario's seed (default: its own)")
    p.add_argument("--hours", type=float, default=6.0,
                   help="hours of scenario history to generate (default 6)")
    p.add_argument("--html", type=Path, default=None, metavar="PATH",
                   help="also write the report as a self-contained HTML page with plots")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid axis over the (single) config, e.g. step=0.01,0.02 or "
                        "floor=91,92 (repeat for more axes)")
    p.add_argument("--objective", default="rank1_share",
                   help='how --sweep ranks: "METRIC [subject to METRIC>=X, ...]", e.g. '
                        '"rank1_share subject to margin>=0.3" (default rank1_share)')


def run(args: argparse.Namespace) -> int:
    """Entry point of `backtest`: the report on stdout; exit 2 on bad input, nothing written."""
    try:
        out, html = asyncio.run(_main(args))
    except (ConfigError, data.DataError, ReplayError, SweepError, ScenarioProblem) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if html is not None:
        _write(args.html, html)
    print(out)
    return EXIT_OK


def _write(path: Path, content: str) -> None:
    """Write a file whole or not at all (a temporary file renamed)."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def quiet() -> Iterator[None]:
    """The engine's log lines off while it replays (thousands of 'repriced' lines)."""
    for name in QUIET:
        logger.disable(name)
    try:
        yield
    finally:
        for name in QUIET:
            logger.enable(name)


def _configs(args: argparse.Namespace) -> list[tuple[str, LoadedConfig]]:
    configs, names = [], set()
    for path in args.config:
        loaded = load(path)
        name = path.stem
        while name in names:
            name += "'"
        names.add(name)
        configs.append((name, loaded))
    return configs


def _history(args: argparse.Namespace, interval: float) -> tuple[History, OrderModel]:
    if args.data is not None:
        rec = data.read(args.data)
        entries, orders = rec.entries, OrderModel()
        end = entries[-1][0] if entries else 0.0
        since, until = parse_when(args.since, end), parse_when(args.until, end)
        return build(entries, since, until, source=f"recording {args.data.name}"), orders
    if args.hours <= 0 or args.hours > 24 * 14:
        raise ConfigError(f"--hours {args.hours:g}: between 0 and {24 * 14}")
    history, orders = generate(args.scenario, hours=args.hours, seed=args.seed, interval=interval)
    end = history.span[1]
    since, until = parse_when(args.since, end), parse_when(args.until, end)
    if since is not None or until is not None:
        history = build([(s.at, k, b) for s in history.steps for k, b in
                         [("market", {"asset": s.market[0], "fiat": s.market[1],
                                      "side": s.market[2], "rows": s.rows}),
                          *[("decision", d) for d in s.decisions]]],
                        since, until, source=history.source)
    return history, orders


async def _main(args: argparse.Namespace) -> tuple[str, str | None]:
    configs = _configs(args)
    axes: list[Axis] = [parse_axis(s) for s in args.sweep]
    objective: Objective = parse_objective(args.objective)
    if axes:
        if len(configs) != 1:
            raise SweepError("--sweep varies one config: give exactly one --config")
        configs += sweep_variants(configs[0][1], axes)
    history, orders = _history(args, configs[0][1].app.bot.market_interval)
    if not history.steps:
        raise ConfigError("the history is empty (check --from and --to against the recording's "
                          "span)")
    began = time.perf_counter()
    runs: list[Run] = []
    with quiet():
        for name, loaded in configs:
            runs.append(await replay(name, loaded, history, orders))
    metrics = [measure(r) for r in runs]
    doc = document(history, metrics, runs, time.perf_counter() - began)
    if axes:
        doc["sweep"] = _sweep(objective, axes, metrics, configs[0][1])
        doc["differences"] = doc["differences"][:0]
    out = json.dumps(doc, indent=1) if args.json else _text(doc)
    return out, page(doc, runs) if args.html is not None else None


def _sweep(objective: Objective, axes: list[Axis], metrics: list[Metrics],
           base: LoadedConfig) -> dict[str, Any]:
    ranked = rank(objective, metrics[1:])
    best = ranked[0].name if ranked else None
    return {"objective": objective.text,
            "ranking": [{"name": m.name, objective.metric: m.value(objective.metric),
                         **{k: m.value(k) for k, _, _ in objective.conditions}} for m in ranked],
            "rejected": [m.name for m in metrics[1:] if not objective.allows(m)],
            "best": best, "toml": snippet(axes, best, base) if best else None}


def _text(doc: dict[str, Any]) -> str:
    out = text(doc)
    sweep = doc.get("sweep")
    if not sweep:
        return out
    lines = [out, "", f"sweep ranked by: {sweep['objective']}"]
    for i, r in enumerate(sweep["ranking"], 1):
        lines.append(f"  {i:>2}. {r['name']:<36} " + "  ".join(
            f"{k}={v:g}" for k, v in r.items() if k != "name"))
    if sweep["rejected"]:
        lines.append(f"  not meeting the conditions: {', '.join(sweep['rejected'])}")
    lines += ["", sweep["toml"] or "no variant meets the conditions"]
    return "\n".join(lines)
