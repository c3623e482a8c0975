"""Bench: the pricing engine at scale, in-process on one core.

A synthetic desk of N `undercut` ads over M markets (asset, fiat, side); every market's
search answers 20 rows (competitors, decoys, a few of our own ads), prices walking a
little every cycle so some ads reprice and the rest hold. Everything runs in-process
with a fake exchange on a fake clock: the real `MarketPoller.fetch` (the capability
registry, the rate governor, the parse of the search reply), the real `PricingEngine`
(filters, strategy, guards, ad updates through the registry) and the real store
(SQLite in a temporary folder, the decision log with its dedupe). Figures:

- decision latency per ad, including the search-reply parse: one ad per market (the
  100 ads / 100 markets desk), the time from the search reply to its decision stored,
  p50 and p99 over every snapshot of the measured cycles;
- cycle time at 10 ads / 10 markets, 100/10, 100/100, 1,000/100: every market searched
  and decided once; the median of the measured cycles, and the ratio 1,000 / 10 ads of
  the time per ad (1.0 = linear).

    .venv/bin/python bench/engine.py [--cycles 20] [--repeat 3] [--rows] [--profile]

`--digest` measures nothing: it runs two desks (100 ads / 10 markets for 40 cycles, 200 / 20
for 15) and prints one hash of every decision stored (with its trace and repeats), every ad's
rank, standing and price after each cycle, the counts and the rival profiles. A change that
makes the engine faster must leave it as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rows import emit, ms, wants_rows  # noqa: E402
from bot.binance.client import Response  # noqa: E402
from bot.binance.endpoints import ENDPOINTS  # noqa: E402
from bot.binance.p2p import P2PApi  # noqa: E402
from bot.capabilities.registry import CapabilityRegistry  # noqa: E402
from bot.events import EventBus  # noqa: E402
from bot.pricing.engine import AdRuntime, PricingEngine  # noqa: E402
from bot.pricing.pollers import MarketPoller  # noqa: E402
from bot.ratelimit import RateGovernor  # noqa: E402
from config.loader import load_config  # noqa: E402
from state.db import Store  # noqa: E402
from state.decisions import DecisionLog  # noqa: E402
from strategies.base import OwnAd, Side  # noqa: E402
from tests.support import FakeClock  # noqa: E402

ROWS = 20
OWN_SHOWN = 3  # own ads of a market shown in its search page
SIZES = ((10, 10), (100, 10), (100, 100), (1000, 100))
METHODS = ("TinkoffNew", "SBP", "RaiffeisenBank", "QIWI")

AD = """
[[ads]]
name = "ad{i}"
adv_no = "{adv_no}"
strategy = "undercut"
[ads.params]
step = "0.01"
[ads.filters]
min_completion_rate = "0.90"
min_month_orders = 10
decoy_max_amount = "1000"
[ads.guards]
floor = "85.00"
ceiling = "99.00"
max_step = "0.50"
max_updates = 360
min_interval = 10
"""


def market_of(m: int) -> tuple[str, str, Side]:
    """The m-th market: (asset, fiat, our side)."""
    return "USDT", f"F{m // 2:03d}", Side.SELL if m % 2 == 0 else Side.BUY


class Exchange:
    """The fake exchange's search: 20 rows per market, prices walking each cycle."""

    def __init__(self, markets: int, rng: random.Random) -> None:
        self.rng = rng
        self.books = {market_of(m)[:2] + (_search(market_of(m)[2]),): self._book(m)
                      for m in range(markets)}
        self.own: dict[tuple[str, str, str], list[AdRuntime]] = {}

    def _book(self, m: int) -> list[dict[str, Any]]:
        rng = self.rng
        rows = []
        for k in range(ROWS):
            adv = {"advNo": f"9{m:05d}{k:014d}", "classify": "mass", "tradeType": "SELL",
                   "asset": "USDT", "fiatUnit": "RUB", "advStatus": 1, "priceType": 1,
                   "price": f"{rng.uniform(91.5, 94.5):.2f}", "priceFloatingRatio": "0.00000000",
                   "initAmount": "1000.00000000", "surplusAmount": "500.00000000",
                   "tradableQuantity": "500.00000000",
                   "minSingleTransAmount": f"{rng.choice((100, 500, 1000)):.8f}",
                   "maxSingleTransAmount": f"{rng.choice((800, 20000, 150000)):.8f}",
                   "dynamicMaxSingleTransAmount": "20000.00000000", "payTimeLimit": 15,
                   "tradeMethods": [{"payId": None, "identifier": rng.choice(METHODS),
                                     "tradeMethodName": "x"}],
                   "remarks": None, "autoReplyMsg": "", "createTime": 1700000000000,
                   "advUpdateTime": 1700000100000, "assetScale": 2, "fiatScale": 2,
                   "priceScale": 2, "isTradable": True}
            who = {"userNo": f"s{m:08x}{k:024x}", "nickName": f"peer{k}",
                   "userType": rng.choice(("merchant", "user")),
                   "monthOrderCount": rng.choice((3, 120, 1520)),
                   "monthFinishRate": rng.choice(("0.85", "0.95", "0.99")),
                   "orderCount": 20000, "advConfirmTime": 45, "positiveRate": "0.99",
                   "userGrade": 3, "proMerchant": None}
            rows.append({"adv": adv, "advertiser": who})
        return rows

    def walk(self) -> None:
        """Move a few competitors' prices by a tick or two, as a live market does."""
        for rows in self.books.values():
            for row in self.rng.sample(rows, 4):
                price = float(row["adv"]["price"]) + self.rng.choice((-0.02, -0.01, 0.01, 0.02))
                row["adv"]["price"] = f"{min(max(price, 91.0), 95.0):.2f}"

    def search(self, params: Mapping[str, Any] | None) -> Response:
        """The search reply as the client hands it over (JSON decoded, not yet parsed)."""
        assert params is not None
        key = (params["asset"], params["fiat"], params["tradeType"])
        rows = [dict(r) for r in self.books[key]]
        for n, ad in enumerate(self.own.get(key, [])[:OWN_SHOWN]):
            assert ad.own is not None
            mine = {**rows[0]["adv"], "advNo": ad.own.adv_no, "price": str(ad.own.price)}
            rows.insert(2 + 3 * n, {"adv": mine, "advertiser": {**rows[0]["advertiser"],
                                                                "userNo": "s" + "f" * 32}})
        rows = sorted(rows[:ROWS], key=lambda r: float(r["adv"]["price"]),
                      reverse=key[2] == "SELL")
        return Response(ENDPOINTS["search"], 200,
                        {"code": "000000", "data": rows, "total": len(rows), "success": True})


def _search(side: Side) -> str:
    return "BUY" if side is Side.SELL else "SELL"


class Client:
    """Stands in for the signed client: the search above, every ad update accepted."""

    def __init__(self, clock: FakeClock, exchange: Exchange) -> None:
        self.clock, self.exchange = clock, exchange
        self.used_weight: dict[str, int] = {}
        self.banned_until = self.paused_until = 0.0
        self.rate_limited = 0
        self.updates = 0

    async def call(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Response:
        """Answer as the exchange would, at once."""
        if endpoint == "search":
            return self.exchange.search(params)
        self.updates += 1
        return Response(ENDPOINTS[endpoint], 200, {"code": "000000", "data": True, "success": True})

    def restore_ban(self, until: float) -> None:
        """Not used here."""


class Desk:
    """N ads over M markets, the engine and its pollers, on a fake clock."""

    def __init__(self, ads: int, markets: int, folder: Path, seed: int = 7) -> None:
        self.n, self.m, self.folder = ads, markets, folder
        self.clock = FakeClock()
        self.exchange = Exchange(markets, random.Random(seed))
        self.client = Client(self.clock, self.exchange)
        self.cpu: list[float] = []

    async def open(self) -> None:
        """Build the config, the store, the registry, the engine and one poller per market."""
        path = self.folder / "bench.toml"
        path.write_text("".join(AD.format(i=i, adv_no=f"{i + 1:020d}") for i in range(self.n)),
                        encoding="utf-8")
        loaded = load_config(path)
        self.store = await Store.open(self.folder / "bench.db")
        registry = CapabilityRegistry(self.client, governor=RateGovernor(12000, self.clock))  # type: ignore[arg-type]
        api = P2PApi(registry)
        runtimes = []
        for i, ad in enumerate(loaded.ads):
            asset, fiat, side = market_of(i % self.m)
            own = OwnAd(adv_no=ad.config.adv_no or "", side=side, asset=asset, fiat=fiat,
                        price=_dec("93.00"), min_amount=_dec(500), max_amount=_dec(50000),
                        available=_dec(1000), pay_methods=frozenset(METHODS[: 1 + i % 3]))
            rt = AdRuntime(ad, own=own)
            runtimes.append(rt)
            self.exchange.own.setdefault((asset, fiat, _search(side)), []).append(rt)
        self.engine = PricingEngine(runtimes, api=api, registry=registry, clock=self.clock,
                                    log=DecisionLog(self.store))
        bus = EventBus()
        self.pollers = [MarketPoller(api, a, f, _search(s), ROWS, registry=registry, bus=bus,
                                     clock=self.clock, interval=10.0)
                        for a, f, s in (market_of(m) for m in range(self.m))]

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()

    async def cycle(self, per_snapshot: list[float] | None = None) -> float:
        """Search and decide every market once; returns the seconds it took (and adds the CPU
        seconds of the process, every thread, to `self.cpu`)."""
        self.clock.advance(10)
        self.exchange.walk()
        cpu = time.process_time()
        began = time.perf_counter()
        for poller in self.pollers:
            t0 = time.perf_counter()
            await self.engine.on_market(await poller.fetch("search"))
            if per_snapshot is not None:
                per_snapshot.append(time.perf_counter() - t0)
        took = time.perf_counter() - began
        self.cpu.append(time.process_time() - cpu)
        return took


def _dec(value: Any) -> Any:
    from decimal import Decimal
    return Decimal(str(value))


async def measure(ads: int, markets: int, cycles: int, warm: int = 3,
                  per_snapshot: list[float] | None = None,
                  cpu: list[float] | None = None) -> list[float]:
    """Seconds per cycle over `cycles` cycles after `warm` unmeasured ones (CPU seconds of each
    measured cycle added to `cpu`)."""
    with tempfile.TemporaryDirectory() as tmp:
        desk = Desk(ads, markets, Path(tmp))
        await desk.open()
        try:
            for _ in range(warm):
                await desk.cycle()
            desk.cpu.clear()
            took = [await desk.cycle(per_snapshot) for _ in range(cycles)]
            if cpu is not None:
                cpu += desk.cpu
            return took
        finally:
            await desk.close()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def main(cycles: int, repeat: int, rows: bool) -> None:
    """Measure every size `repeat` times; print the medians and, with --rows, the table rows."""
    logger.remove()
    cycle_ms: dict[tuple[int, int], float] = {}
    cpu_ms: dict[tuple[int, int], float] = {}
    for ads, markets in SIZES:
        cpu: list[float] = []
        runs = [statistics.median(await measure(ads, markets, cycles, cpu=cpu))
                for _ in range(repeat)]
        cycle_ms[(ads, markets)] = statistics.median(runs)
        cpu_ms[(ads, markets)] = statistics.median(cpu)
        print(f"cycle {ads:>5} ads / {markets:>3} markets: median {cycle_ms[(ads, markets)] * 1000:8.2f} ms"
              f"   runs {', '.join(f'{r * 1000:.1f}' for r in runs)} ms; CPU median "
              f"{cpu_ms[(ads, markets)] * 1000:.1f} ms", file=sys.stderr)
    p50s, p99s = [], []
    for _ in range(repeat):
        snaps: list[float] = []
        await measure(100, 100, cycles, per_snapshot=snaps)
        p50s.append(pct(snaps, 0.50))
        p99s.append(pct(snaps, 0.99))
    p50, p99 = statistics.median(p50s), statistics.median(p99s)
    n = cycles * 100
    print(f"decision per ad incl. parse: p50 {p50 * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms "
          f"({n} decisions x {repeat} runs)", file=sys.stderr)
    linear = (cycle_ms[(1000, 100)] / 1000) / (cycle_ms[(10, 10)] / 10)
    print(f"linearity (time per ad, 1,000 ads / 10 ads): {linear:.2f}", file=sys.stderr)
    if not rows:
        return
    how = f"in-process, one core, fake exchange, median of {cycles} cycles x {repeat} runs"
    dhow = (f"in-process, one ad per market (100/100), search reply -> decision stored, "
            f"{n} decisions, median of {repeat} runs")
    emit("decision latency p50 (per ad, incl. parse)", None, ms(p50), None, dhow)
    emit("decision latency p99 (per ad, incl. parse)", "0.5 ms", ms(p99), p99 / 0.0005, dhow)
    for (ads, markets), value in cycle_ms.items():
        goal = 0.050 if (ads, markets) == (1000, 100) else None
        emit(f"cycle, {ads:,} ads / {markets} markets", "50 ms" if goal else None, ms(value),
             value / goal if goal else None, how)
    emit("cycle linearity, time per ad 1,000 / 10 ads", "1.0", f"{linear:.2f}", linear,
         "from the cycle rows above (1.0 = linear)")
    emit("cycle CPU, 1,000 ads / 100 markets", "50 ms", ms(cpu_ms[(1000, 100)]),
         cpu_ms[(1000, 100)] / 0.050, how.replace("one core", "CPU time of every thread"))


async def digest() -> str:
    """The hash of what the engine decided and stored on two fixed desks (see the module doc)."""
    import hashlib
    import json
    logger.remove()
    out = hashlib.sha256()
    for ads, markets, cycles in ((100, 10, 40), (200, 20, 15)):
        with tempfile.TemporaryDirectory() as tmp:
            desk = Desk(ads, markets, Path(tmp))
            await desk.open()
            try:
                for _ in range(cycles):
                    await desk.cycle()
                    out.update(json.dumps([(a.label, a.rank, a.standing, str(a.own and a.own.price))
                                           for a in desk.engine.ads]).encode())
                rows = await desk.store.fetchall("SELECT * FROM price_decisions ORDER BY id")
                out.update(json.dumps([list(r) for r in rows]).encode())
                out.update(json.dumps([desk.engine.counts, desk.client.updates]).encode())
                for key, book in sorted(desk.engine.rivals.books.items()):
                    profiles = sorted((u, p.to_json()) for u, p in book.profiles().items())
                    out.update(json.dumps([key, profiles], default=str).encode())
            finally:
                await desk.close()
    return out.hexdigest()


def profile(cycles: int) -> None:
    """Profile the 1,000 ads / 100 markets cycle with cProfile; print the top functions."""
    import cProfile
    import pstats
    logger.remove()
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(measure(1000, 100, cycles))
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime" if "--tottime" in sys.argv else "cumulative").print_stats(45)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=None,
                        help="measured cycles per run (default 20; 10 with --rows, for make bench)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    parser.add_argument("--profile", action="store_true", help="cProfile the 1,000/100 cycle")
    parser.add_argument("--tottime", action="store_true", help="with --profile: by own time")
    parser.add_argument("--digest", action="store_true",
                        help="print the hash of the decisions of two fixed desks (no timing)")
    args = parser.parse_args()
    args.cycles = args.cycles or (10 if args.rows or wants_rows() else 20)
    if args.digest:
        print(asyncio.run(digest()))
    elif args.profile:
        profile(args.cycles)
    else:
        asyncio.run(main(args.cycles, args.repeat, args.rows or wants_rows()))
