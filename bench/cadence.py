"""Bench: the adaptive market cadence (issue 14, item 3): reaction and weight, busy vs quiet.

The real bot on the simulator's stepped clock (tests.e2e.support): simulated time moves
only when the bot has nothing left to do, so a run is the same on any machine and the round
trip costs no simulated time. One SELL ad on `undercut` (no min_interval, a budget it never
reaches, so the cadence alone sets how fast it reacts); the market's competitors are frozen
and the bench moves them itself: each move puts the best counted competitor 0.02 below our
ad. For every move, the reaction is the time from the move to our next accepted update (the
simulator's request log). The physical limit of polling at an interval I is I/2 (the move
lands at a random phase of the poll; the round trip is 0 here).

- busy: a move every 2 to 6 s. The adaptive band (1 to 10 s) against today's fixed 10 s
  and the physical limit at the fast end (0.5 s);
- quiet: a move every 40 to 80 s: the first read after a lull comes at the slow end, so the
  limit is that of the slow end (5 s);
- weight: searches an hour (weight 1 each) on a quiet market and on a busy one, against the
  fixed 10 s (360 an hour) and the cap ([cadence] market_share of the weight budget).

    .venv/bin/python bench/cadence.py [--minutes 10] [--seed 7] [--rows]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosqlite  # noqa: E402
from loguru import logger  # noqa: E402

from bot.chat.session import ChatTimings  # noqa: E402
from bot.pricing.cadence import MOVING, Pace, plan  # noqa: E402
from simulator.app import run_simulator  # noqa: E402
from tests.e2e.support import SELL_ADV as SELL_AD  # noqa: E402
from tests.e2e.support import START_MS, Lives, Stepper, inline_sqlite, loop_watch, scenario  # noqa: E402

BUSY, QUIET = (2.0, 6.0), (40.0, 80.0)  # seconds between two moves
CAP_PER_HOUR = 0.5 * 6000 * 60  # the default market_share of the default weight budget


def wants_rows() -> bool:
    """`--rows`: print the table rows (JSON lines) on stdout."""
    return "--rows" in sys.argv


def emit(figure: str, goal: str, measured: str, ratio: float | None, how: str) -> None:
    """One row of the bench table."""
    print(json.dumps({"figure": figure, "goal": goal, "measured": measured,
                      "ratio": None if ratio is None else round(ratio, 2), "how": how}))


def config(fast: float, slow: float) -> str:
    """The bench ad: undercut, nothing but the cadence between a move and our answer."""
    return f"""
[bot]
orders_interval = 300
my_ads_interval = 600

[cadence]
fast = {fast}
slow = {slow}

[[ads]]
name = "sell"
adv_no = "{SELL_AD}"
strategy = "undercut"
[ads.params]
step = "0.01"
[ads.guards]
floor = "60"
ceiling = "99"
min_interval = 0
max_updates = 100000
max_step = "50"
"""


async def one_run(gaps: tuple[float, float] | None, fast: float, slow: float, minutes: float,
                  seed: int) -> tuple[list[float], int]:
    """(reaction of every move in seconds, searches sent) over `minutes` simulated minutes."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        async with run_simulator(scenario(speed=0, three_ads=False), start_ms=START_MS,
                                 stepped=True) as sim:
            path = Path(tmp) / "bot.toml"
            path.write_text(config(fast, slow), encoding="utf-8")
            lives = Lives(sim, path, Path(tmp) / "bot.db", seed, ChatTimings())
            stepper, market = Stepper(sim), sim.world.markets[("USDT", "RUB")]
            for book in market.books.values():
                for listing in book:
                    listing.next_reprice_ms = 10**15  # nobody moves but the bench
            moves: list[int] = []
            with loop_watch(lives):
                life = lives.start()
                await stepper.to(START_MS + 60_000)  # started, settled at its price
                began, end = stepper.now_ms, stepper.now_ms + int(minutes * 60_000)
                while stepper.now_ms < end:
                    if gaps is None:
                        await stepper.to(end)
                        break
                    await stepper.to(min(end, stepper.now_ms + int(rng.uniform(*gaps) * 1000)))
                    moves.append(_move(life, market, stepper.now_ms))
                await stepper.to(stepper.now_ms + int(slow * 1000) + 1000)  # the last answer
                await lives.stop()
            updates = sorted(r["time_ms"] for r in sim.requests("update_ad", since=began)
                             if r.get("code") == "000000")
            searches = sum(1 for r in sim.requests("search", since=began) if r["time_ms"] < end)
    reactions = []
    for at in moves:
        answer = next((u for u in updates if u >= at), None)
        if answer is not None:
            reactions.append((answer - at) / 1000)
    return reactions, searches


def _move(life: Any, market: Any, now_ms: int) -> int:
    """Put the best competitor our ad counts 0.02 below our ad; returns when."""
    ad = life.bot.ads[0]
    ours = ad.own.price
    best = ad.best.adv_no if ad.best is not None else None
    rival = next((x for x in market.books["SELL"] if x.adv_no == best),
                 min(market.books["SELL"], key=lambda x: x.price))
    rival.price, rival.update_ms = ours - Decimal("0.02"), now_ms
    return now_ms


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", action="store_true")
    args = parser.parse_args()
    logger.remove()
    real = time.perf_counter()
    aiosqlite.connect = inline_sqlite  # type: ignore[assignment]  # the store in the loop's thread
    m, seed = args.minutes, args.seed
    busy, busy_searches = await one_run(BUSY, 1.0, 10.0, m, seed)
    busy_fixed, _ = await one_run(BUSY, 10.0, 10.0, m, seed)
    quiet, _ = await one_run(QUIET, 1.0, 10.0, m, seed)
    _, calm_searches = await one_run(None, 1.0, 10.0, m, seed)
    per_hour = 60.0 / m
    how = f"stepped simulator clock, {m:g} simulated min, seed {seed}, round trip 0"
    rows = [
        ("reaction median, busy market, adaptive 1-10 s", 0.5, statistics.median(busy),
         f"{how}; {len(busy)} moves 2-6 s apart; limit at the fast end: 1 s / 2"),
        ("reaction p90, busy market, adaptive 1-10 s", 1.0, percentile(busy, 0.9),
         f"{how}; limit p90 at 1 s: 0.9 s (1.0 allowed)"),
        ("reaction median, busy market, fixed 10 s (before)", None, statistics.median(busy_fixed),
         f"{how}; the same moves at the fixed 10 s interval (its limit: 5 s)"),
        ("reaction median, quiet market, adaptive 1-10 s", 5.0, statistics.median(quiet),
         f"{how}; {len(quiet)} moves 40-80 s apart; limit at the slow end: 10 s / 2"),
        ("reaction p90, quiet market, adaptive 1-10 s", 9.0, percentile(quiet, 0.9),
         f"{how}; limit p90 at 10 s: 9 s"),
    ]
    for figure, limit, value, note in rows:
        print(f"{figure}: {value:.2f} s (limit {limit or '-'} s)", file=sys.stderr)
        if args.rows:
            emit(figure, "-" if limit is None else f"{limit:g} s", f"{value:.2f} s",
                 None if limit is None else value / limit, note)
    markets = 200
    planned = plan({i: Pace(1.0, MOVING) for i in range(markets)}, weight=1,
                   cap_per_minute=CAP_PER_HOUR / 60)
    weights = [
        (f"market read weight per hour, {markets} busy markets (planned)", CAP_PER_HOUR,
         sum(3600 / p.interval for p in planned.values()),
         f"the planner: each at {next(iter(planned.values())).interval:.1f} s instead of 1 s; "
         "never above the cap"),
        ("market read weight per hour, quiet market, adaptive", 360.0, calm_searches * per_hour,
         f"{how}; goal: the fixed 10 s (360/h)"),
        ("market read weight per hour, busy market, adaptive", CAP_PER_HOUR,
         busy_searches * per_hour, f"{how}; goal: the cap (market_share 0.5 of 6000/min)"),
    ]
    for figure, goal, value, note in weights:
        print(f"{figure}: {value:.0f} (goal at most {goal:.0f})", file=sys.stderr)
        if args.rows:
            emit(figure, f"{goal:.0f}", f"{value:.0f}", value / goal, note)
    print(f"real time: {time.perf_counter() - real:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
