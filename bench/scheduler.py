"""Bench: ad updates through the request scheduler with a 30 ms round trip (issue 14, item 2).

The real pricing engine, capability registry, signed client and request scheduler, against
aioresponses answering every `ads/update` after an injected 30 ms (the wire is mocked; the
rest is the daemon's code). Every ad needs an update in every snapshot (a fixed price away
from the ad's own), so each snapshot is a burst of writes. Figures: for every ad, the time
from its market's snapshot reaching the engine to its update applied; the worst of all ads.

- `100 ads / 10 markets`: the snapshots arrive as the staggered market pollers deliver them
  (one market every 100 ms: ten markets polled each second), through the event bus;
- `100 ads / 1 market`: one snapshot carries all 100 updates at once (the worst case: the
  floor is ceil(100 / max_in_flight) x 30 ms = 1.02 s at the default 3 in flight);
- the same with one request in flight: what one-at-a-time sending costs (the figure before).

    .venv/bin/python bench/scheduler.py [--runs 5] [--rows]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aioresponses import CallbackResult  # noqa: E402
from loguru import logger  # noqa: E402

from bot.binance.models import SearchItem, parse  # noqa: E402
from bot.binance.p2p import P2PApi  # noqa: E402
from bot.capabilities.registry import CapabilityRegistry  # noqa: E402
from bot.events import EventBus, MarketSnapshot  # noqa: E402
from bot.pricing.engine import AdRuntime, PricingEngine  # noqa: E402
from config.loader import load_config  # noqa: E402
from strategies.base import OwnAd, Side  # noqa: E402
from tests.support import envelope, make_client, mocked, path_re, search_item  # noqa: E402

RTT = 0.030
FIATS = ("RUB", "USD", "EUR", "TRY", "UAH", "KZT", "BRL", "ARS", "NGN", "VND")
GOAL = 1.0  # seconds from a snapshot to every update of its ads applied


def wants_rows() -> bool:
    """`--rows`: print the table rows (JSON lines) on stdout."""
    return "--rows" in sys.argv


def emit(figure: str, goal: str, measured: str, ratio: float | None, how: str) -> None:
    """One row of the bench table."""
    print(json.dumps({"figure": figure, "goal": goal, "measured": measured,
                      "ratio": None if ratio is None else round(ratio, 2), "how": how}))


class Timed(PricingEngine):
    """The engine, noting when each ad's update was applied."""

    applied_at: dict[str, float]
    every: asyncio.Event
    expected: int

    def _applied(self, ad: AdRuntime, price: Decimal, field_: str, value: Decimal,
                 now: float) -> None:
        self.applied_at[ad.own.adv_no if ad.own else ""] = time.perf_counter()
        if len(self.applied_at) >= self.expected:
            self.every.set()
        super()._applied(ad, price, field_, value, now)


def config(n: int, folder: Path) -> Path:
    """`n` fixed-price ads, each with its own adv_no."""
    path = folder / "bot.toml"
    path.write_text("".join(
        f'[[ads]]\nname = "ad{i}"\nadv_no = "{i:020d}"\nstrategy = "fixed"\n'
        '[ads.params]\nprice = "92.00"\n[ads.guards]\nfloor = "80"\nceiling = "99"\n'
        for i in range(n)), encoding="utf-8")
    return path


async def one_run(n: int, markets: int, in_flight: int, gap: float, folder: Path) -> list[float]:
    """Seconds from each ad's snapshot to its update applied."""
    async def answer(url: Any, **kw: Any) -> CallbackResult:
        await asyncio.sleep(RTT)
        return CallbackResult(payload=envelope(True))

    async with make_client(max_in_flight=in_flight) as client:
        registry = CapabilityRegistry(client)
        loaded = load_config(config(n, folder))
        ads = [AdRuntime(ad, own=OwnAd(
            adv_no=ad.config.adv_no or "", side=Side.SELL, asset="USDT",
            fiat=FIATS[i % markets], price=Decimal("92.50"), min_amount=Decimal(500),
            max_amount=Decimal(10000), available=Decimal(100))) for i, ad in enumerate(loaded.ads)]
        engine = Timed(ads, api=P2PApi(registry), registry=registry, clock=client.clock)
        engine.applied_at, engine.every, engine.expected = {}, asyncio.Event(), n
        bus = EventBus()
        bus.subscribe(MarketSnapshot, engine.on_market, name="pricing")
        items = tuple(parse(list[SearchItem], [search_item(advNo="9" * 20)], "search"))
        sent_at: dict[str, float] = {}
        with mocked() as m:
            m.post(path_re("/sapi/v1/c2c/ads/update"), callback=answer, repeat=True)
            runner = asyncio.create_task(bus.run())
            for k in range(markets):
                fiat = FIATS[k]
                sent_at[fiat] = time.perf_counter()
                bus.publish(MarketSnapshot("USDT", fiat, "BUY", items, 1, client.clock.time()))
                await asyncio.sleep(gap)
            await asyncio.wait_for(engine.every.wait(), 60)
            runner.cancel()
        return [engine.applied_at[a.own.adv_no] - sent_at[a.own.fiat] for a in ads if a.own]


async def measure(n: int, markets: int, in_flight: int, gap: float, runs: int) -> float:
    """The median over `runs` of the worst ad's snapshot-to-applied time (seconds)."""
    worst = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            worst.append(max(await one_run(n, markets, in_flight, gap, Path(tmp))))
    return statistics.median(worst)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", action="store_true")
    args = parser.parse_args()
    logger.remove()
    how = f"in-process engine + scheduler, aioresponses with {RTT * 1000:.0f} ms, median of {args.runs}"
    spread = await measure(100, 10, 3, 0.1, args.runs)
    burst = await measure(100, 1, 3, 0.0, args.runs)
    four = await measure(100, 1, 4, 0.0, args.runs)
    serial = await measure(100, 1, 1, 0.0, args.runs)
    rows = [
        ("every update within, 100 ads / 10 markets (pollers' spread)", spread, "3 in flight"),
        ("every update within, 100 ads / 1 snapshot (worst case)", burst,
         "3 in flight; floor ceil(100/3) x 30 ms = 1.02 s"),
        ("every update within, 100 ads / 1 snapshot, max_in_flight = 4", four, "4 in flight"),
        ("every update within, 100 ads / 1 snapshot, one at a time", serial,
         "1 in flight: the figure before the scheduler"),
    ]
    for figure, value, note in rows:
        print(f"{figure}: {value * 1000:.0f} ms ({note})", file=sys.stderr)
        if args.rows:
            before = figure.endswith("one at a time")  # the comparison, not a goal of ours
            emit(figure, None if before else f"{GOAL * 1000:.0f} ms", f"{value * 1000:.0f} ms",
                 None if before else value / GOAL, f"{how}; {note}")


if __name__ == "__main__":
    asyncio.run(main())
