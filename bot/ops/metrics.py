"""Prometheus metrics of one Bot, on its own CollectorRegistry (never the global one).

Counters move with the registry's and the engine's observer hooks (every request,
every decision); gauges are read from the bot's state at scrape time. Prices are
Decimal everywhere else; they become floats here, at the edge, for graphs only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.capabilities.table import CAPABILITIES
from bot.events import ChatMessageReceived, OrderChanged
from bot.health import WORKING, CapState, EndpointState
from bot.ops.alert_gauges import DeskReadings, desk_gauges, read_paid_since
from bot.orders.track import STATUS_NAME
from state.decisions import DecisionRow

if TYPE_CHECKING:
    from bot.app import Bot
    from bot.pricing.engine import AdRuntime

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the scrape for no use here

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ORDER_STATUS = {1: "trading", 2: "paid", 3: "appeal", 4: "completed", 6: "cancelled",
                7: "cancelled_by_system"}
LAG_INTERVAL = 0.5  # seconds between event-loop lag samples


def skip_reason(row: DecisionRow) -> str:
    """Why a decision did not change the price, as a short label of a bounded set."""
    if row.result in ("dry_run", "failed", "unknown"):
        return row.result
    for guard in ("kill_switch", "min_interval", "edit_budget"):
        if guard in row.guards:
            return guard
    reason = row.reason
    if reason.startswith("repricing unavailable"):
        return "repricing_unavailable"
    if reason.startswith("change ") and "min_change" in reason:
        return "min_change"
    if reason.startswith("already at"):
        return "unchanged"
    return "strategy"


class LoopLag:
    """Measures how late the event loop wakes a sleeper: a blocked loop shows here first."""

    def __init__(self, interval: float = LAG_INTERVAL,
                 on_sample: Callable[[float], None] | None = None) -> None:
        self.interval = interval
        self.on_sample = on_sample
        self.last = 0.0
        self.max = 0.0
        self.samples = 0
        self.last_at: float | None = None  # time.monotonic() of the latest sample

    async def run(self) -> None:
        """Sample until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.record(max(0.0, loop.time() - started - self.interval))

    def record(self, lag: float) -> None:
        """Take one sample."""
        self.last = lag
        self.max = max(self.max, lag)
        self.samples += 1
        self.last_at = time.monotonic()
        if self.on_sample is not None:
            self.on_sample(lag)

    def age(self) -> float | None:
        """Seconds since the latest sample (None before the first)."""
        return None if self.last_at is None else time.monotonic() - self.last_at


class BotMetrics:
    """The bot's metrics: counters fed by observers, gauges collected from its state."""

    def __init__(self, bot: Bot, lag: LoopLag | None = None) -> None:
        self.bot = bot
        self.lag = lag or LoopLag()
        self.lag.on_sample = self.on_lag
        self.registry = CollectorRegistry(auto_describe=True)
        self.open_orders: list[Any] = []  # refreshed by the web server before each scrape
        self.desk = DeskReadings()  # likewise (`refresh`)
        r = self.registry
        self.requests = Counter("p2pbot_requests", "Requests sent, by endpoint and outcome "
                                "(ok, the exchange's code, http <status>, or the error type)",
                                ["endpoint", "outcome"], registry=r)
        self.latency = Histogram("p2pbot_request_latency_seconds", "Request latency by endpoint",
                                 ["endpoint"], registry=r,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.applied = Counter("p2pbot_price_updates_applied", "Ad price updates applied",
                               ["ad"], registry=r)
        self.skipped = Counter("p2pbot_price_updates_skipped",
                               "Pricing decisions that did not change the price, by reason",
                               ["ad", "reason"], registry=r)
        self.greeting = Histogram("p2pbot_order_greeting_latency_seconds",
                                  "Seconds from a new order to the greeting sent in its chat",
                                  registry=r, buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300))
        self.lag_hist = Histogram("p2pbot_event_loop_lag_seconds",
                                  "How late the event loop woke a sleeper", registry=r,
                                  buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5))
        self.order_moves = Counter("p2pbot_order_transitions",
                                   "Order status changes stored, by the new status",
                                   ["status"], registry=r)
        self.chat_in = Counter("p2pbot_chat_messages_received",
                               "Counterparty chat messages, by how they arrived (websocket, rest)",
                               ["via"], registry=r)
        Gauge("p2pbot_start_time_seconds", "When the bot started (epoch seconds)",
              registry=r).set_function(lambda: bot.started_at or 0.0)
        r.register(_StateCollector(self))

    def attach(self) -> None:
        """Subscribe to the registry's and the engine's observers (before the bot starts)."""
        self.bot.registry.observers.append(self.on_request)
        self.bot.engine.observers.append(self.on_decision)
        self.bot.bus.subscribe(OrderChanged, self.on_order_changed, name="metrics-orders")
        self.bot.bus.subscribe(ChatMessageReceived, self.on_chat_message, name="metrics-chat")

    async def on_order_changed(self, ev: OrderChanged) -> None:
        """An order moved (published by the desk)."""
        self.order_moves.labels(STATUS_NAME.get(ev.new, str(ev.new))).inc()

    async def on_chat_message(self, ev: ChatMessageReceived) -> None:
        """A counterparty message (published by the chat session)."""
        self.chat_in.labels(ev.via).inc()

    def attach_desk(self) -> bool:
        """Subscribe to the desk's observers when it has them (the desk is made in Bot.start)."""
        desk_observers = getattr(getattr(self.bot, "desk", None), "observers", None)
        if isinstance(desk_observers, list) and self.on_desk not in desk_observers:
            desk_observers.append(self.on_desk)
            return True
        return False

    def on_request(self, endpoint: str, outcome: str, latency: float) -> None:
        """One sent request (registry observer)."""
        self.requests.labels(endpoint, outcome).inc()
        self.latency.labels(endpoint).observe(max(0.0, latency))

    def on_decision(self, ad: AdRuntime, row: DecisionRow) -> None:
        """One pricing decision (engine observer)."""
        if row.result == "applied":
            self.applied.labels(ad.label).inc()
        else:
            self.skipped.labels(ad.label, skip_reason(row)).inc()

    def on_desk(self, event: str, seconds: float) -> None:
        """A desk measurement: ("greeting", seconds from the new order to the greeting sent)."""
        if event == "greeting":
            self.greeting.observe(max(0.0, seconds))

    def on_lag(self, lag: float) -> None:
        """One loop-lag sample."""
        self.lag_hist.observe(lag)

    async def refresh(self) -> None:
        """Read from the store what the next scrape shows (a collector cannot await)."""
        self.desk = DeskReadings(paid_since=await read_paid_since(self.bot))

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read from the bot at scrape time."""

    def __init__(self, metrics: BotMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        """Every state gauge."""
        bot = self.m.bot
        yield from self._health(bot)
        yield from self._ads(bot)
        yield from self._budget(bot)
        yield from _scheduler(bot)
        yield from _cadence(bot)
        yield from desk_gauges(bot, self.m.desk)
        orders = GaugeMetricFamily("p2pbot_orders", "Open orders by status (from the order desk)",
                                   labels=["status"])
        counts: dict[str, int] = dict.fromkeys(("trading", "paid", "appeal"), 0)
        for o in self.m.open_orders:
            name = ORDER_STATUS.get(int(getattr(o, "status", 0) or 0), "other")
            counts[name] = counts.get(name, 0) + 1
        for name, n in counts.items():
            orders.add_metric([name], n)
        yield orders
        console = getattr(bot, "console", None)  # bot.console.telegram: answers not sent
        if console is not None:
            yield CounterMetricFamily("p2pbot_console_dropped", "Console answers dropped (the "
                                      "queue to Telegram was full, or Telegram refused them)",
                                      value=console.dropped)
            yield CounterMetricFamily("p2pbot_console_commands", "Console commands answered",
                                      value=console.handled)
        lag = self.m.lag
        yield GaugeMetricFamily("p2pbot_event_loop_lag_last_seconds",
                                "The latest event-loop lag sample", value=lag.last)
        yield GaugeMetricFamily("p2pbot_event_loop_lag_max_seconds",
                                "The largest event-loop lag since start", value=lag.max)

    def _health(self, bot: Bot) -> Iterator[Metric]:
        ep = GaugeMetricFamily("p2pbot_endpoint_state", "1 for the state each endpoint is in",
                               labels=["endpoint", "state"])
        for h in bot.registry.health.values():
            for state in EndpointState:
                ep.add_metric([h.name, state.value], 1.0 if h.state is state else 0.0)
        yield ep
        cap = GaugeMetricFamily("p2pbot_capability_state", "1 for the state each capability is in",
                                labels=["capability", "state"])
        up = GaugeMetricFamily("p2pbot_capability_up", "1 when the capability runs (enabled or "
                               "degraded)", labels=["capability", "essential"])
        essential = set(bot.cfg.capabilities.essential)
        for name in CAPABILITIES:
            status = bot.registry.status(name)
            for cap_state in CapState:
                cap.add_metric([name, cap_state.value], 1.0 if status.state is cap_state else 0.0)
            up.add_metric([name, str(name in essential).lower()],
                          1.0 if status.state in WORKING else 0.0)
        yield cap
        yield up

    def _ads(self, bot: Bot) -> Iterator[Metric]:
        price = GaugeMetricFamily("p2pbot_ad_price", "The ad's current price (fiat per unit)",
                                  labels=["ad", "side", "asset", "fiat"])
        rank = GaugeMetricFamily("p2pbot_ad_rank", "The ad's position in its market search",
                                 labels=["ad"])
        standing = GaugeMetricFamily("p2pbot_ad_standing", "The ad's position among the "
                                     "competitors that count (filters applied)", labels=["ad"])
        spread = GaugeMetricFamily("p2pbot_ad_reference_spread",
                                   "The ad's price minus the reference price", labels=["ad"])
        ref = GaugeMetricFamily("p2pbot_ad_reference_price", "The reference price the ad is "
                                "priced against", labels=["ad", "source"])
        for ad in bot.ads:
            own = ad.own
            if own is None:
                continue
            price.add_metric([ad.label, own.side.value, own.asset, own.fiat], float(own.price))
            if ad.rank is not None:
                rank.add_metric([ad.label], float(ad.rank))
            if ad.standing is not None:
                standing.add_metric([ad.label], float(ad.standing))
            if ad.reference is not None:
                spread.add_metric([ad.label], float(own.price - ad.reference.price))
                ref.add_metric([ad.label, ad.reference.source], float(ad.reference.price))
        yield from (price, rank, standing, spread, ref)

    def _budget(self, bot: Bot) -> Iterator[Metric]:
        gov = bot.governor
        yield GaugeMetricFamily("p2pbot_rate_limit_weight_used",
                                "Request weight used in the current minute", value=gov.used())
        yield GaugeMetricFamily("p2pbot_rate_limit_weight_budget",
                                "The request weight budget per minute", value=gov.budget)
        yield GaugeMetricFamily("p2pbot_rate_limit_weight_limit",
                                "The weight per minute kept below now (the budget, lower after a 429)",
                                value=gov.limit())
        yield GaugeMetricFamily("p2pbot_rate_limit_budget_used_ratio",
                                "Share of the weight budget used (0..1+)",
                                value=gov.used() / gov.budget)
        yield CounterMetricFamily("p2pbot_rate_limit_waits",
                                  "Times a sender waited for the weight budget", value=gov.waits)


def _cadence(bot: Bot) -> Iterator[Metric]:
    """Every market's search interval and why (the reason is a label of a bounded set)."""
    cadence = getattr(bot, "cadence", None)
    if cadence is None:
        return
    interval = GaugeMetricFamily("p2pbot_market_interval_seconds", "Seconds between searches of "
                                 "each market now (the adaptive cadence), and why",
                                 labels=["market", "reason"])
    for m in cadence.markets.values():
        interval.add_metric([m.name, m.pace.reason.split(":")[0]], m.pace.interval)
    yield interval
    yield GaugeMetricFamily("p2pbot_market_reads_weight_per_minute", "Weight a minute the "
                            "market searches spend at the planned intervals",
                            value=cadence.weight_per_minute())
    yield GaugeMetricFamily("p2pbot_market_reads_weight_cap", "The most weight a minute all "
                            "market searches may spend ([cadence] market_share of the limit)",
                            value=cadence.band.market_share * cadence.budget())


def _scheduler(bot: Bot) -> Iterator[Metric]:
    """The request scheduler: in flight, queued, shed and expired by priority class."""
    sched = getattr(bot.client, "scheduler", None)
    if sched is None:
        return
    yield GaugeMetricFamily("p2pbot_requests_in_flight", "Requests on the wire now",
                            value=sched.on_wire)
    yield GaugeMetricFamily("p2pbot_requests_max_in_flight",
                            "Requests allowed on the wire at once ([bot] max_in_flight)",
                            value=sched.limit)
    queued = GaugeMetricFamily("p2pbot_requests_queued", "Requests waiting for a slot, by "
                               "priority class (write, chat, orders, read)", labels=["priority"])
    shed = CounterMetricFamily("p2pbot_requests_shed", "Requests dropped unsent because the "
                               "queue was full (lowest priority first)", labels=["priority"])
    expired = CounterMetricFamily("p2pbot_requests_expired", "Requests dropped unsent because "
                                  "they waited past their deadline", labels=["priority"])
    for name, n in sched.queued().items():
        queued.add_metric([name], n)
        shed.add_metric([name], sched.counts.shed[name])
        expired.add_metric([name], sched.counts.expired[name])
    yield from (queued, shed, expired)
