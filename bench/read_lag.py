"""Bench: repricing on the `realistic` scenario, where reads lag the bot's own updates.

Runs the `realistic` scenario (search, getDetailByNo and the ads list show an ad's old price
for a while after each update; -9000 wrappers; quantity-state refusals) with the bot pricing
the SELL ad by `undercut` and the BUY ad by `follow_reference`, and counts, from the
simulator's request log of successful `ads/update` calls:

- identical consecutive updates: an ad sent the same value as its previous accepted update;
- fixed-price moves decided on a stale read: the bot believed its ad still had the price from before
  its previous move (the cause of both kinds of churn);
- back-and-forth pairs: an ad went back to the value before its previous update
  (A -> B -> A) although the market the strategy saw (the best competitors' prices and the
  reference) was the same for both moves: only the bot's view of its own ad changed, as
  trusting a stale read makes it do. All A -> B -> A within `--window` simulated seconds
  are counted too, for context: most are the market's bots undercutting and being
  undercut.

    .venv/bin/python bench/read_lag.py [--seed 7] [--hours 1] [--speed 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._rows import emit, wants_rows  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from simulator.app import run_simulator  # noqa: E402
from tests.e2e.support import BUY_AD, SELL_AD, after, running_bot, write_config  # noqa: E402

SCENARIO = "realistic"


def accepted_updates(records: list[dict[str, Any]]) -> dict[str, list[tuple[float, str]]]:
    """(simulated second, value sent) of every accepted ads/update, per ad."""
    per_ad: dict[str, list[tuple[float, str]]] = {}
    for r in records:
        body = r.get("body")
        if r.get("code") != "000000" or not isinstance(body, dict):
            continue
        value = body.get("price") or body.get("priceFloatingRatio")
        per_ad.setdefault(str(body.get("advNo")), []).append((r["time_ms"] / 1000, str(value)))
    return per_ad


def market_of(row: Any) -> tuple[Any, ...]:
    """What the strategy saw of the market for a decision: best prices and the reference."""
    trace = row.trace or {}
    best = tuple(b.get("price") for b in trace.get("best") or ())
    ref = (trace.get("reference") or {}).get("price")
    return best, ref


def stale_flips(rows: list[Any]) -> int:
    """A -> B -> A moves whose last two decisions saw the same market."""
    per_ad: dict[str, list[Any]] = {}
    for row in rows:
        if row.result == "applied" and (row.trace or {}).get("best") is not None:
            per_ad.setdefault(row.ad, []).append(row)
    return sum(1 for moves in per_ad.values() for a, b, c in zip(moves, moves[1:], moves[2:],
                                                                   strict=False)
               if a.target == c.target != b.target
               and market_of(b) == market_of(c))


def stale_beliefs(rows: list[Any], fixed: set[str]) -> int:
    """Moves of fixed-price ads decided while the bot believed its ad still had the price from
    before its previous move (a stale read believed): the cause of both kinds of churn. (A
    floating ad's price moves with the reference, so its price before a move says nothing.)"""
    per_ad: dict[str, list[Any]] = {}
    for row in rows:
        if row.result == "applied" and row.adv_no in fixed:
            per_ad.setdefault(row.ad, []).append(row)
    return sum(1 for moves in per_ad.values() for b, c in zip(moves, moves[1:], strict=False)
               if c.price_before == b.price_before != b.target)


def churn(per_ad: dict[str, list[tuple[float, str]]], window: float) -> dict[str, int]:
    """Identical consecutive updates and back-and-forth pairs, over every ad."""
    same = flips = total = 0
    for sent in per_ad.values():
        total += len(sent)
        same += sum(1 for a, b in zip(sent, sent[1:], strict=False) if a[1] == b[1])
        flips += sum(1 for a, b, c in zip(sent, sent[1:], sent[2:], strict=False)
                     if a[1] == c[1] != b[1] and c[0] - a[0] <= window)
    return {"updates": total, "identical": same, "back_and_forth": flips}


async def run(seed: int, seconds: float, speed: float, window: float,
              settle: float | None = None) -> dict[str, int]:
    """Run the bot on `realistic` and count."""
    ads = SELL_AD.format(floor="90.00", ceiling="96.00") + BUY_AD
    extra = "my_ads_interval = 20" + ("" if settle is None else f"\nsettle_seconds = {settle}")
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), ads, extra)
        async with run_simulator(SCENARIO, speed=speed, seed=seed) as sim:
            async with running_bot(sim, config, Path(tmp) / "b.db") as bot:
                rows: list[Any] = []
                bot.engine.observers.append(lambda ad, row: rows.append(row))
                await asyncio.wait_for(after(bot, seconds).wait(), timeout=seconds / speed + 120)
            records = sim.requests("update_ad")
    got = churn(accepted_updates(records), window)
    got["stale_flips"] = stale_flips(rows)
    fixed = {str(r["body"].get("advNo")) for r in records
             if isinstance(r.get("body"), dict) and "price" in r["body"]}
    got["stale_beliefs"] = stale_beliefs(rows, fixed)
    got["refused"] = sum(1 for r in records if r.get("code") != "000000")
    return got


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=None,
                        help="[bot] settle_seconds (0: believe every read, as without the window)")
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    setup_logging("ERROR")
    started = time.perf_counter()
    got = asyncio.run(run(args.seed, args.hours * 3600, args.speed, args.window, args.settle))
    took = time.perf_counter() - started
    print(f"{SCENARIO} seed={args.seed} simulated={args.hours:g} h speed={args.speed:g}x")
    print(f"  accepted ad updates: {got['updates']}; refused: {got['refused']}")
    print(f"  identical consecutive updates: {got['identical']}")
    print(f"  back-and-forth pairs (same market both moves): {got['stale_flips']}")
    print(f"  fixed-price moves decided on a stale read of the ad's own price: {got['stale_beliefs']}")
    print(f"  all A -> B -> A within {args.window:g} s, market moves included: "
          f"{got['back_and_forth']}")
    print(f"  real time: {took:.1f} s")
    if args.rows or wants_rows():
        how = f"{SCENARIO} seed {args.seed}, {args.hours:g} simulated h at {args.speed:g}x"
        for figure, key in (("read lag: identical consecutive updates", "identical"),
                            ("read lag: back-and-forth on a stale read", "stale_flips")):
            emit(figure, "0", str(got[key]), got[key] / 1.0, how)


if __name__ == "__main__":
    main()
