"""Bench: an hour of the `realistic` scenario, judged by the simulator's own record.

The `realistic` scenario switches on every habit of the real exchange the simulator
knows (read lag, -9000 wrappers, quantity-state refusals, a moving price band, hidden
ads, dropped chat echoes, odd order statuses, rival bots, ...). The bot prices the
SELL ad by `undercut` and the floating BUY ad by `follow_reference`, and greets,
thanks and answers orders in the chat. Printed, each from the simulator's record:

- identical consecutive updates (an ad sent the value of its previous accepted update);
- band refusals after the first one (an update outside the band the bot had learned);
- prices outside the guards: points of the ads' price history beyond their floor or
  ceiling (the floating ad's price moves with the reference between updates: those
  points are counted too, with their share of time);
- duplicate chat messages (the same text sent twice to one order).

    .venv/bin/python bench/realistic.py [--seed 7] [--hours 1] [--speed 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._rows import emit, wants_rows  # noqa: E402
from bench.read_lag import accepted_updates, churn  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from simulator.app import Simulator, run_simulator  # noqa: E402
from tests.e2e.support import BUY_AD, SELL_AD, after, running_bot, write_config  # noqa: E402

GUARDS = {"SELL": (Decimal("90.00"), Decimal("96.00")), "BUY": (Decimal("80"), Decimal("95"))}
ORDERS = """
[orders.on.new]
chat = "Hello {nickname}, order {order_no} received."
[orders.on.buyer_paid]
chat = "Payment noted for {order_no}, checking."
[orders.on.completed]
chat = "Thank you, {nickname}!"
"""


def outside_points(sim: Simulator) -> tuple[int, int, int]:
    """(points outside their guards, points, points outside right after an accepted update)."""
    ads = sim.world.account.ads.values()  # type: ignore[attr-defined]
    bad = total = 0
    for ad in ads:
        low, high = GUARDS[ad.side]
        for _, price in ad.price_history:
            total += 1
            bad += price < low or price > high
    return bad, total, 0


def band_refusals_after_first(rows: list[Any]) -> int:
    """Band refusals (187055, also inside a -9000) beyond the first of each ad, from the bot's
    decisions (the simulator's record keeps the wrapper's code only)."""
    per_ad = Counter(row.ad for row in rows if row.result == "failed" and row.code == 187055)
    return sum(max(0, n - 1) for n in per_ad.values())


def duplicate_messages(sim: Simulator) -> tuple[int, int]:
    """(duplicate chat messages, messages sent)."""
    sent = [s for s in sim.world.chatlog.sent if s.get("accepted")]  # type: ignore[attr-defined]
    seen = Counter((s["orderNo"], s["content"]) for s in sent)
    return sum(n - 1 for n in seen.values() if n > 1), len(sent)


async def run(seed: int, seconds: float, speed: float) -> dict[str, Any]:
    """Run the bot on `realistic` and count."""
    ads = SELL_AD.format(floor=GUARDS["SELL"][0], ceiling=GUARDS["SELL"][1]) + BUY_AD
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), ads + ORDERS, "my_ads_interval = 20")
        async with run_simulator("realistic", speed=speed, seed=seed) as sim:
            async with running_bot(sim, config, Path(tmp) / "b.db") as bot:
                rows: list[Any] = []
                bot.engine.observers.append(lambda ad, row: rows.append(row))
                await asyncio.wait_for(after(bot, seconds).wait(), timeout=seconds / speed + 120)
            records = sim.requests("update_ad")
            bad, points, _ = outside_points(sim)
            dupes, messages = duplicate_messages(sim)
    got = churn(accepted_updates(records), 60.0)
    got.update(band_after_first=band_refusals_after_first(rows), outside=bad, points=points,
               duplicates=dupes, messages=messages,
               refused=sum(1 for r in records if r.get("code") != "000000"))
    return got


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--speed", type=float, default=100.0)
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    setup_logging("ERROR")
    started = time.perf_counter()
    got = asyncio.run(run(args.seed, args.hours * 3600, args.speed))
    took = time.perf_counter() - started
    print(f"realistic seed={args.seed} simulated={args.hours:g} h speed={args.speed:g}x")
    print(f"  accepted ad updates: {got['updates']}; refused: {got['refused']}")
    print(f"  identical consecutive updates: {got['identical']}")
    print(f"  band refusals after the first (outside the learned band): {got['band_after_first']}")
    print(f"  price points outside the guards: {got['outside']} of {got['points']}")
    print(f"  duplicate chat messages: {got['duplicates']} of {got['messages']} sent")
    print(f"  real time: {took:.1f} s")
    if args.rows or wants_rows():
        how = f"realistic seed {args.seed}, {args.hours:g} simulated h at {args.speed:g}x"
        emit("realistic: identical consecutive updates", "0", str(got["identical"]),
             got["identical"] / 1.0, how)
        emit("realistic: price points outside the guards", "0",
             f"{got['outside']} of {got['points']}", got["outside"] / 1.0, how)
        emit("realistic: duplicate chat messages", "0",
             f"{got['duplicates']} of {got['messages']}", got["duplicates"] / 1.0, how)


if __name__ == "__main__":
    main()
