"""Bot: wires and supervises everything (client, registry, store, bus, pollers, engine)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from bot.binance.client import Clock, SignedClient, SystemClock
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import BinanceError
from bot.binance.models import Ad
from bot.binance.p2p import P2PApi
from bot.cadence import Cadence
from bot.capabilities import CapabilityRegistry, CapabilityUnavailable
from bot.events import CapabilityChanged, EventBus, MarketSnapshot, OwnAdsUpdate, ReferenceUpdate
from bot.lifecycle import apply_config
from bot.orders import attach_order_desk
from bot.pollers import (
    MarketPoller,
    OwnAdsPoller,
    Poller,
    ReferencePoller,
    plan_intervals,
    stagger,
)
from bot.pricing import AdRuntime, PricingEngine, search_side, step_warning, to_own
from bot.ratelimit import RateGovernor
from bot.retention import DecisionRetention
from config.loader import LoadedConfig
from config.settings import Settings
from state.db import Store, full_message
from state.decisions import DecisionLog
from state.endpoints import EndpointLog
from state.meta import Meta
from strategies.base import Side

STOP_GRACE = 5.0  # seconds in-flight work gets to finish at shutdown (in all)
STORE_WATCH = 5.0  # seconds between checks that the store file is still the one opened


class StartupError(Exception):
    """The bot cannot start as configured (e.g. a selector matches two ads): exit 2."""


@dataclass
class Parts:
    """Extra long-running parts (the order desk, the web server) plugged into the bot."""

    tasks: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


class Bot:
    """One merchant account: builds the pieces on start, runs them until stopped."""

    def __init__(self, loaded: LoadedConfig, client: SignedClient, store: Store,
                 *, clock: Clock | None = None, settings: Settings | None = None) -> None:
        self.loaded = loaded
        self.settings = settings  # environment (notification secrets); None: read when needed
        self.cfg = loaded.app
        self.client = client
        client.max_response_bytes = self.cfg.bot.max_response_bytes
        client.max_in_flight = self.cfg.bot.max_in_flight
        self.store = store
        self.clock: Clock = clock or client.clock or SystemClock()
        self.bus = EventBus()
        self.governor = RateGovernor(self.cfg.bot.weight_budget, clock=self.clock)
        client.scheduler.budget = self.governor  # requests wait for weight in priority order
        client.scheduler.max_queued = self.cfg.bot.max_queued
        self.registry = CapabilityRegistry(
            client, bus=self.bus, log=EndpointLog(store), meta=Meta(store), governor=self.governor,
            config=self.cfg.capabilities.probe_config(), dry_run=self.cfg.bot.dry_run,
        )
        self.api = P2PApi(self.registry)
        self.decisions = DecisionLog(store)
        self.retention = DecisionRetention(self.decisions, self.clock,
                                           self.cfg.bot.decisions_retention_days)
        self.ads = [AdRuntime(ad) for ad in loaded.ads]
        self.engine = PricingEngine(
            self.ads, api=self.api, registry=self.registry, clock=self.clock, log=self.decisions,
            dry_run=self.cfg.bot.dry_run, kill_switch=self.cfg.bot.kill_switch,
            reference_max_jump=self.cfg.bot.reference_max_jump,
            settle_seconds=self.cfg.bot.settle_seconds,
        )
        self.engine.reference_interval = self.cfg.bot.reference_interval
        self.cadence = Cadence(self.cfg.band(), budget=self.governor.limit,
                               weight=ENDPOINTS["search"].weight, own=self._own_in)
        self.parts = Parts()
        self.pollers: list[Poller] = []
        self.started_at: float | None = None
        self.first_decision = asyncio.Event()
        self._markets: dict[tuple[str, str, str], MarketPoller] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.desk: Any = None
        self._workers: list[asyncio.Task[Any]] = []  # cancelled first at stop (pollers, parts)
        self.own_seen: tuple[Ad, ...] = ()  # the latest read of own ads (a reload resolves from it)
        self._missing: tuple[str, ...] = ()  # configured ads last said to be not found
        self.fatal: str | None = None  # why the bot stopped itself (run exits 2 with it)
        self._stop_event: asyncio.Event | None = None
        self._alerts: list[asyncio.Future[Any]] = []  # alerts sent without the store (disk full)
        store.on_full.append(self._on_store_full)

    # --- start ---------------------------------------------------------------------

    async def start(self) -> None:
        """Sync the clock, honour a persisted ban, read own ads once, plan the pollers."""
        self.started_at = self.clock.time()
        await self.registry.restore()
        with contextlib.suppress(BinanceError):
            await self.client.sync_time()
        if self.ads and self.ads[0].loaded.config.asset:
            self.registry.hints["asset"] = self.ads[0].loaded.config.asset or "USDT"
            self.registry.hints["fiat"] = self.ads[0].loaded.config.fiat or "USD"
        self.bus.subscribe(OwnAdsUpdate, self._on_own_ads, name="own-ads")
        self.bus.subscribe(MarketSnapshot, self._on_market, name="pricing")
        self.bus.subscribe(ReferenceUpdate, self.engine.on_reference, name="reference")
        self.bus.subscribe(CapabilityChanged, self.engine.on_capability, name="pricing-caps")
        own = OwnAdsPoller(self.api, **self._kw(self.cfg.bot.my_ads_interval))
        self.pollers.append(own)
        if self.ads:
            try:
                await self._on_own_ads(await own.fetch("my_ads"))
            except (CapabilityUnavailable, BinanceError) as exc:
                logger.warning("cannot read your ads yet ({}); ads wait for my_ads", exc)
        problems = [ad.problem for ad in self.ads if ad.problem]
        if problems:
            raise StartupError("; ".join(problems))
        # an ad's market is searched once the ad is found among your ads (_resolve), not before
        self._reference_pollers()
        plan_intervals(self.pollers, self.cfg.bot.weight_budget)
        self.desk = attach_order_desk(self)
        self.engine.open_orders = self.desk.open_count  # the exchange hides ads with too many
        notes = getattr(self.desk, "notes", None)
        if notes is not None:
            self.engine.alerts.append(notes.notify)

    def _kw(self, interval: float) -> dict[str, Any]:
        return {"registry": self.registry, "bus": self.bus, "clock": self.clock,
                "interval": interval, "governor": self.governor}

    def _market_for(self, asset: str, fiat: str, side: str) -> MarketPoller:
        key = (asset, fiat, side)
        if key not in self._markets:
            p = MarketPoller(self.api, asset, fiat, side, self.cfg.bot.search_rows,
                             cadence=self.cadence, **self._kw(self.cfg.bot.market_interval))
            self._markets[key] = p
            self.pollers.append(p)
            if self._tg is not None:  # a market learned while running (an ad found by id)
                self._workers.append(self._tg.create_task(p.run(), name=p.name))
        return self._markets[key]

    def _own_in(self, market: tuple[str, str, str]) -> list[str]:
        """Our ad numbers in a market (the cadence watches their rank)."""
        return [ad.own.adv_no for ad in self.ads if ad.own is not None and ad.market == market]

    def _reference_pollers(self) -> None:
        groups: dict[tuple[str, str], set[str]] = {}
        for ad in self.ads:
            c = ad.loaded.config
            asset = ad.own.asset if ad.own else c.asset
            fiat = ad.own.fiat if ad.own else c.fiat
            side = ad.own.side.value if ad.own else c.side
            if asset and fiat and side:
                groups.setdefault((fiat, str(side)), set()).add(asset)
        polled = {(p.fiat, p.side) for p in self.pollers if isinstance(p, ReferencePoller)}
        for (fiat, side), assets in sorted(groups.items()):
            if (fiat, side) in polled:
                continue
            poller = ReferencePoller(self.api, sorted(assets), fiat, side,
                                     pay_type=self.cfg.bot.reference_pay_type,
                                     **self._kw(self.cfg.bot.reference_interval))
            self.pollers.append(poller)
            if self._tg is not None:  # a market added by a reload
                self._workers.append(self._tg.create_task(poller.run(), name=poller.name))

    # --- own ads -------------------------------------------------------------------

    async def _on_own_ads(self, ev: OwnAdsUpdate) -> None:
        self.own_seen = ev.ads
        for ad in self.ads:
            if ad.own is None:
                self._resolve(ad, ev.ads)
        self._say_missing()
        await self.engine.on_own_ads(ev)

    def _say_missing(self) -> None:
        """Name the configured ads not found among your ads: at the first read, then on change."""
        missing = [ad for ad in self.ads if ad.own is None and not ad.problem]
        labels = tuple(ad.label for ad in missing)
        if labels == self._missing:
            return
        self._missing = labels
        if missing:
            named = "; ".join(ad.label if ad.label == ad.loaded.config.selector
                              else f"{ad.label} ({ad.loaded.config.selector})" for ad in missing)
            logger.warning("not found among your {} ads: {}; each waits for the next read of your "
                           "ads (its market is not searched meanwhile)", len(self.own_seen), named)

    def _resolve(self, ad: AdRuntime, ads: tuple[Ad, ...]) -> None:
        c = ad.loaded.config
        if c.adv_no:
            matches = [a for a in ads if a.adv_no == c.adv_no]
        else:
            matches = [a for a in ads if (a.asset, a.fiat_unit, (a.trade_type or "").upper())
                       == (c.asset, c.fiat, str(c.side))]
            online = [a for a in matches if a.adv_status in (None, 1)]
            matches = online or matches
            if len(matches) > 1:
                if not ad.problem:
                    ad.problem = (f"ad {ad.label}: {c.selector} matches {len(matches)} of your ads "
                                  f"({', '.join(a.adv_no for a in matches)}); set adv_no in [[ads]]")
                    logger.error("{}", ad.problem)
                return
        if not matches:
            return  # said by _say_missing, once
        found = matches[0]
        side = Side((found.trade_type or str(c.side)).upper())
        ad.own = to_own(found, side)
        ad.online = found.adv_status in (None, 1)
        self.registry.hints.setdefault("adv_no", found.adv_no)  # the ad write probes re-send
        logger.info("ad {} is {} ({} {}/{} at {})", ad.label, found.adv_no, side, ad.own.asset,
                    ad.own.fiat, ad.own.price)
        warning = step_warning(ad)  # the tick is known only now, from the ad's price scale
        if warning:
            logger.warning("{}", warning)
        self._market_for(ad.own.asset, ad.own.fiat, search_side(side))

    async def _on_market(self, snap: MarketSnapshot) -> None:
        await self.engine.on_market(snap)
        if any(a.last is not None for a in self.ads):
            self.first_decision.set()

    # --- run -----------------------------------------------------------------------

    async def reload(self, loaded: LoadedConfig) -> list[str]:
        """Take a new validated config without a restart; each ad keeps its runtime state."""
        return await apply_config(self, loaded)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then let in-flight work finish (bounded) and close."""
        self._stop_event = stop
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                stagger(self._first_ticks())
                workers = self._workers
                workers += [tg.create_task(p.run(), name=p.name) for p in self.pollers]
                workers.append(tg.create_task(self.registry.run_prober(), name="prober"))
                workers.append(tg.create_task(self.retention.run(), name="retention"))
                workers.append(tg.create_task(self._watch_store(), name="store-watch"))
                workers += [tg.create_task(t(), name=getattr(t, "__qualname__", "part"))
                            for t in self.parts.tasks]
                bus = tg.create_task(self.bus.run(), name="bus")
                await stop.wait()
                await self._stop(workers, bus)
        except* CapabilityUnavailable:
            logger.exception("a part stopped on an unavailable capability")
        finally:
            self._tg = None
            for close in self.parts.closers:
                with contextlib.suppress(Exception):
                    await close()

    def _first_ticks(self) -> list[Poller]:
        """Every poller in the order of its first tick: markets (the first decision waits for
        them), references, orders, then own ads (read once already by start)."""
        desk_poller = getattr(self.desk, "poller", None)
        pollers = [*self.pollers, *([desk_poller] if isinstance(desk_poller, Poller) else [])]
        rank = {MarketPoller: 0, ReferencePoller: 1, OwnAdsPoller: 3}
        return sorted(pollers, key=lambda p: rank.get(type(p), 2))

    def abort(self, reason: str) -> None:
        """Stop the bot because it must not go on (`run` exits 2 with the reason)."""
        if self.fatal is None:
            self.fatal = reason
            logger.error("stopping: {}", reason)
        if self._stop_event is not None:
            self._stop_event.set()

    async def _watch_store(self) -> None:
        """Stop when the store file is deleted or replaced under the running bot.

        Writes would go to an unlinked file and the next start would not know what was
        already sent (greetings twice): stopping now loses nothing that is not lost already.
        """
        while True:
            why = self.store.replaced()
            if why is not None:
                self.abort(f"{why}; everything written since is lost with the old file. Put the "
                           "store back (or start on the new one knowingly) and start the bot again")
                return
            await self.clock.sleep(STORE_WATCH)

    def _on_store_full(self, full: bool) -> None:
        """A full disk: say so once (pricing goes on; decisions and orders are not stored)."""
        if full:
            logger.error("{}. Pricing goes on; decisions, orders and chat are not stored until "
                         "there is room", full_message(self.store.path))
            alert = getattr(self.desk, "notes", None)
            if alert is not None:
                self._alerts.append(asyncio.ensure_future(alert.alert_now(
                    "disk_full", f"Disk full: {full_message(self.store.path)}")))
        else:
            logger.warning("the store {} is writable again", self.store.path)

    async def _stop(self, workers: list[asyncio.Task[Any]], bus: asyncio.Task[Any]) -> None:
        """No new work; the handlers in flight and queued events finish within STOP_GRACE in all."""
        logger.info("stopping: no new work; finishing in-flight requests")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE
        for w in workers:
            w.cancel()
        await asyncio.wait(list(workers), timeout=STOP_GRACE)
        settled = await self.bus.settle(max(0.0, deadline - loop.time()))
        if not settled:
            logger.warning("stop grace of {:.0f} s ran out with work in flight; the next start "
                           "reads your ads back from the exchange", STOP_GRACE)
        bus.cancel()
