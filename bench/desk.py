"""Bench: how fast the desk reacts, against the simulator on its stepped clock.

The real Bot (config/example.toml: the SELL ad by `undercut`, the BUY ad by
`follow_reference`, the order desk and its chat greetings) runs on the `calm` scenario
with the simulator's stepped clock (tests.e2e.support: time moves only when the bot has
nothing left to do, queued requests included; sleepers wake in deadline order; the round
trip costs no simulated time), once per market interval: 1, 3 and 10 s, fixed (the
[cadence] band's fast end set to its slow end).

- reaction: every 20 to 40 simulated seconds the bench moves the best competitor of the
  SELL ad to 0.02 below it; the reaction is the time from that move to the bot's first
  accepted update that beats it. Its physical limit, move by move, is the wait for the
  next search of the SELL ad's market after the move (interval/2 on average, but the
  moves of one run fall where they fall: at 10 s the median wait of 119 moves is anywhere
  from about 4 to 6 s) + one round trip (search reply, then the update: measured as the
  time from the last search before each reacting update to that update: 0 here). Median
  and p90 of the reactions, each as a ratio to the same quantile of those limits, both
  from the same moves of the same run (1.00: the bot updated on the first search after
  every move).
- greeting latency: from an order's creation to the first chat message the bot sent on it,
  over the orders of all runs; its limit is orders_interval/2 + one round trip (the chat
  pushes a new order, so the bot greets without waiting for the orders poll).

    .venv/bin/python bench/desk.py [--minutes 60] [--seed 5] [--rows]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import re
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rows import emit, wants_rows  # noqa: E402
from bot.app import Bot  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from simulator.app import Simulator, run_simulator  # noqa: E402
from simulator.world.market import Market  # noqa: E402
from tests.e2e.support import stepped_bot  # noqa: E402

EXAMPLE = ROOT / "config" / "example.toml"
INTERVALS = (1, 3, 10)
DEBUG = False  # print what the bot decided 5 s after each move
ORDERS_INTERVAL = 15.0  # [bot] orders_interval of the example


def config(folder: Path, interval: float) -> Path:
    """The example config at a fixed `interval` (the [cadence] band's fast end = its slow end),
    its SELL ad free to follow every move (no pacing, a floor and a reference band far below:
    the bench moves the market down all the run, by a bot cushion at each move when the
    profiles call its competitor a bot)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"^market_interval = \d+", f"market_interval = {interval:g}", text, flags=re.M)
    text = re.sub(r"^fast = 1 ", f"fast = {interval:g} ", text, count=1, flags=re.M)  # fixed
    text = text.replace('floor = "92.00"', 'floor = "60.00"', 1)
    text = re.sub(r"^max_updates = 60 ", "max_updates = 5000 ", text, count=1, flags=re.M)
    text = re.sub(r"^min_interval = 10 ", "min_interval = 0 ", text, count=1, flags=re.M)
    text = re.sub(r'^reference_band = "3"', 'reference_band = "50"', text, count=1, flags=re.M)
    text = re.sub(r'^max_drift_per_hour = "2.00"', 'max_drift_per_hour = "50"', text, count=1,
                  flags=re.M)
    path = folder / f"desk-{interval:g}.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def mover(sim: Simulator, bot: Bot, clock: Clock, rng: random.Random,
                moves: list[tuple[int, Decimal]]) -> None:
    """Every 20-40 simulated seconds a competitor the bench owns goes 0.02 below the SELL ad.

    It is a copy of the ad's best competitor (so the ad's filters keep it) that the market
    never moves by itself: each move is the bench's, at a known time."""
    mine = None
    while True:
        await clock.sleep(rng.uniform(20, 40))
        sell = next((a for a in bot.ads if a.own is not None and a.own.side == "SELL"), None)
        if sell is None or sell.own is None or sell.best is None:
            continue
        market: Market = sim.world.markets[(sell.own.asset, sell.own.fiat)]  # type: ignore[attr-defined]
        if mine is None:
            best = next((ad for ad in market.books["SELL"] if ad.adv_no == sell.best.adv_no), None)
            if best is None:
                continue
            mine = dataclasses.replace(best, role="bench", next_reprice_ms=10**15,
                                       adv_no="9" + best.adv_no[1:])
            market.books["SELL"].append(mine)
        price = sell.own.price - Decimal("0.02")
        now = sim.clock.now_ms()
        Market._set_price(mine, price, now)
        moves.append((now, price))
        if DEBUG:
            await clock.sleep(5)
            print("moved", price, "->", sell.last and (sell.last.result, sell.last.reason),
                  file=sys.stderr)


async def orders(sim: Simulator, clock: Clock, rng: random.Random) -> None:
    """An order on the merchant's first online ad every 40-80 simulated seconds (as the
    simulator's control API opens one), for the greeting latency."""
    world = sim.world  # type: ignore[attr-defined]
    while True:
        await clock.sleep(rng.uniform(40, 80))
        ad = next((a for a in world.account.ads.values() if a.status == 1), None)
        if ad is None:
            continue
        now = world.clock.now_ms()
        with contextlib.suppress(ValueError):
            world.emit(world.orders.create(ad, world.account.market_of(ad).scales, now, None), now)


def reactions(moves: list[tuple[int, Decimal]], updates: list[dict[str, Any]],
              searches: list[int]) -> tuple[list[float], list[float], list[float]]:
    """(seconds from each move to the first accepted update beating it, round trips, waits
    from each of those moves to the first search of the market after it), `searches` being
    the times of the SELL ad's market's searches."""
    took, trips, waits = [], [], []
    for at, price in moves:
        hit = next((u for u in updates if u["time_ms"] >= at and u["price"] < price), None)
        seen = next((s for s in searches if s >= at), None)
        if hit is None or seen is None:
            continue
        took.append((hit["time_ms"] - at) / 1000)
        waits.append((seen - at) / 1000)
        before = [s for s in searches if s <= hit["time_ms"]]
        if before:
            trips.append((hit["time_ms"] - before[-1]) / 1000)
    return took, trips, waits


def greetings(sim: Simulator) -> list[float]:
    """Seconds from each order's creation to the bot's first chat message on it."""
    world = sim.world  # type: ignore[attr-defined]
    out = []
    for order_no, order in world.orders.orders.items():
        mine = [m.create_ms for m in world.chatlog.by_order.get(order_no, []) if m.self_]
        if mine:
            out.append((min(mine) - order.create_ms) / 1000)
    return out


async def run(interval: float, minutes: float, seed: int, folder: Path) -> dict[str, Any]:
    """One run at `interval` on the stepped clock: the reactions, round trips and greeting
    latencies."""
    async with run_simulator("calm", seed=seed, stepped=True) as sim, \
            stepped_bot(sim, config(folder, interval), folder / f"desk-{interval:g}.db",
                        seed=seed) as running:
        bot, clock = running.bot, running.bot.clock
        started = sim.clock.now_ms()
        moves: list[tuple[int, Decimal]] = []
        moving = asyncio.create_task(mover(sim, bot, clock, random.Random(seed), moves))
        ordering = asyncio.create_task(orders(sim, clock, random.Random(seed + 1)))
        try:
            await running.run_for(minutes * 60)
        finally:
            moving.cancel()
            ordering.cancel()
            await asyncio.gather(moving, ordering, return_exceptions=True)
        updates = [{"time_ms": r["time_ms"], "price": Decimal(str(r["body"]["price"]))}
                   for r in sim.requests("update_ad", since=started)
                   if r.get("code") == "000000" and isinstance(r.get("body"), dict)
                   and r["body"].get("price") is not None]
        sell = next(a for a in bot.ads if a.own is not None and a.own.side == "SELL")
        assert sell.market is not None
        searches = [r["time_ms"] for r in sim.requests("search", since=started)
                    if isinstance(r.get("body"), dict)
                    and (r["body"].get("asset"), r["body"].get("fiat"),
                         r["body"].get("tradeType")) == sell.market]
        took, trips, waits = reactions(moves, updates, searches)
        return {"reactions": took, "trips": trips, "waits": waits, "moves": len(moves),
                "greetings": greetings(sim)}


def pct(values: list[float], q: float) -> float:
    """The q-quantile, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    """Run at each interval and print the figures (and the rows with --rows)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes per run")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    setup_logging("CRITICAL")
    began = time.perf_counter()
    greeted: list[float] = []
    trips_all: list[float] = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for interval in INTERVALS:
            got = asyncio.run(run(interval, args.minutes, args.seed, Path(tmp)))
            results[interval] = got
            greeted += got["greetings"]
            trips_all += got["trips"]
    rows = args.rows or wants_rows()
    for interval, got in results.items():
        took, trips, waits = got["reactions"], got["trips"] or [0.0], got["waits"]
        if not took:
            print(f"interval {interval} s: no reaction measured ({got['moves']} moves)")
            continue
        trip = statistics.median(trips)
        med, p90 = statistics.median(took), pct(took, 0.9)
        limit, limit90 = statistics.median(waits) + trip, pct(waits, 0.9) + trip
        print(f"interval {interval:>2} s: reaction median {med:.2f} s, p90 {p90:.2f} s over "
              f"{len(took)} of {got['moves']} moves; limit (wait for the next search + round "
              f"trip) median {limit:.2f} s, p90 {limit90:.2f} s (interval/2 = {interval / 2:g} s)")
        if rows:
            how = (f"calm, stepped clock, {len(took)} moves of the best competitor in "
                   f"{args.minutes:g} simulated min; limit = the wait from each move to the "
                   f"next search + round trip, same quantile (on average {interval}/2 for the median)")
            emit(f"reaction median, market interval {interval} s", f"{limit:.2f} s (limit)",
                 f"{med:.2f} s", med / limit, how)
            emit(f"reaction p90, market interval {interval} s", f"{limit90:.2f} s (limit)",
                 f"{p90:.2f} s", p90 / limit90, how.replace(f"on average {interval}/2 for the median",
                                                            f"at most {interval}"))
    if greeted:
        limit = ORDERS_INTERVAL / 2 + (statistics.median(trips_all) if trips_all else 0.0)
        med = statistics.median(greeted)
        print(f"greeting latency: median {med:.2f} s, p90 {pct(greeted, 0.9):.2f} s over "
              f"{len(greeted)} orders; limit orders_interval/2 + round trip {limit:.2f} s")
        if rows:
            emit("greeting latency (order created -> greeting sent), median", f"{limit:.2f} s (limit)",
                 f"{med:.2f} s", med / limit,
                 f"calm, stepped clock, {len(greeted)} orders; limit = orders_interval/2 + round trip "
                 "(the chat pushes a new order: no wait for the orders poll)")
    print(f"real time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
