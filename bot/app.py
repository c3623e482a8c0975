"""Bot: the one composition root. It builds every part of one merchant account (registry,
store logs, bus, pollers, pricing engine, order desk), wires them, starts them, takes a
new config while running (reload) and stops them. Nothing plugs itself into it: the
commands hand it extra parts (the web server, the config reloader) through `add_part`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from bot.alerts.refill import Refiller
from bot.alerts.watch import AlertWatch, InventoryWatch
from bot.binance.client import SignedClient
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import BinanceError
from bot.binance.models import Ad
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.clock import Clock, SystemClock, nap
from bot.console.handler import ConsoleHandler
from bot.console.overrides import overlay
from bot.console.telegram import TelegramConsole
from bot.events import (
    CapabilityChanged,
    ChatTakenOver,
    EndpointChanged,
    EventBus,
    MarketSnapshot,
    OrderChanged,
    OwnAdsUpdate,
    ReferenceUpdate,
)
from bot.orders.desk import OrderDesk, build_channels
from bot.polling import Poller, plan_intervals, stagger
from bot.pricing import ads as own_ads
from bot.pricing.cadence import Cadence
from bot.pricing.engine import AdRuntime, PricingEngine, search_side, step_warning, to_own
from bot.pricing.pollers import MarketPoller, OwnAdsPoller, ReferencePoller
from bot.pricing.retention import DecisionRetention
from bot.ratelimit import RateGovernor
from bot.recording.recorder import Recorder
from bot.schedule.keeper import ScheduleKeeper
from config.loader import LoadedConfig
from config.settings import Settings
from state.alerts import AlertStore
from state.db import Store, full_message
from state.decisions import DecisionLog
from state.endpoints import EndpointLog
from state.meta import Meta
from state.recording import RecordingLog
from strategies.base import Side

STOP_GRACE = 5.0  # seconds in-flight work gets to finish at shutdown (in all)
STORE_WATCH = 60.0  # seconds between checks that the store file is still the one opened
# (every write checks it too: a write is refused from the first one after the change)


class StartupError(Exception):
    """The bot cannot start as configured (e.g. a selector matches two ads): exit 2."""


@dataclass
class Parts:
    """Extra long-running parts a command adds (the web server, the reloader): run and close."""

    tasks: list[Callable[[], Coroutine[Any, Any, Any]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


class Bot:
    """One merchant account: builds the pieces on start, runs them until stopped."""

    def __init__(self, loaded: LoadedConfig, client: SignedClient, store: Store,
                 *, clock: Clock | None = None, settings: Settings | None = None) -> None:
        self.loaded = loaded
        self.toml = loaded  # the file as read; `loaded` adds the console's overrides (start, reload)
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
        self.recorder = self._recorder()  # [recording]: what each decision saw (bot.recording)
        self.pollers: list[Poller] = []
        self.started_at: float | None = None
        self.first_decision = asyncio.Event()
        self._markets: dict[tuple[str, str, str], MarketPoller] = {}
        self._tg: asyncio.TaskGroup | None = None
        self.desk = OrderDesk(
            api=self.api, registry=self.registry, bus=self.bus, clock=self.clock, store=store,
            app=self.cfg, channels=build_channels(self.cfg, settings or Settings()),
            banned_until=lambda: self.client.banned_until,
            dry_run=lambda: self.cfg.bot.dry_run)  # the one flag, as a reload leaves it
        self.desk.poller.governor = self.governor
        self.engine.open_orders = self.desk.open_count  # the exchange hides ads with too many
        self.engine.alerts.append(self.desk.notes.notify)
        self.keeper: ScheduleKeeper | None = None  # the ads' hours ([schedule], [ads.schedule])
        self._new_hours = asyncio.Event()  # a reload built a new keeper
        self._hours_lock = asyncio.Lock()  # a keeper's tick, or a reload replacing the keeper
        self.alert_watch: AlertWatch | None = None  # repeats until acknowledged, chat SLA, inventory
        self.refiller: Refiller | None = None  # [inventory] refill
        self.console: TelegramConsole | None = None  # [telegram] enabled: commands from a phone
        self._workers: list[asyncio.Task[Any]] = []  # cancelled first at stop (pollers, parts)
        self.own_seen: tuple[Ad, ...] = ()  # the latest read of own ads (a reload resolves from it)
        self._missing: tuple[str, ...] = ()  # configured ads last said to be not found
        self.fatal: str | None = None  # why the bot stopped itself (run exits 2 with it)
        self._stop_event: asyncio.Event | None = None
        self._alerts: list[asyncio.Future[Any]] = []  # alerts sent without the store (disk full)
        store.on_full.append(self._on_store_full)
        store.on_replaced.append(self._on_store_replaced)

    def _recorder(self) -> Recorder | None:
        """Record unless `[recording] enabled = false`: the engine's hook, the order and read
        feeds, the writer task, and a last write when the bot stops."""
        cfg = self.cfg.recording
        if not cfg.enabled:
            return None
        log = RecordingLog(self.store, retention_days=cfg.retention_days, max_mb=cfg.max_mb)
        recorder = Recorder(log, self.clock)
        self.engine.recorder = recorder.decided
        self.bus.subscribe(OrderChanged, recorder.on_order, name="recording")
        self.bus.subscribe(ReferenceUpdate, recorder.on_reference, name="recording-reference")
        self.bus.subscribe(OwnAdsUpdate, recorder.on_own_ads, name="recording-own")
        self.add_part(recorder.run, recorder.flush)
        return recorder

    # --- start ---------------------------------------------------------------------

    async def start(self) -> None:
        """Sync the clock, honour a persisted ban, read own ads once, plan the pollers."""
        self.started_at = self.clock.time()
        merged = await overlay(self.store, self.toml)
        if merged is not self.toml:
            await self._apply(merged)
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
        self._start_desk()
        self.keeper = self._keeper()
        async with self._hours_lock:
            await self.keeper.tick()  # before the first decision: a closed ad is never priced
        self.add_part(self._keep_hours)
        self._start_alerts()
        self._start_console()

    def _keeper(self, before: ScheduleKeeper | None = None) -> ScheduleKeeper:
        return ScheduleKeeper.build(self.cfg, self.ads, api=self.api, registry=self.registry,
                                    clock=self.clock, meta=Meta(self.store), before=before)

    async def _keep_hours(self) -> None:
        """The schedule keeper's loop: at every change of a schedule, at least every minute,
        and at once when a reload gives it a new keeper."""
        while True:
            assert self.keeper is not None
            if await nap(self.clock, self.keeper.sleep_for(), self._new_hours):
                self._new_hours.clear()
            async with self._hours_lock:
                await self.keeper.tick()

    def _start_alerts(self) -> None:
        """Alerts that repeat until acknowledged and the chat SLA; the inventory alert and the
        refill (it acts only when `[inventory] refill` is on) hear every read of own ads."""
        notes = self.desk.notes
        self.alert_watch = AlertWatch(orders=self.desk.orders, alerts=AlertStore(self.store),
                                      notes=notes, clock=self.clock, config=lambda: self.cfg)
        self.add_part(self.alert_watch.run)
        inventory = InventoryWatch(notes, lambda: self.ads, lambda: self.cfg)
        self.bus.subscribe(OwnAdsUpdate, inventory.on_own_ads, name="inventory")
        self.refiller = Refiller(self.api, notes, self.clock, lambda: self.ads, lambda: self.cfg,
                                 lambda: self.cfg.bot.dry_run)
        self.bus.subscribe(OwnAdsUpdate, self.refiller.on_own_ads, name="refill")

    def _start_console(self) -> None:
        """The Telegram console when `[telegram] enabled` and the token is set."""
        cfg = self.cfg.telegram
        if not cfg.enabled:
            return
        token = (self.settings or Settings()).telegram_token
        if token is None or not token.get_secret_value():
            logger.error("[telegram] enabled = true but P2PBOT_TELEGRAM_TOKEN is not set: "
                         "the console is off")
            return
        self.console = TelegramConsole(token, cfg, ConsoleHandler(self).handle)
        self.add_part(self.console.poll)
        self.add_part(self.console.sender, self.console.close)
        logger.info("console: Telegram commands from chat(s) {}",
                    ", ".join(map(str, cfg.allowed_chat_ids)))

    def _start_desk(self) -> None:
        """The order side: the desk hears chat statuses; notifications hear the registry."""
        desk = self.desk
        desk.started_at = self.client.now_ms() / 1000  # the exchange's time, as orders' creation
        desk.subscribe()
        self.bus.subscribe(CapabilityChanged, desk.notes.on_capability, name="notify-capabilities")
        self.bus.subscribe(EndpointChanged, desk.notes.on_endpoint, name="notify-endpoints")
        self.bus.subscribe(ChatTakenOver, desk.notes.on_chat_taken_over, name="notify-chat")
        self._plan()
        for run in desk.tasks():
            self.add_part(run)
        self.add_part(close=desk.close)

    def add_part(self, run: Callable[[], Coroutine[Any, Any, Any]] | None = None,
                 close: Callable[[], Awaitable[Any]] | None = None) -> None:
        """A long-running part to run beside the others (until stop) and/or close at the end."""
        if run is not None:
            self.parts.tasks.append(run)
        if close is not None:
            self.parts.closers.append(close)

    def _plan(self) -> None:
        """One weight budget for every poller, the order desk's included."""
        plan_intervals([*self.pollers, self.desk.poller], self.cfg.bot.weight_budget)

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
            named = own_ads.missing_labels(missing)
            logger.warning("not found among your {} ads: {}; each waits for the next read of your "
                           "ads (its market is not searched meanwhile)", len(self.own_seen), named)

    def _resolve(self, ad: AdRuntime, ads: tuple[Ad, ...]) -> None:
        matches = own_ads.matches(ad, ads)
        problem = own_ads.ambiguity(ad, matches)
        if problem is not None:
            if not ad.problem:
                ad.problem = problem
                logger.error("{}", ad.problem)
            return
        if not matches:
            return  # said by _say_missing, once
        found = matches[0]
        side = Side((found.trade_type or str(ad.loaded.config.side)).upper())
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
        """Take a new validated config without a restart; each ad keeps its runtime state
        (current price, rank, edit history), only what the file says changes. Returns what
        changed, for the log. The console's stored overrides are laid over it again
        (bot.console.overrides)."""
        self.toml = loaded
        return await self._apply(await overlay(self.store, loaded))

    async def _apply(self, loaded: LoadedConfig) -> list[str]:
        """A config (overrides laid over) taken while running; what changed, for the log."""
        old = self.cfg
        ads, added, removed = own_ads.merge(self.ads, loaded.ads)
        self.loaded, self.cfg, self.ads = loaded, loaded.app, ads
        self._configure(loaded)
        for ad in added:  # its market is searched once it is found (_resolve)
            if self.own_seen:
                self._resolve(ad, self.own_seen)
        self._reference_pollers()
        self._intervals()
        changes = [f"{len(ads)} ad(s)"]
        changes += [f"added {ad.label}" for ad in added] + [f"removed {label}" for label in removed]
        if old.bot.dry_run != loaded.app.bot.dry_run:
            changes.append(f"dry_run {loaded.app.bot.dry_run}")
        if old.bot.kill_switch != loaded.app.bot.kill_switch:
            changes.append(f"kill_switch {loaded.app.bot.kill_switch}")
        if (old.orders, old.chat, old.bot.orders_interval) != (
                loaded.app.orders, loaded.app.chat, loaded.app.bot.orders_interval):
            changes.append("[orders] and [chat] taken")  # new texts for the next reactions
        if old.web != loaded.app.web:
            logger.warning("config reload: [web] changes take effect at the next restart")
        if self.keeper is not None:  # new hours, zone or dry run: at once (bot/schedule/keeper.py)
            async with self._hours_lock:  # not in the middle of a tick of the old keeper
                self.keeper = self._keeper(before=self.keeper)
            self._new_hours.set()
            if old.schedule != loaded.app.schedule or old.bot.timezone != loaded.app.bot.timezone:
                changes.append("[schedule] taken")
        return changes

    def _configure(self, loaded: LoadedConfig) -> None:
        """Hand the reloaded settings to the parts that hold them."""
        b = loaded.app.bot
        engine = self.engine
        engine.ads = self.ads
        engine.dry_run = self.registry.dry_run = b.dry_run  # no write probes in a dry run
        engine.kill_switch = b.kill_switch
        engine.reference_max_jump = b.reference_max_jump
        engine.reference_interval = b.reference_interval
        engine.settle_seconds = b.settle_seconds
        for track in engine.tracks.values():
            track.max_jump = b.reference_max_jump
        self.registry.config = loaded.app.capabilities.probe_config()
        self.retention.days = b.decisions_retention_days
        self.desk.configure(loaded.app)

    def _intervals(self) -> None:
        b = self.cfg.bot
        for p in self.pollers:
            if isinstance(p, MarketPoller):
                p.interval = b.market_interval
            elif isinstance(p, ReferencePoller):
                p.interval = b.reference_interval
                if p.pay_type != b.reference_pay_type:  # a reload: the filter is tried afresh
                    p.pay_type, p.unfiltered_until = b.reference_pay_type, 0
            elif isinstance(p, OwnAdsPoller):
                p.interval = b.my_ads_interval
        self.governor.budget = b.weight_budget
        self.cadence.band = self.cfg.band()
        self.cadence.replan()
        self.client.max_response_bytes = b.max_response_bytes
        self.client.max_in_flight = b.max_in_flight
        self.client.scheduler.max_queued = b.max_queued
        self._plan()

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
        pollers = [*self.pollers, self.desk.poller]
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
        """Stop when the store file is deleted or replaced under the running bot, even when
        nothing is written (a write notices it at once: `_on_store_replaced`).

        Writes would go to an unlinked file and the next start would not know what was
        already sent (greetings twice): stopping now loses nothing that is not lost already.
        """
        while True:
            why = self.store.replaced()
            if why is not None:
                self._on_store_replaced(why)
                return
            await self.clock.sleep(STORE_WATCH)

    def _on_store_replaced(self, why: str) -> None:
        self.abort(f"{why}; nothing was written to it since. Put the store back (or start on "
                   "the new one knowingly) and start the bot again")

    def _on_store_full(self, full: bool) -> None:
        """A full disk: say so once (pricing goes on; decisions and orders are not stored)."""
        if full:
            logger.error("{}. Pricing goes on; decisions, orders and chat are not stored until "
                         "there is room", full_message(self.store.path))
            self._alerts.append(asyncio.ensure_future(self.desk.notes.alert_now(
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
