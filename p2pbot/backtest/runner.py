"""One config over a market history: the real pricing engine (bot.pricing.engine) on a virtual clock.

The engine, its strategies, filters, guards (edit budget and pacing included), settle
window and floating rules are the bot's own; only its surroundings are replaced: the
clock is the history's, the exchange answers every update with success at once, the
capability registry says what the recording says was working. See p2pbot.backtest.world for
what is replayed and what is modelled.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from bot.binance.models import Ad, SearchItem
from bot.capabilities.registry import CapabilityStatus
from bot.events import MarketSnapshot, OwnAdsUpdate, ReferenceUpdate
from bot.health import CapState
from bot.pricing.engine import AdRuntime, PricingEngine
from config.loader import LoadedAd, LoadedConfig
from p2pbot.backtest.world import History, OrderModel, Step, answer, place, to_item
from state.decisions import DecisionRow
from strategies.base import OwnAd, Side


class ReplayError(Exception):
    """A config that cannot be replayed on this history (e.g. an ad with no recorded market)."""


class VirtualClock:
    """The history's time: set by the runner, never read from the machine."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def time(self) -> float:
        """Now, in the history."""
        return self.now

    def monotonic(self) -> float:
        """Now, in the history."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Nothing sleeps in a replay."""
        await asyncio.sleep(0)


class ReplayRegistry:
    """What the pricing engine asks the capability registry, answered from the recording."""

    def __init__(self) -> None:
        self.caps: frozenset[str] = frozenset()
        self.health: dict[str, Any] = defaultdict(lambda: None)

    def route(self, capability: str) -> str | None:
        """The source: the exchange's reference, and a working source for everything else."""
        return "exchange" if capability == "reference_price" else "replay"

    def enabled(self) -> frozenset[str]:
        """The capabilities working when the decision was recorded."""
        return self.caps

    def status(self, capability: str) -> CapabilityStatus:
        """Every capability runs."""
        return CapabilityStatus(capability, CapState.ENABLED, "replay", None)


class ReplayApi:
    """The exchange's side of an update: accepted at once, the price the engine set is shown."""

    def __init__(self) -> None:
        self.updates: list[tuple[float, str, Decimal | None, Decimal | None]] = []
        self.clock: VirtualClock | None = None
        self.ads: dict[str, OwnAd] = {}

    async def update_ad_price(self, adv_no: str, *, price: Decimal | None = None,
                              ratio: Decimal | None = None) -> None:
        """Accept the update."""
        self.updates.append((self.clock.time() if self.clock else 0.0, adv_no, price, ratio))

    async def update_ad_visible(self, adv_no: str, visible: bool) -> bool:
        """Accept a hide or show."""
        return True

    async def ad_detail(self, adv_no: str) -> Ad:
        """The ad as the engine last set it."""
        own = self.ads[adv_no]
        return Ad.model_validate({"advNo": adv_no, "price": str(own.price), "advStatus": 1,
                                  "priceFloatingRatio": None if own.ratio is None
                                  else str(own.ratio)})


def own_read(a: dict[str, Any]) -> Ad:
    """A recorded read of one of our ads, as the exchange's model."""
    return Ad.model_validate({
        "advNo": a["adv_no"], "price": a["price"], "priceType": a["price_type"],
        "priceFloatingRatio": a["ratio"], "advStatus": a["status"], "tradeType": a["trade_type"],
        "asset": a["asset"], "fiatUnit": a["fiat"], "tradableQuantity": a["available"],
        "minSingleTransAmount": a["min"], "maxSingleTransAmount": a["max"],
        "priceScale": a["scale"], "tradeMethods": [{"identifier": p} for p in a["pay"]]})


def own_from(d: dict[str, Any]) -> OwnAd:
    """The recorded state of our ad."""
    o = d["own"]
    return OwnAd(adv_no=d["adv_no"], side=Side(d["side"]), asset=d["asset"], fiat=d["fiat"],
                 price=Decimal(o["price"]), price_type=o["type"],
                 ratio=None if o["ratio"] is None else Decimal(o["ratio"]),
                 min_amount=Decimal(o["min"]), max_amount=Decimal(o["max"]),
                 available=Decimal(o["available"]), pay_methods=frozenset(o["pay"]),
                 price_scale=int(o["scale"]))


@dataclass
class Sample:
    """One decision of the replayed engine and how long it stood."""

    at: float
    span: float
    row: DecisionRow
    price: Decimal  # the ad's price after the decision
    rank: int | None
    standing: int | None
    rivals: list[Decimal]  # the three best rival prices the engine saw
    diverged: bool
    orders: Decimal
    volume: Decimal


@dataclass
class AdRun:
    """What one configured ad did over the history."""

    label: str
    adv_no: str
    side: str
    floor: Decimal | None
    ceiling: Decimal | None
    samples: list[Sample] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)  # the live decisions, in order


@dataclass
class Run:
    """One config over one history."""

    name: str
    ads: list[AdRun]
    steps: int
    seconds: float  # of history


def match(loaded: LoadedConfig, history: History) -> list[tuple[LoadedAd, str]]:
    """Each configured ad and the recorded ad it stands for: by adv_no, else by market."""
    pairs, taken = [], set()
    for ad in loaded.ads:
        c = ad.config
        found = [no for no, d in history.ads.items() if no not in taken and (
            no == c.adv_no if c.adv_no else
            (d["asset"], d["fiat"], d["side"]) == (c.asset, c.fiat, str(c.side)))]
        if not found:
            have = sorted({f"{d['asset']}/{d['fiat']} {d['side']}" for d in history.ads.values()})
            raise ReplayError(f"{loaded.path}: [[ads]] #{ad.index + 1} ({ad.label}): no recorded "
                              f"ad for {c.selector} in the {history.source} (it has: "
                              f"{', '.join(have) or 'no ads'})")
        taken.add(found[0])
        pairs.append((ad, found[0]))
    return pairs


class Replay:
    """The real engine of one config, driven over a history step by step."""

    def __init__(self, name: str, loaded: LoadedConfig, history: History,
                 orders: OrderModel | None = None) -> None:
        self.name, self.loaded, self.history = name, loaded, history
        self.orders = orders or OrderModel()
        self.clock = VirtualClock(history.span[0])
        self.api = ReplayApi()
        self.api.clock = self.clock
        self.registry = ReplayRegistry()
        pairs = match(loaded, history)
        self.runtimes = {no: AdRuntime(ad) for ad, no in pairs}
        b = loaded.app.bot
        self.engine = PricingEngine(
            list(self.runtimes.values()), api=self.api,  # type: ignore[arg-type]
            registry=self.registry, clock=self.clock,  # type: ignore[arg-type]
            dry_run=False, kill_switch=b.kill_switch, reference_max_jump=b.reference_max_jump,
            settle_seconds=b.settle_seconds)
        self.engine.reference_interval = b.reference_interval
        self.open: dict[str, int | None] = {}
        self.diverged: dict[str, bool] = {}  # adv_no -> its price differs from the recorded one
        self.engine.open_orders = lambda adv_no: self.open.get(adv_no)
        self.runs = {no: AdRun(rt.label, no, history.ads[no]["side"], rt.loaded.config.guards.floor,
                               rt.loaded.config.guards.ceiling) for no, rt in self.runtimes.items()}
        self.rows: list[tuple[AdRuntime, DecisionRow]] = []
        self.engine.observers.append(lambda ad, row: self.rows.append((ad, row)))
        self.items: dict[tuple[Any, ...], SearchItem] = {}  # a row seen before is not parsed again
        self.bots: dict[tuple[str, str, str], dict[str, Any]] = {}
        for (market, user), bot in history.bots.items():
            self.bots.setdefault(market, {})[user] = bot

    async def run(self) -> Run:
        """Every step of the history, in order, with the reference and own-ads reads between."""
        events, i = self.history.events, 0
        for step in self.history.steps:
            while i < len(events) and events[i][0] <= step.at:
                await self.event(*events[i])
                i += 1
            await self.step(step)
        first, last = self.history.span
        return Run(self.name, list(self.runs.values()), len(self.history.steps), last - first)

    async def event(self, at: float, kind: str, body: dict[str, Any]) -> None:
        """A reference read, or a read of our ads (those whose price is still the recorded one:
        a read of a config's own price does not exist)."""
        if self.clock.now < at:
            self.clock.now = at
        if kind == "reference":
            price = None if body["price"] is None else Decimal(body["price"])
            await self.engine.on_reference(ReferenceUpdate(
                body["asset"], body["fiat"], body["side"], price, at, stale=body["stale"]))
            return
        ads = tuple(own_read(a) for a in body["ads"]
                    if a["adv_no"] in self.runtimes and not self.diverged.get(a["adv_no"]))
        if ads:
            await self.engine.on_own_ads(OwnAdsUpdate(ads, at))

    async def step(self, step: Step) -> None:
        """One snapshot: set what the recording says, let the engine decide, note the outcome."""
        self.clock.now = step.at
        diverged: dict[str, bool] = {}
        for d in step.decisions:
            rt = self.runtimes.get(d["adv_no"])
            if rt is not None:
                diverged[d["adv_no"]] = self.diverged[d["adv_no"]] = self._prepare(rt, d)
        if not diverged:
            return
        rows = self._book(step, diverged)
        self.rows = []
        asset, fiat, side = step.market
        items = tuple(self._item(r, asset, fiat) for r in rows)
        await self.engine.on_market(MarketSnapshot(asset, fiat, side, items, len(items), step.at))
        self._note(step, diverged, rows)

    def _item(self, row: list[Any], asset: str, fiat: str) -> SearchItem:
        key = (asset, fiat, *row[:7], tuple(row[7]), *row[8:])
        item = self.items.get(key)
        if item is None:
            if len(self.items) > 200_000:
                self.items.clear()
            item = self.items[key] = to_item(row, asset, fiat)
        return item

    def _prepare(self, rt: AdRuntime, d: dict[str, Any]) -> bool:
        """Our ad as recorded (its price our own once it differs); the reference, capabilities."""
        recorded = own_from(d)
        diverged = rt.own is not None and rt.own.price != recorded.price
        if rt.own is None or not diverged:
            rt.own = recorded
        else:
            rt.own = replace(recorded, price=rt.own.price, ratio=rt.own.ratio)
        self.api.ads[rt.own.adv_no] = rt.own
        rt.online = bool(d.get("online", True))
        self.open[rt.own.adv_no] = d.get("open")
        self.registry.caps = frozenset(d.get("caps") or ())
        key = (recorded.asset, recorded.fiat, recorded.side.value)
        ref = d.get("reference")
        if ref is not None and ref["source"] == "exchange":
            self.engine.references[key] = (Decimal(ref["price"]), self.clock.now - ref["age"])
            if ref["stale"]:
                self.engine.stale_references.add(key)
            else:
                self.engine.stale_references.discard(key)
        else:
            self.engine.references.pop(key, None)
        return diverged

    def _book(self, step: Step, diverged: dict[str, bool]) -> list[list[Any]]:
        """The search page: as recorded, or with our row moved and the rival bots answering."""
        if not any(diverged.values()):
            return step.rows
        mine = {no for no, d in diverged.items() if d}
        rows = [r for r in step.rows if r[0] not in mine]
        market_bots = self.bots.get(step.market, {})
        moved = []
        for no in mine:
            own = self.runtimes[no].own
            assert own is not None
            old = next((r for r in step.rows if r[0] == no), None)
            row = list(old) if old is not None else [no, "", "", "", str(own.min_amount),
                                                      str(own.max_amount), str(own.available),
                                                      sorted(own.pay_methods), 1, 0, None, None]
            row[3] = str(own.price)
            moved.append(row)
            tick = own.tick
        if market_bots:
            rows = answer(place_all(rows, moved, step.market[2]), market_bots, step.market[2],
                          tick)
            return rows[:len(step.rows)]
        return place_all(rows, moved, step.market[2])[:len(step.rows)]

    def _note(self, step: Step, diverged: dict[str, bool], rows: list[list[Any]]) -> None:
        for ad, row in self.rows:
            if ad.own is None or ad.own.adv_no not in self.runs:
                continue
            own = ad.own
            rivals = [Decimal(r[3]) for r in rows if r[0] not in self.runs][:3]
            expected = self.orders.expected(ad.rank, step.span)
            size = self.orders.order_size(own.min_amount, own.available, own.price)
            self.runs[own.adv_no].samples.append(Sample(
                step.at, step.span, row, own.price, ad.rank, ad.standing, rivals,
                diverged.get(own.adv_no, False), expected, expected * size))
        for d in step.decisions:
            if d["adv_no"] in self.runs:
                self.runs[d["adv_no"]].recorded.append(d)


def place_all(rows: list[list[Any]], moved: list[list[Any]], side: str) -> list[list[Any]]:
    """Every moved row placed by price."""
    for row in moved:
        rows = place(rows, row, side)
    return rows


async def replay(name: str, loaded: LoadedConfig, history: History,
                 orders: OrderModel | None = None) -> Run:
    """Run `loaded` over `history`."""
    return await Replay(name, loaded, history, orders).run()

