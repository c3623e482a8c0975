"""Bench: the price war, our bot at its default bot-war settings against the same bot as a typical peer.

Runs the `price_war` scenario (30 bots answering within 1 s, a jumpy reference) on the
simulator's stepped clock (tests.e2e.support: time moves only when the bot has nothing
left to do, sleepers wake in deadline order; the same seed gives the same run on a slow or
a fast machine, and the round trip costs no simulated time), for each seed and each way of
running the bot's USDT/RUB SELL ad (`undercut`, floor 91.00, a budget it never reaches):

- "default": the bot's defaults: the strategy's (`on_bot_war`, anti-ratchet, no flip) and
  the adaptive market cadence (no [bot] market_interval, no [cadence] table: 1 s while the
  market moves, up to 10 s when it is quiet);
- "today": what `undercut` did before bot wars were handled (race every bot, no flip guard,
  no follow limit), at the fixed 10 s polling of that time: the before of the before/after;
- "peer 15 s", "peer 30 s": a typical peer: fixed 15 s or 30 s polling, undercut by one tick,
  no guards (no minimum interval, no budget), no bot-war policy.

Figures per run, sampled every 5 simulated seconds from the simulator itself (so a slow
poller is judged at the same instants as a fast one): rank-1 share (no competitor that
counts, i.e. not a decoy, strictly better than our ad: level counts as first, as the bot's
own standing does), edits (updates applied), the median margin above the floor, orders won.
Medians over the seeds.

    .venv/bin/python bench/price_war.py [--seeds 1,2,3] [--hours 1] [--rivals 0] [--mirrors 0]
                                        [--scenario price_war] [--rows]

`--rivals`/`--mirrors` add the simulator's fast rival bots (answer within 1-3 s) and mirror
bots (one tick below our ad) to the USDT/RUB market. `--rows` prints the bench table's rows
(bench/table.py) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import faulthandler
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import Bot  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from simulator.app import Simulator, run_simulator  # noqa: E402
from simulator.scenario import Scenario, load_scenario  # noqa: E402
from tests.e2e.support import stepped_bot  # noqa: E402

FLOOR = Decimal("91.00")
SAMPLE = 5.0  # simulated seconds between samples

AD = """
[bot]
{bot}

[[ads]]
name = "sell"
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "undercut"
[ads.params]
{params}
[ads.filters]
min_completion_rate = "0"
decoy_max_amount = "1000"
[ads.guards]
floor = "{floor}"
ceiling = "96.00"
max_updates = {max_updates}
min_interval = {min_interval}
"""

TODAY = 'on_bot_war = "race"\nbot_cushion = 0\nflip_window = 0'


@dataclass(frozen=True)
class Way:
    """One way of running the ad."""

    name: str
    interval: float | None  # [bot] market_interval (fixed); None: the cadence band (default)
    params: str = ""
    max_updates: int = 1000
    min_interval: float = 5


WAYS = (
    Way("default", None),
    Way("today", 10, TODAY),
    Way("peer 15 s", 15, TODAY, 100_000, 0),
    Way("peer 30 s", 30, TODAY, 100_000, 0),
)


def war(rivals: int = 0, mirrors: int = 0, name: str = "price_war") -> Scenario:
    """A scenario (price_war by default), with rival and mirror bots added to its USDT/RUB
    market."""
    spec = load_scenario(name)
    world = copy.deepcopy(spec.world)
    market = next(m for m in world["markets"] if m.get("asset", "USDT") == "USDT")
    market["rival_bots"], market["mirror_bots"] = rivals, mirrors
    return spec.model_copy(update={"world": world})


def sample(sim: Simulator) -> tuple[bool, Decimal] | None:
    """(rank 1 among the competitors that count, margin above the floor) of our SELL ad now."""
    account = sim.world.account  # type: ignore[attr-defined]
    own = next((a for a in account.ads.values() if a.side == "SELL" and a.asset == "USDT"), None)
    if own is None or own.status != 1:
        return None
    market = sim.world.markets[("USDT", own.fiat)]  # type: ignore[attr-defined]
    better = sum(1 for c in market.books["SELL"] if c.role != "decoy" and c.price < own.price)
    return better == 0, own.price - FLOOR


def sell_orders(sim: Simulator) -> int:
    """Orders the simulator gave the merchant's USDT/RUB SELL ad."""
    own = {a.adv_no for a in sim.world.account.ads.values()  # type: ignore[attr-defined]
           if a.side == "SELL" and a.asset == "USDT"}
    return sum(1 for o in sim.world.orders.to_control() if o["advNo"] in own)  # type: ignore[attr-defined]


async def run(way: Way, seed: int, hours: float, scenario: Scenario) -> dict[str, Any]:
    """One simulated run of `way` on the stepped clock: its figures.

    The bench steps time itself, SAMPLE seconds at a time (every sleeper due within a step is
    woken in deadline order, the loop settled between two moves), and samples the market
    between two steps."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bot.toml"
        params = way.params if "step" in way.params else f'step = "0.01"\n{way.params}'
        bot_table = "" if way.interval is None else f"market_interval = {way.interval:g}"
        config.write_text(AD.format(bot=bot_table, params=params, floor=FLOOR,
                                    max_updates=way.max_updates, min_interval=way.min_interval),
                          encoding="utf-8")
        async with run_simulator(scenario, seed=seed, stepped=True) as sim, \
                stepped_bot(sim, config, Path(tmp) / "b.db", seed=seed) as running:
            samples: list[tuple[bool, Decimal]] = []
            stepper = running.stepper
            end = stepper.now_ms + int(hours * 3_600_000)
            while stepper.now_ms < end:
                await stepper.to(min(end, stepper.now_ms + int(SAMPLE * 1000)))
                got = sample(sim)
                if got is not None:
                    samples.append(got)
            rows = await running.bot.decisions.recent(limit=1_000_000)
            sell = _sell(running.bot)
            edits = sum(1 for r in rows if r.result == "applied" and r.adv_no == sell)
            return {"rank1": sum(1 for r1, _ in samples if r1) / max(1, len(samples)),
                    "margin": statistics.median(m for _, m in samples) if samples else None,
                    "edits": edits, "orders": sell_orders(sim), "samples": len(samples)}


def _sell(bot: Bot) -> str | None:
    return next((a.own.adv_no for a in bot.ads if a.own is not None and a.own.side == "SELL"), None)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the seeds."""
    got = {k: statistics.median(r[k] for r in runs) for k in ("rank1", "margin", "edits", "orders")}
    return {**got, "runs": runs}


def paired(ours: dict[str, Any], other: dict[str, Any], key: str) -> Any:
    """The median over seeds of ours minus the other's, seed by seed (same market, same run)."""
    return statistics.median(a[key] - b[key] for a, b in zip(ours["runs"], other["runs"],
                                                             strict=True))


def emit(figure: str, goal: str, measured: str, ratio: float | None, how: str) -> None:
    """One row of the bench table (bench-format: figure, goal, measured, ratio, how)."""
    print(json.dumps({"figure": figure, "goal": goal, "measured": measured,
                      "ratio": None if ratio is None else round(ratio, 2), "how": how}),
          flush=True)


def rows(got: dict[str, dict[str, Any]], seeds: list[int], hours: float) -> None:
    """The rows: our default config against today's bot and the typical peers, one run."""
    how = f"price_war, stepped clock, {hours:g} h x seeds {','.join(map(str, seeds))}, medians"
    ours, today = got["default"], got["today"]
    peers = " / ".join(f"{got[w]['rank1']:.0%}" for w in ("peer 15 s", "peer 30 s"))
    emit("price war: rank-1 share (default config)", ">= 85%", f"{ours['rank1']:.0%}",
         0.85 / ours["rank1"] if ours["rank1"] else None,
         f"{how}; today {today['rank1']:.0%}, peer 15 s / 30 s {peers}")
    emit("price war: edits per hour (default config)", f"< today ({today['edits'] / hours:.0f})",
         f"{ours['edits'] / hours:.0f}", ours["edits"] / today["edits"] if today["edits"] else None,
         f"{how}; peer 15 s / 30 s " + " / ".join(f"{got[w]['edits'] / hours:.0f}"
                                                  for w in ("peer 15 s", "peer 30 s")))
    diff = paired(ours, today, "margin")
    ratios = [float(b["margin"] / a["margin"]) for a, b in zip(ours["runs"], today["runs"],
                                                                strict=True) if a["margin"]]
    emit("price war: median margin above the floor (default config)",
         f">= today ({today['margin']:.2f})", f"{ours['margin']:.2f}",
         statistics.median(ratios) if ratios else None,  # seed by seed: the same market
         f"{how}; seed by seed {diff:+.2f} against today; peer 15 s / 30 s "
         + " / ".join(f"{got[w]['margin']:.2f}" for w in ("peer 15 s", "peer 30 s")))


def main() -> None:
    """Run every way on every seed; print the figures (and the rows with --rows)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rivals", type=int, default=0)
    parser.add_argument("--mirrors", type=int, default=0)
    parser.add_argument("--scenario", default="price_war")
    parser.add_argument("--ways", default=",".join(w.name for w in WAYS),
                        help="which ways to run (default: all)")
    parser.add_argument("--rows", action="store_true", help="print the bench table's rows")
    parser.add_argument("--try", dest="trial", action="append", default=[], metavar="PARAMS",
                        help='an extra way at the default cadence: [ads.params] lines, e.g. \'on_bot_war = "hold"\' '
                             "(repeatable; ';' separates lines)")
    args = parser.parse_args()
    setup_logging("ERROR")
    seeds = [int(s) for s in args.seeds.split(",")]
    scenario = war(args.rivals, args.mirrors, args.scenario)
    started = time.perf_counter()
    got: dict[str, dict[str, Any]] = {}
    trials = [Way(t, None, t.replace(";", "\n")) for t in args.trial]  # at the default cadence
    for way in [*(w for w in WAYS if w.name in args.ways.split(",")), *trials]:
        runs = []
        for seed in seeds:
            faulthandler.dump_traceback_later(600, exit=True)  # a stuck run says where, and ends
            runs.append(asyncio.run(run(way, seed, args.hours, scenario)))
            faulthandler.cancel_dump_traceback_later()
        got[way.name] = medians(runs)
        each = ", ".join(f"{r['rank1']:.0%}/{r['edits']}/{r['margin']}" for r in runs)
        print(f"{way.name:>10}: rank-1 {got[way.name]['rank1']:.0%}  edits {got[way.name]['edits']}"
              f"  margin {got[way.name]['margin']}  orders {got[way.name]['orders']}"
              f"  (per seed rank-1/edits/margin: {each})", file=sys.stderr)
    print(f"{args.scenario} +{args.rivals} rival(s) +{args.mirrors} mirror(s), seeds {seeds}, "
          f"{args.hours:g} h each, real time {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.rows and {"default", "today", "peer 15 s", "peer 30 s"} <= set(got):
        rows(got, seeds, args.hours)


if __name__ == "__main__":
    main()
