"""Bench: what repricing is worth in the simulator's price war, and what rival bots cost.

Runs the `price_war` scenario for a simulated hour with the same seed: once with
nobody repricing the SELL ad (it keeps its 93.40), once with the bot on `undercut`,
and once more with rival bots added to the USDT/RUB market (`--rivals` bots that
answer any move within 1 to 3 s, `--mirrors` bots that sit one tick below our ad
within 1 to 3 s; 0 and 0 skip that run). For each run with the bot it prints
orders won by that ad, rank-1 share at search times, updates sent (and when: how
many by each quarter of the run, to see whether the edit budget is paced or spent
early), the margin kept (the median of how far the ad's price sat above its floor
at search times: what the war made it give up), and the real time taken.

    .venv/bin/python bench/price_war.py [--seed 7] [--hours 1] [--speed 400] [--config PATH]
                                        [--rivals 1] [--mirrors 1] [--scenario price_war]

`--scenario calm` plays the same on a quiet market (3 slow bots), where the rivals are
the only fast ones and what they cost shows plainly.

Without `--config` the bot runs a bench ad with a budget it never reaches
(1000 updates an hour); `--config config/example.toml` runs the demo's own file,
edit budget included (only its USDT SELL ad is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.logging import setup_logging  # noqa: E402
from simulator.app import Simulator, run_simulator  # noqa: E402
from simulator.scenario import Scenario, load_scenario  # noqa: E402
from tests.e2e.support import SELL_AD, after, running_bot, write_config  # noqa: E402


def sell_orders(sim: Simulator) -> int:
    """Orders the simulator gave the merchant's USDT/RUB SELL ad."""
    own = {a.adv_no for a in sim.world.account.ads.values()  # type: ignore[attr-defined]
           if a.side == "SELL" and a.asset == "USDT"}
    return sum(1 for o in sim.world.orders.to_control() if o["advNo"] in own)  # type: ignore[attr-defined]


async def baseline(seed: int, seconds: float, speed: float, name: str = "price_war") -> int:
    """Orders with nobody repricing."""
    async with run_simulator(name, speed=0, seed=seed) as sim:
        sim.advance(seconds)
        return sell_orders(sim)


FLOOR = Decimal("91.00")


def war(rivals: int = 0, mirrors: int = 0, name: str = "price_war") -> Scenario:
    """A scenario (price_war by default), with rival and mirror bots added to its USDT/RUB
    market."""
    spec = load_scenario(name)
    world = copy.deepcopy(spec.world)
    market = next(m for m in world["markets"] if m.get("asset", "USDT") == "USDT")
    market["rival_bots"], market["mirror_bots"] = rivals, mirrors
    return spec.model_copy(update={"world": world})


async def with_bot(seed: int, seconds: float, speed: float, config_file: Path | None = None,
                   scenario: Scenario | None = None) -> dict[str, Any]:
    """Orders, rank-1 share, updates and margin kept of the USDT SELL ad with the bot repricing."""
    with tempfile.TemporaryDirectory() as tmp:
        config = config_file or write_config(Path(tmp), SELL_AD.format(floor=f"{FLOOR}",
                                                                       ceiling="96.00"))
        async with run_simulator(scenario or war(), speed=speed, seed=seed) as sim:
            async with running_bot(sim, config, Path(tmp) / "b.db") as bot:
                start = bot.clock.time()
                await asyncio.wait_for(after(bot, seconds).wait(), timeout=seconds / speed * 4 + 30)
                sell = next(a.own.adv_no for a in bot.ads if a.own is not None
                            and a.own.side == "SELL" and a.own.asset == "USDT")
                rows = [r for r in await bot.decisions.recent(limit=1_000_000) if r.adv_no == sell]
            rows = [r for r in rows if r.at <= start + seconds]
            standings = [r.trace.get("standing") for r in rows if r.trace for _ in range(r.repeats)]
            margins = [r.price_before - FLOOR for r in rows if r.trace for _ in range(r.repeats)]
            applied = sorted(r.at - start for r in rows if r.result == "applied")
            return {
                "margin": statistics.median(margins) if margins else None,
                "orders": sell_orders(sim),
                "searches": len(standings),
                "rank1_share": sum(1 for s in standings if s == 1) / max(1, len(standings)),
                "updates": len(applied),
                "by_quarter": [sum(1 for t in applied if t <= seconds * q / 4) for q in (1, 2, 3, 4)],
            }


def main() -> None:
    """Run both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--speed", type=float, default=400.0)
    parser.add_argument("--config", type=Path, default=None,
                        help="run the bot with this TOML file (e.g. config/example.toml)")
    parser.add_argument("--rivals", type=int, default=1,
                        help="rival bots (answer within 1-3 s) added for the third run")
    parser.add_argument("--mirrors", type=int, default=1,
                        help="mirror bots (one tick below our ad, within 1-3 s) for the third run")
    parser.add_argument("--scenario", default="price_war", help="price_war (default) or calm")
    args = parser.parse_args()
    setup_logging("ERROR")
    seconds = args.hours * 3600
    started = time.perf_counter()
    still = asyncio.run(baseline(args.seed, seconds, args.speed, args.scenario))
    runs = [(args.scenario, asyncio.run(with_bot(args.seed, seconds, args.speed, args.config,
                                                 war(0, 0, args.scenario))))]
    if args.rivals or args.mirrors:
        rivals = war(args.rivals, args.mirrors, args.scenario)
        runs.append((f"+ {args.rivals} rival, {args.mirrors} mirror",
                     asyncio.run(with_bot(args.seed, seconds, args.speed, args.config, rivals))))
    took = time.perf_counter() - started
    print(f"{args.scenario} seed={args.seed} simulated={args.hours:g} h speed={args.speed:g}x "
          f"config={args.config or f'bench ad (floor {FLOOR}, max_updates 1000)'}")
    print(f"  orders on the SELL ad, nobody repricing : {still}")
    for name, bot in runs:
        print(f"  {name}: bot on undercut")
        print(f"    orders on the SELL ad: {bot['orders']}")
        print(f"    rank 1 among filtered competitors at search time: {bot['rank1_share']:.0%} "
              f"of {bot['searches']:.0f} searches")
        print(f"    ad updates sent: {bot['updates']:.0f} (by the end of each quarter: "
              f"{' / '.join(str(n) for n in bot['by_quarter'])})")
        margin = "n/a" if bot["margin"] is None else f"{bot['margin']:.2f}"
        print(f"    margin kept above the floor (median at search time): {margin}")
    print(f"  real time: {took:.1f} s")


if __name__ == "__main__":
    main()
