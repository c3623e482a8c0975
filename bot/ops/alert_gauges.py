"""The gauges the desk's alert rules need beyond the bot's own (see deploy/prometheus/).

Each answers one question an alert asks: is the process ready, is it banned, is the
chat socket up, how long has the oldest paid order waited to be released, how large is
the store, which rank each ad aims for and what the best competitor asks. They are read
at scrape time, like the other state gauges (bot/ops/metrics.py); `refresh` reads the
store's answers first, because a collector cannot await.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric

from bot.ops.status_api import readiness

if TYPE_CHECKING:
    from bot.app import Bot

PAID = 2  # the exchange's order status "buyer paid, waiting for the release"
STORE_SUFFIXES = ("", "-wal", "-shm")  # SQLite's file and its write-ahead log


@dataclass
class DeskReadings:
    """What `refresh` read from the store for the next scrape."""

    paid_since: list[float] = field(default_factory=list)  # when each open order was paid


async def read_paid_since(bot: Bot) -> list[float]:
    """When each order now in status paid became paid (from its stored transitions)."""
    orders = getattr(getattr(bot, "desk", None), "orders", None)
    since = getattr(orders, "in_status_since", None)
    if since is None:
        return []
    rows = await since(PAID, bot.clock.time())
    return [float(at) for record, at in rows if int(getattr(record, "status", 0)) == PAID]


def store_bytes(path: Any) -> float:
    """The store's size on disk (its file, WAL and shared memory), 0 for an in-memory one."""
    if not isinstance(path, Path):
        return 0.0
    total = 0
    for suffix in STORE_SUFFIXES:
        part = path.with_name(path.name + suffix)
        if part.is_file():
            total += part.stat().st_size
    return float(total)


def chat_connected(bot: Bot) -> float | None:
    """1 while the order chat's websocket is open, 0 when not, None without a desk."""
    chat = getattr(getattr(bot, "desk", None), "chat", None)
    connected = getattr(chat, "connected", None)
    return None if connected is None else float(bool(connected))


def desk_gauges(bot: Bot, readings: DeskReadings) -> Iterator[Metric]:
    """Every gauge of this module."""
    ready, _ = readiness(bot)
    yield GaugeMetricFamily("p2pbot_ready", "1 when /readyz would answer 200 (essential "
                            "capabilities seen working, no ban, no pause)", value=float(ready))
    yield GaugeMetricFamily("p2pbot_banned", "1 while the exchange's IP ban (418) runs",
                            value=float(bot.registry.banned_until() is not None))
    yield GaugeMetricFamily("p2pbot_paused", "1 while a 429 pause holds every request",
                            value=float(bot.registry.paused_until() is not None))
    chat = chat_connected(bot)
    if chat is not None:
        yield GaugeMetricFamily("p2pbot_chat_connected", "1 while the order chat websocket is "
                                "open", value=chat)
    now = bot.clock.time()
    oldest = max((now - at for at in readings.paid_since), default=0.0)
    yield GaugeMetricFamily("p2pbot_order_paid_oldest_seconds", "Seconds the oldest order marked "
                            "paid has waited for its release (0: none waits)", value=max(0.0, oldest))
    yield GaugeMetricFamily("p2pbot_store_bytes", "Size of the store on disk (file and WAL)",
                            value=store_bytes(getattr(bot.store, "path", None)))
    yield from _ad_targets(bot)


def _ad_targets(bot: Bot) -> Iterator[Metric]:
    target = GaugeMetricFamily("p2pbot_ad_target_rank", "The rank the ad's strategy aims for "
                               "(strategies with a target_rank parameter)", labels=["ad"])
    best = GaugeMetricFamily("p2pbot_ad_best_price", "The best competitor's price in the ad's "
                             "market (moves when the market does)", labels=["ad"])
    for ad in bot.ads:
        rank = getattr(ad.loaded.params, "target_rank", None)
        if isinstance(rank, int):
            target.add_metric([ad.label], float(rank))
        if ad.best is not None:
            best.add_metric([ad.label], float(ad.best.price))
    yield target
    yield best
