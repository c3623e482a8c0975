"""The polling machinery every poller shares: fetch, publish, sleep; parked while its
capability is disabled; intervals planned against the weight budget and stretched when
it runs hot. The pollers themselves live with their side (bot.pricing.pollers,
bot.orders.poller).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loguru import logger

from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import BinanceError
from bot.binance.scheduler import within
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.clock import Clock
from bot.events import EventBus
from bot.ratelimit import RateGovernor

HOT = 0.8  # share of the weight budget above which intervals stretch
MAX_STRETCH = 10.0
STAGGER = 0.5  # seconds between the pollers' first ticks (a start is not a burst)


class Poller:
    """Fetch, publish, sleep; parked while its capability is disabled."""

    capability: str = ""
    endpoints: tuple[str, ...] = ()
    expires: bool = False  # its reads are dropped, not sent late, when queued past the next tick

    def __init__(
        self, *, registry: CapabilityRegistry, bus: EventBus, clock: Clock, interval: float,
        governor: RateGovernor | None = None,
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.clock = clock
        self.interval = interval
        self.governor = governor
        self.stretch = 1.0  # set by plan_intervals
        self.ticks = 0
        self.parked = False
        self.start_delay = 0.0  # seconds before the first tick (set by stagger)

    @property
    def name(self) -> str:
        """The poller's name for logs."""
        return type(self).__name__

    async def fetch(self, source: str) -> Any | None:
        """One poll on `source`; returns the event to publish, or None."""
        raise NotImplementedError

    def weight_per_minute(self) -> float:
        """The request weight this poller spends per minute at its interval."""
        return sum(ENDPOINTS[e].weight for e in self.endpoints) * 60.0 / self.interval

    def next_delay(self) -> float:
        """The interval, stretched by the plan and by the budget's current heat."""
        return self.interval * self.stretch * self.heat()

    def deadline(self) -> float | None:
        """Seconds its read may wait in the request queue before it is dropped unsent (None:
        no deadline): its next tick, when it `expires`."""
        return self.next_delay() if self.expires else None

    def heat(self) -> float:
        """How much the budget's current heat stretches the interval (1 when not hot)."""
        heat = self.governor.utilisation() / HOT if self.governor is not None else 0.0
        return min(MAX_STRETCH, max(1.0, heat))

    async def run(self) -> None:
        """Poll until cancelled (the first tick after `start_delay`)."""
        if self.start_delay > 0:
            await self.clock.sleep(self.start_delay)
        while True:
            source = self.registry.route(self.capability)
            if source is None:
                if not self.parked:
                    logger.info("{} parked: capability {} is disabled", self.name, self.capability)
                self.parked = True
                await self.registry.wait_for_change()
                continue
            if self.parked:
                logger.info("{} resumed on {}", self.name, source)
                self.parked = False
            await self.tick(source)
            await self.clock.sleep(self.next_delay())

    async def tick(self, source: str) -> None:
        """One poll pass: fetch and publish; errors leave the state to the registry."""
        self.ticks += 1
        try:
            with within(self.deadline()):
                event = await self.fetch(source)
        except (CapabilityUnavailable, BinanceError) as exc:
            logger.debug("{}: {}", self.name, exc)
            return
        if event is not None:
            self.bus.publish(event)


def plan_intervals(pollers: Sequence[Poller], budget: int) -> float:
    """Stretch every interval so the pollers' steady weight stays under HOT of the budget."""
    need = sum(p.weight_per_minute() for p in pollers)
    stretch = max(1.0, need / (budget * HOT))
    for p in pollers:
        p.stretch = stretch
    if stretch > 1.0:
        logger.warning("poll intervals stretched x{:.1f} to stay within the weight budget of {}/min",
                       stretch, budget)
    return stretch


def stagger(pollers: Sequence[Poller], step: float = STAGGER) -> None:
    """Spread the pollers' first ticks `step` apart, so they do not all fire in the same
    millisecond at start (and, their intervals being equal, at every round after it)."""
    for i, p in enumerate(pollers):
        p.start_delay = i * step
