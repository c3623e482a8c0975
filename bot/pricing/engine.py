"""The pricing engine: snapshot -> context -> strategy -> guards -> ad update, with a trace.

The strategy decides; the engine does the I/O and enforces the envelope
(bot.pricing.guards). The reason recorded for an update describes the price sent, which the
guards may have changed (`sent_reason`). A timeout or 5xx on an update is an
unknown outcome: the ad is read back and the update reissued only if the price
differs, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar

from loguru import logger

from bot.binance.errors import (
    AdNotFound,
    BadResponse,
    BinanceError,
    BusinessError,
    ExchangeUnavailable,
    PriceOutOfRange,
    QuantityConflict,
)
from bot.binance.models import Ad, SearchItem
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable, describe_causes
from bot.clock import Clock
from bot.events import CapabilityChanged, MarketSnapshot, OwnAdsUpdate, ReferenceUpdate
from bot.health import CapState
from bot.pricing.band import BandBook
from bot.pricing.floating import (
    RATIO_TICK,
    ReferenceTrack,
    Suspect,
    choose_ratio,
    effective,
    inner_bounds,
    outside,
)
from bot.pricing.guards import Update, Verdict, check
from bot.pricing.market_book import MarketBook, best_trace
from bot.pricing.rivals import Profiles, RivalBooks
from bot.pricing.visibility import MARKET_STALE, hidden_reason, unsafe_reason
from config.loader import LoadedAd
from state.db import StoreUnwritable
from state.decisions import DecisionLog, DecisionRow
from strategies.base import (
    CompetitorAd,
    Decision,
    Hold,
    Move,
    OwnAd,
    PriceBand,
    PricingContext,
    Reference,
    Reprice,
    Side,
    ordinal,
    safe_decide,
)
from strategies.filters import CompetitorFilters, FilterResult

DERIVED_TOP = 5  # the derived reference is the median of this many best filtered ads
REFERENCE_MAX_AGE = 600.0  # seconds after which Binance's reference is too old to use
# seconds after an update during which the price the bot set is the truth: the exchange's reads
# of the ad (search, the ads list, getDetailByNo) may still show it as it was (read-your-write
# lag); peers keep their price for 30 to 60 s. [bot] settle_seconds
REFERENCE_EVERY = 30.0  # seconds between reference reads (the margin is per read interval)
SETTLE = 45.0
CONFLICT_HOLD = 300.0  # seconds an ad holds after its quantity state was refused twice in a row
MOVES_SHOWN = 100  # the ad's own last updates a strategy sees (PricingContext.moves)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _relation(decision: Decision) -> dict[str, Any]:
    """The relation a Reprice keeps to the competitor it names, for the trace."""
    if not isinstance(decision, Reprice) or decision.relation is None:
        return {}
    return {"relation": decision.relation, "target": _str(decision.target),
            "target_name": decision.target_name}


def search_side(side: Side) -> str:
    """The taker's side to search with: a SELL ad's rivals are found with BUY."""
    return "BUY" if side is Side.SELL else "SELL"


def to_competitor(item: SearchItem) -> CompetitorAd:
    """A search result as the strategy sees it."""
    adv, who = item.adv, item.advertiser
    dec = Decimal
    return CompetitorAd(
        adv_no=adv.adv_no, user_no=who.user_no or "", nickname=who.nick_name, price=adv.price,
        min_amount=adv.min_single_trans_amount or dec(0),
        max_amount=adv.dynamic_max_single_trans_amount or adv.max_single_trans_amount or dec(0),
        available=adv.tradable_quantity or adv.surplus_amount or dec(0),
        pay_methods=frozenset(m.identifier for m in adv.trade_methods if m.identifier),
        is_merchant=(who.user_type or "").lower() == "merchant",
        month_orders=who.month_order_count or 0, completion_rate=who.month_finish_rate or dec(0),
    )


def to_own(ad: Ad, side: Side) -> OwnAd:
    """One of the merchant's ads as the strategy sees it."""
    floating = ad.price_type == 2
    return OwnAd(
        adv_no=ad.adv_no, side=side, asset=ad.asset or "", fiat=ad.fiat_unit or "", price=ad.price,
        price_type="floating" if floating else "fixed",
        ratio=ad.price_floating_ratio if floating else None,
        min_amount=ad.min_single_trans_amount or Decimal(0),
        max_amount=ad.max_single_trans_amount or Decimal(0),
        available=ad.tradable_quantity or ad.surplus_amount or Decimal(0),
        pay_methods=frozenset(m.identifier for m in ad.trade_methods if m.identifier),
        price_scale=ad.price_scale if ad.price_scale is not None else 2,
    )


@dataclass(frozen=True, slots=True)
class Settle:
    """The bot's last update of an ad: what it set, and what the ad showed before."""

    at: float
    price: Decimal
    before: Decimal
    ratio: Decimal | None = None  # floating ads: the ratio set, and the one before
    ratio_before: Decimal | None = None


@dataclass
class AdRuntime:
    """One configured ad while the bot runs."""

    loaded: LoadedAd
    own: OwnAd | None = None
    online: bool = True
    updates: list[Update] = field(default_factory=list)
    last: DecisionRow | None = None
    rank: int | None = None  # position in the exchange's search results (decoys included)
    standing: int | None = None  # position among the competitors that count (after filters)
    best: CompetitorAd | None = None
    reference: Reference | None = None
    price_seen_at: float = 0.0  # when `own.price` was last seen at the exchange (floating ads)
    problem: str = ""  # why it cannot be resolved (e.g. its selector matches two ads)
    hidden: str = ""  # why the exchange hides it from search now, as the bot works it out
    hidden_by_bot: str = ""  # why the bot hid it (visible = 0; on_unsafe = "hide")
    band_hold: str = ""  # the exchange's band leaves no price within the guards (last decision)
    market_at: float | None = None  # when market data last reached this ad
    settle: Settle | None = None  # the last update, the truth for the settle window
    stale_reads: int = 0  # reads of the ad not believed because they predate our update
    dry_said: tuple[Decimal | None, str] | None = None  # the dry run's last INFO line (price, why)
    held_until: float = 0.0  # no strategy update before this (the exchange kept refusing it)
    closed: str = ""  # why its schedule keeps it out now (bot/schedule/keeper.py); "" = open

    moves: ClassVar[int] = 0  # how often any ad's market or id changed: engines index ads again

    def __setattr__(self, name: str, value: Any) -> None:
        """Keep `market` with `own`: setting `own` anywhere (its market or ad id changed) tells the
        engines to index their ads by market again. (A hook on writes: `own` is read far more.)"""
        object.__setattr__(self, name, value)
        if name == "own":
            market = None if value is None else (value.asset, value.fiat, search_side(value.side))
            identity = (market, None if value is None else value.adv_no)
            if identity != self.__dict__.get("_identity"):
                object.__setattr__(self, "_identity", identity)
                AdRuntime.moves += 1

    @property
    def label(self) -> str:
        """The ad's name for logs."""
        return self.loaded.label

    @property
    def market(self) -> tuple[str, str, str] | None:
        """(asset, fiat, search side) once resolved."""
        identity = self.__dict__.get("_identity")
        return None if identity is None else identity[0]


def sent_reason(decision: Reprice, verdict: Verdict, side: Side,
                competitors: Sequence[CompetitorAd], *, sent_word: str = "sent") -> str:
    """The reason for sending `verdict.price`, describing that price and not the one asked for.

    When the guards sent the strategy's price, its reason stands. When they changed it
    (rounding to the tick, a bound, max_step...), the reason is rebuilt from the price
    sent: the rank it takes among `competitors` and where it stands against the
    competitor the decision names, e.g. "1st: 0.99, 0.003 below 'alpha' (0.993); rounded
    from 0.992 to the 0.01 tick"; a decision naming none keeps its reason with the price
    sent added (`sent_word`: a floating ad is sent a ratio, and its price is "aimed at").
    The guards hit follow in brackets.
    """
    sent = verdict.price
    assert sent is not None
    notes = list(verdict.notes)
    if sent == decision.price:
        why = decision.reason
    else:
        if not any(n.startswith(f"rounded from {decision.price} ") for n in notes):
            notes.append(f"the strategy asked for {decision.price}")
        if decision.relation is not None and decision.target is not None:
            rank = 1 + sum(1 for c in competitors if side.better(c.price, sent))
            where = side.position(sent, decision.target, decision.target_name or "the target")
            why = f"{ordinal(rank)}: {sent}, {where}"
        else:
            why = f"{decision.reason}; {sent_word} {sent}"
        why = "; ".join([why, *notes])
    if verdict.hits:
        why = f"{why} [guards: {', '.join(verdict.hits)}]"
    return why


def step_warning(ad: AdRuntime) -> str | None:
    """A warning when the strategy's `step` is finer than (or off) the ad's tick, else None.

    The tick is the ad's price scale, known once the ad is read from the exchange.
    Rounding keeps the step's intent (strictly ahead of the competitor), so the ad
    moves a whole tick where the step says less: the merchant should know.
    """
    step = getattr(ad.loaded.params, "step", None)
    if ad.own is None or not isinstance(step, Decimal) or step % ad.own.tick == 0:
        return None
    tick = ad.own.tick
    how = "finer than" if step < tick else "not a multiple of"
    return (f"ad {ad.label}: step {step} is {how} the ad's price tick {tick} "
            f"({ad.own.fiat} prices have {ad.own.price_scale} decimals): prices are rounded "
            f"to the tick, keeping them ahead of the competitor beaten, so moves are whole ticks")


class PricingEngine:
    """Decides and applies prices for every configured ad."""

    def __init__(
        self,
        ads: Sequence[AdRuntime],
        *,
        api: P2PApi,
        registry: CapabilityRegistry,
        clock: Clock,
        log: DecisionLog | None = None,
        dry_run: bool = False,
        kill_switch: bool = False,
        reference_max_jump: Decimal = Decimal(5),
        settle_seconds: float = SETTLE,
    ) -> None:
        self.ads = list(ads)
        self.api = api
        self.registry = registry
        self.clock = clock
        self.log = log
        self.dry_run = dry_run
        self.kill_switch = kill_switch
        self.references: dict[tuple[str, str, str], tuple[Decimal, float]] = {}
        self.stale_references: set[tuple[str, str, str]] = set()
        self.reference_max_jump = reference_max_jump
        self.reference_interval = REFERENCE_EVERY  # the Bot sets [bot] reference_interval
        self.settle_seconds = settle_seconds
        self.tracks: dict[tuple[str, str, str], ReferenceTrack] = {}  # (asset, fiat, ad side)
        self.market_median: dict[tuple[str, str, str], Decimal] = {}  # of the last snapshot
        # alerts for the merchant, (kind, key, text); the bot connects its notifications here
        self.alerts: list[Callable[[str, str, str], Awaitable[Any]]] = []
        self.reported: set[tuple[str, str]] = set()
        self.counts: dict[str, int] = {}
        self.observers: list[Callable[[AdRuntime, DecisionRow], Any]] = []  # metrics, alerts
        self._staged: list[tuple[AdRuntime, DecisionRow]] = []  # recorded, not yet flushed
        self.bands = BandBook()  # the exchange's price band, learned from its refusals
        # open orders of an ad (the order desk connects this); None: unknown
        self.open_orders: Callable[[str], int | None] = lambda adv_no: None
        self.market_stale = MARKET_STALE
        self.started_at = clock.time()
        self._hide_failed: dict[str, str] = {}  # adv_no -> the last failure, said once
        # told every decision made on a market snapshot (bot.recording.recorder); None: not recorded
        self.recorder: Callable[[Any, AdRuntime, MarketSnapshot, DecisionRow], Any] | None = None
        self.rivals = RivalBooks()  # competitor profiles per market (bot.pricing.rivals)

    # --- events --------------------------------------------------------------------

    @property
    def ads(self) -> list[AdRuntime]:
        """The configured ads (a reload assigns a new list)."""
        return self._ads

    @ads.setter
    def ads(self, ads: list[AdRuntime]) -> None:
        self._ads = ads
        self._index_key: tuple[int, int] | None = None
        self._tables: dict[int, tuple[CompetitorFilters, CompetitorFilters]] = {}  # id -> (it, canon)
        self._canon: dict[CompetitorFilters, CompetitorFilters] = {}

    def _table(self, filters: CompetitorFilters) -> CompetitorFilters:
        """One filters table for all the ads whose tables are equal: a book finds the ads that
        share one by identity, without hashing every ad's own table by value (each ad has its
        own, most of them equal)."""
        got = self._tables.get(id(filters))
        if got is None or got[0] is not filters:
            if len(self._tables) > 2 * len(self._ads) + 64:  # tables replaced: forget them all
                self._tables.clear()
                self._canon.clear()
            got = self._tables[id(filters)] = (filters, self._canon.setdefault(filters, filters))
        return got[1]

    def _market_ads(self, market: tuple[str, str, str]) -> list[AdRuntime]:
        """The ads of one market, from an index rebuilt only when an ad's market changed."""
        key = (len(self._ads), AdRuntime.moves)
        if key != self._index_key:
            self._index: dict[tuple[str, str, str], list[AdRuntime]] = {}
            for ad in self._ads:
                if ad.market is not None:
                    self._index.setdefault(ad.market, []).append(ad)
            self._own_adv_nos = frozenset(a.own.adv_no for a in self._ads if a.own is not None)
            self._index_key = key
        return self._index.get(market, [])

    def book(self, snap: MarketSnapshot) -> MarketBook:
        """What every ad of the snapshot's market reads from it alike, built once."""
        self._market_ads((snap.asset, snap.fiat, snap.search_side))  # the index is current
        return MarketBook(snap.items, self._own_adv_nos)

    async def on_market(self, snap: MarketSnapshot) -> None:
        """Decide for every ad of this market side by side (their updates go out concurrently,
        within the request scheduler's limits; one ad's slow or refused update never holds the
        others); their decisions are written in one transaction."""
        ads = self._market_ads((snap.asset, snap.fiat, snap.search_side))
        if not ads:
            return
        book = self.book(snap)
        self.observe_rivals(snap, book)
        if len(ads) == 1:  # nothing to run side by side: no task to make
            await self._evaluate_one(ads[0], snap, book)
        else:  # each ad in turn until it waits (most never do: a hold sends nothing); a task
            # carries on with those that wait, side by side, as one task per ad would
            waiting = [t for t in (_eager(self._evaluate_one(ad, snap, book)) for ad in list(ads))
                       if t is not None]
            if waiting:
                await asyncio.gather(*waiting)
        await self._flush()

    async def _evaluate_one(self, ad: AdRuntime, snap: MarketSnapshot, book: MarketBook) -> None:
        """One ad of a snapshot; a crash is this ad's alone (logged), never its neighbours'."""
        try:
            await self._evaluate(ad, snap, book)
        except Exception as exc:  # the bus would log it too, but only once for the whole market
            logger.opt(exception=exc).error("ad {}: deciding on the market snapshot failed: {}",
                                            ad.label, exc)

    async def on_capability(self, ev: CapabilityChanged) -> None:
        """Say why ads hold while market data or repricing is unavailable."""
        if ev.capability in ("market", "repricing"):
            await self.check_visibility()
        if ev.capability not in ("market", "repricing") or ev.new is not CapState.DISABLED:
            return
        cause = ev.cause
        said = "" if cause is None else f" ({cause.endpoint} {cause.code}: {cause.message})"
        if ev.causes:
            said = f" ({describe_causes(ev.causes)})"
        what = "market data" if ev.capability == "market" else "ad updates"
        for ad in self.ads:
            if ad.own is None:
                continue
            row = DecisionRow(self.clock.time(), ad.label, ad.own.adv_no, ad.loaded.strategy.name,
                              ad.own.price, None, "held", f"holding: {what} unavailable{said}")
            await self._record(ad, row)
        await self._flush()

    async def on_reference(self, ev: ReferenceUpdate) -> None:
        """Believe Binance's reference price (unless suspect); re-check floating ads against it."""
        key = (ev.asset, ev.fiat, ev.side)
        if ev.stale:  # not read: the last value stays, marked stale (its age is kept)
            if key in self.references:
                self.stale_references.add(key)
            return
        self.stale_references.discard(key)
        track = self.tracks.setdefault(key, ReferenceTrack(self.reference_max_jump))
        was_suspect = track.suspect is not None
        suspect = track.offer(ev.price, ev.at, self.market_median.get(key))
        if suspect is not None:
            if not was_suspect:
                await self._suspect_reference(key, suspect)
            return
        if was_suspect:
            logger.info("reference {}/{} {}: {} is believed again", *key, ev.price)
        self.references[key] = (ev.price, ev.at)
        for ad in self.ads:
            if ad.own is not None and (ad.own.asset, ad.own.fiat, ad.own.side.value) == key:
                own = ad.own
                if own.price_type == "floating" and own.ratio:
                    shown = effective(ev.price, own.ratio, own.tick)
                    await self._check_floating(ad, shown, f"reference {ev.price} x {own.ratio}%")

    async def _suspect_reference(self, key: tuple[str, str, str], suspect: Suspect) -> None:
        text = f"{key[0]}/{key[1]} {key[2]}: {suspect.text()} (bound: [bot] reference_max_jump)"
        logger.warning("{}", text)
        for alert in self.alerts:
            await alert("reference_suspect", f"reference:{'/'.join(key)}:suspect", text)

    def _follows_reference(self, ad: AdRuntime) -> bool:
        assert ad.own is not None
        return ad.own.price_type == "floating" or ad.loaded.strategy.name == "follow_reference"

    def _settling(self, ad: AdRuntime) -> Settle | None:
        """The ad's last update while its settle window runs, else None."""
        settle = ad.settle
        if settle is None or self.clock.time() - settle.at >= self.settle_seconds:
            return None
        return settle

    def _stale(self, ad: AdRuntime, seen: Decimal, ratio: Decimal | None = None) -> bool:
        """Whether a read of our ad may predate our last update (read-your-write lag).

        For the settle window after an update the price the bot set is the truth: a fixed ad
        read at any other price is not believed (believing it re-sends the same update, or
        "corrects" back and forth). A floating ad's price moves with the reference, so only a
        read showing the price or a ratio from before the update is not believed.
        """
        settle = self._settling(ad)
        if settle is None or ad.own is None:
            return False
        if ad.own.price_type == "floating":
            old_ratio = ratio is not None and settle.ratio is not None and ratio != settle.ratio
            stale = seen == settle.before or old_ratio
        else:
            stale = seen != settle.price
        if stale:
            ad.stale_reads += 1  # shown on the view and the status page
        return stale

    def _rank(self, ad: AdRuntime, book: MarketBook) -> int | None:
        """Our position in the search results. While a read shows our ad as it was before our
        update, the position our own price takes (behind ads at the same price: an update
        moves an ad behind them), not the stale one."""
        assert ad.own is not None
        mine = ad.own.adv_no
        at = book.position.get(mine)
        seen = book.rows[at - 1].adv if at is not None else None
        if self._settling(ad) is None or (seen is not None and not self._stale(
                ad, seen.price, seen.price_floating_ratio)):
            return at
        rank = book.rank_at(ad.own.side, ad.own.price, mine)
        return rank if at is not None or rank <= len(book.rows) else None

    async def _check_floating(self, ad: AdRuntime, shown: Decimal, how: str) -> None:
        """Take the price a floating ad has now; correct it at once when it crossed a bound.

        `shown` comes from a reference read (reference x ratio), or from the exchange's own
        view of the ad (search results, the own-ads read) while the reference cannot be read.
        """
        own = ad.own
        if own is None or own.price_type != "floating" or not own.ratio:
            return
        ad.own = replace(own, price=shown)
        ad.price_seen_at = now = self.clock.time()
        key = (own.asset, own.fiat, own.side.value)
        track = self.tracks.setdefault(key, ReferenceTrack(self.reference_max_jump))
        track.observe_implied(shown * 100 / own.ratio, now, self.reference_interval)
        g = ad.loaded.config.guards
        crossed = outside(shown, g.floor, g.ceiling)
        if crossed is None:
            return
        bound = g.floor if crossed == "floor" else g.ceiling
        assert bound is not None
        why = f"safety: the effective price {shown} ({how}) crossed the {crossed} {bound}"
        await self._correct(ad, bound, why, f"floating_{crossed}")

    async def _correct(self, ad: AdRuntime, target: Decimal, why: str, hit: str) -> None:
        """A safety correction: not the strategy's move, so it skips the pacing guards."""
        assert ad.own is not None
        now = self.clock.time()
        base = DecisionRow(now, ad.label, ad.own.adv_no, ad.loaded.strategy.name, ad.own.price,
                           target, "held", why, (hit,))
        kill = self._kill(ad)
        if kill:
            row = replace(base, reason=f"{why}; not corrected: kill switch: {kill}")
        elif self.dry_run:
            logger.warning("dry run: would correct {}: {}", ad.label, why)
            row = replace(base, result="dry_run")
        elif self.registry.route("repricing") is None:
            row = replace(base, reason=f"{why}; not corrected: repricing unavailable")
        else:
            logger.warning("{}: {}; correcting", ad.label, why)
            row = await self._apply(ad, target, base, why, now)
        trace = {"decision": {"kind": "Correction", "reason": why, "price": str(target)},
                 "guards": [hit], "reference": None if ad.reference is None else
                 _reference_trace(ad.reference)}
        await self._record(ad, replace(row, trace=trace))

    async def on_own_ads(self, ev: OwnAdsUpdate) -> None:
        """Take the exchange's word for our ads' current prices and status."""
        by_no = {a.adv_no: a for a in ev.ads}
        for ad in self.ads:
            if ad.own is not None and ad.own.adv_no in by_no:
                fresh = by_no[ad.own.adv_no]
                ad.online = fresh.adv_status in (None, 1)
                if self._stale(ad, fresh.price, fresh.price_floating_ratio):
                    continue
                ad.own = to_own(fresh, ad.own.side)
                await self._check_floating(ad, ad.own.price, "as your ads list shows it")
        await self.check_visibility()

    # --- one decision --------------------------------------------------------------

    async def evaluate(self, ad: AdRuntime, snap: MarketSnapshot) -> DecisionRow | None:
        """Decide for one ad and write its decision."""
        book = self.book(snap)
        self.observe_rivals(snap, book)
        row = await self._evaluate(ad, snap, book)
        await self._flush()
        return row

    async def _evaluate(self, ad: AdRuntime, snap: MarketSnapshot,
                        book: MarketBook) -> DecisionRow | None:
        """Build the context, ask the strategy, run the guards, apply, record."""
        if ad.own is None:
            return None
        now = self.clock.time()
        # the decision's fields of the ad are written past `AdRuntime.__setattr__` (its hook is
        # for `own` alone, and a Python call per write is a tenth of a decision)
        fields = ad.__dict__
        fields["rank"] = self._rank(ad, book)
        found = book.row(ad.own.adv_no)
        seen = None if found is None else found.adv
        if seen is not None and not self._stale(ad, seen.price, seen.price_floating_ratio) \
                and ad.own.price_type == "floating":  # what `_check_floating` takes, no await else
            await self._check_floating(ad, seen.price, "as search shows it")
            if ad.own is None:
                return None
        filtered = book.filtered(self._table(ad.loaded.config.filters), ad.own)
        own, kept = ad.own, filtered.kept
        fields["best"] = kept[0] if kept else None
        fields["standing"] = book.standing(filtered, own.side, own.price)
        median = book.median(filtered, DERIVED_TOP)
        fields["reference"] = self._reference(own, median, now, book.derived(filtered, DERIVED_TOP))
        key = (own.asset, own.fiat, own.side.value)
        if median is not None:
            self.market_median[key] = median
        track = self.tracks.get(key)
        suspect = track.suspect if track is not None and self._follows_reference(ad) else None
        guards = ad.loaded.config.guards
        band = self.bands.band(key, own.tick, now)
        ctx = self._context(ad, book, filtered, key, band, now)
        # shown in search and not said hidden before: nothing to say, no await (most ads)
        hidden = "" if ad.rank is not None and not ad.hidden else await self._exchange_hidden(ad)
        decision = (Hold(suspect.text()) if suspect is not None else
                    Hold(f"hidden by the exchange: {hidden}; holding the price") if hidden else
                    safe_decide(ad.loaded.strategy, ctx, ad.loaded.params, reported=self.reported))
        verdict = check(decision, ad=ad.own, limits=guards, reference=ad.reference, now=now,
                        updates=ad.updates, kill_switch=self._kill(ad), band=band)
        fields["market_at"] = now
        fields["band_hold"] = verdict.reason if verdict.price is None and "band" in verdict.hits else ""
        # the trace reads the decision's inputs only: built before acting, carried by the row
        # acting returns (no copy of the row to add it), completed with what was sent
        trace = self._trace(ad, kept, filtered.dropped, decision, verdict, book.best_trace(filtered))
        row = await self._act(ad, decision, verdict, now, kept, trace)
        trace["sent"] = {"price": _str(verdict.price), "reason": row.reason}
        if band is not None:
            trace["band"] = {"low": _str(band.low), "high": _str(band.high), "source": band.source}
        await self._record(ad, row)
        if self.recorder is not None:
            self.recorder(self, ad, snap, row)
        if ad.loaded.config.on_unsafe == "hide":  # the only ads `_visibility` acts on
            await self._visibility(ad, show=True)
        return row

    def _context(self, ad: AdRuntime, book: MarketBook, filtered: FilterResult,
                 key: tuple[str, str, str], band: PriceBand | None, now: float) -> PricingContext:
        """The strategy's view of one ad on this snapshot.

        Built from values already in their final types (the competitors a tuple, the drop
        counts a read-only copy shared by the ads that share them, the capabilities a
        frozenset, the rivals a read-only Mapping), so `PricingContext.__post_init__`, which
        converts to exactly those, is skipped; anything else (bounds that are not Decimals,
        capabilities as a set) takes the checked way, which converts or refuses it. A test keeps
        the two ways equal."""
        assert ad.own is not None
        guards = ad.loaded.config.guards
        floor, ceiling, caps = guards.floor, guards.ceiling, self.registry.enabled()
        values: dict[str, Any] = {"ad": ad.own, "competitors": filtered.kept, "now": now,
                  "reference": ad.reference, "capabilities": caps,
                  "floor": floor, "ceiling": ceiling,
                  "filtered_out": book.dropped(filtered), "band": band,
                  "rivals": Profiles(self.rivals.book(key)), "moves": _moves(ad)}
        if not ((floor is None or type(floor) is Decimal)
                and (ceiling is None or type(ceiling) is Decimal)
                and type(caps) is frozenset and type(filtered.kept) is tuple):
            return PricingContext(**values)
        ctx: PricingContext = object.__new__(PricingContext)
        ctx.__dict__.update(values)
        return ctx

    async def _record(self, ad: AdRuntime, row: DecisionRow) -> None:
        """Count and stage for the store (repeats are counted there) until the next flush."""
        if self.log is not None:
            row = self.log.stage(row)
        ad.__dict__["last"] = row  # not `own`: past AdRuntime.__setattr__'s hook
        self.counts[row.result] = self.counts.get(row.result, 0) + 1
        self._staged.append((ad, row))

    async def _flush(self) -> None:
        """Write the decisions staged since the last flush (one transaction), then tell the
        observers: what they are told is already in the store."""
        staged, self._staged = self._staged, []
        if self.log is not None:
            with contextlib.suppress(StoreUnwritable):  # pricing goes on; the store alerted once
                await self.log.flush()
        for ad, row in staged:
            for observer in self.observers:
                observer(ad, row)

    def observe_rivals(self, snap: MarketSnapshot, book: MarketBook | None = None) -> None:
        """Feed the snapshot to the competitor profiles of each side of it that we have an ad
        on (once per snapshot, whatever the number of our ads there), from the snapshot's book
        (its competitors are built once for pricing and profiles alike)."""
        mine = [a.own for a in self._market_ads((snap.asset, snap.fiat, snap.search_side))
                if a.own is not None]
        if not mine:
            return
        book = book or self.book(snap)
        rows = [c for c in book.competitors
                if c.adv_no not in book.own_ids and c.user_no not in book.own_ids]
        for own in {o.side: o for o in reversed(mine)}.values():
            key = (own.asset, own.fiat, own.side.value)
            self.rivals.book(key).observe(snap.at, rows, own.price)

    def _kill(self, ad: AdRuntime) -> str | None:
        if self.kill_switch:
            return "global kill_switch is on"
        if not ad.loaded.config.enabled:
            return f"ad {ad.label} has enabled = false"
        if ad.closed:
            return ad.closed
        if not ad.online:
            return "the ad is not online"
        return None

    def _reference(self, own: OwnAd, median: Decimal | None, now: float,
                   derived: Callable[[Decimal], Reference] | None = None) -> Reference | None:
        """The exchange's reference while fresh enough, else one derived from the market:
        `median`, the median price of the best DERIVED_TOP competitors kept (None: none);
        `derived` makes it for a tick (the market book's, one for every ad sharing it)."""
        key = (own.asset, own.fiat, own.side.value)
        got = self.references.get(key)
        if got is not None and now - got[1] <= REFERENCE_MAX_AGE:
            # the exchange's last value; stale while it cannot be read (kept REFERENCE_MAX_AGE)
            stale = key in self.stale_references or \
                self.registry.route("reference_price") != "exchange"
            return Reference(got[0], "exchange", age=max(0.0, now - got[1]), stale=stale)
        if median is None:
            return None
        if derived is not None:
            return derived(own.tick)
        return Reference(median.quantize(own.tick), "derived")

    def _trace(
        self, ad: AdRuntime, kept: Sequence[CompetitorAd], dropped: dict[str, int],
        decision: Decision, verdict: Verdict, best: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """What the decision saw and did. `best`: the first three kept as the trace shows them,
        when the market book has them already (one list for every ad sharing `kept`, as the
        drop counts are one dict: a trace is read, never changed)."""
        chosen = decision.competitor if isinstance(decision, Reprice) else None
        return {
            "best": best_trace(kept) if best is None else best,
            "reference": None if ad.reference is None else
            _reference_trace(ad.reference),
            "filtered_out": dropped, "kept": len(kept), "rank": ad.rank, "standing": ad.standing,
            "decision": {"kind": type(decision).__name__, "reason": decision.reason,
                         "price": str(decision.price) if isinstance(decision, Reprice) else None,
                         **_relation(decision)},
            "competitor": chosen, "guards": list(verdict.hits), "notes": list(verdict.notes),
        }

    # --- acting --------------------------------------------------------------------

    async def _act(
        self, ad: AdRuntime, decision: Decision, verdict: Verdict, now: float,
        kept: Sequence[CompetitorAd] = (), trace: dict[str, Any] | None = None,
    ) -> DecisionRow:
        assert ad.own is not None
        base = DecisionRow(now, ad.label, ad.own.adv_no, ad.loaded.strategy.name, ad.own.price,
                           verdict.price, "held", verdict.reason, verdict.hits,
                           trace={} if trace is None else trace)
        if verdict.price is None:
            return base
        assert isinstance(decision, Reprice)  # the guards send only a Reprice
        # a ratio the guards did not move (rounding aside) is the ratio to send a floating ad
        ratio = decision.ratio if set(verdict.hits) <= {"tick"} else None
        wire = self._wire_value(ad, verdict.price, ratio)
        floating = wire[0] == "ratio"
        why = sent_reason(decision, verdict, ad.own.side, kept,
                          sent_word="aimed at" if floating else "sent")
        if self._in_place(ad, wire):  # a dry run says so too: it would send nothing either
            return replace(base, reason=self._in_place_reason(ad, wire, why))
        if floating:  # what the exchange shows is the ratio times its own reference
            why = (f"{why}; {'would be ' if self.dry_run else ''}sent as the ratio {wire[1]}%, "
                   f"which shows {wire[2]}")
        if self.dry_run:
            said = (wire[2], why)  # said once, until what it would do changes
            log = logger.info if ad.dry_said != said else logger.debug
            ad.dry_said = said
            log("dry run: would reprice {} from {} to {}: {}", ad.label, ad.own.price,
                wire[2], why)
            return replace(base, result="dry_run", reason=why)
        if ad.held_until > now:
            return replace(base, reason=f"{why}; not sent: held until the exchange's refusals "
                                        f"settle ({ad.held_until - now:.0f} s left)")
        if self.registry.route("repricing") is None:
            h = self.registry.health["update_ad"]
            return replace(base, reason=f"repricing unavailable: update_ad is {h.state} "
                                        f"({h.code} {h.message})".rstrip())
        return await self._apply(ad, verdict.price, base, why, now, wire)

    @staticmethod
    def _in_place(ad: AdRuntime, wire: tuple[str, Decimal, Decimal]) -> bool:
        """Whether the floating ad has the ratio to send already."""
        return ad.own is not None and wire[0] == "ratio" and wire[1] == ad.own.ratio

    @staticmethod
    def _in_place_reason(ad: AdRuntime, wire: tuple[str, Decimal, Decimal], why: str) -> str:
        assert ad.own is not None
        return f"{why}; unchanged: ratio {wire[1]}% already prices it at {ad.own.price}"

    def _wire_value(self, ad: AdRuntime, price: Decimal,
                    asked: Decimal | None = None) -> tuple[str, Decimal, Decimal]:
        """The field and value to send, and the price the ad will show.

        A floating ad gets the ratio the strategy `asked` for (see Reprice.ratio) while its
        price at the freshest reference stays inside the floor and ceiling with the margin
        below; else a ratio computed from the freshest reference (the exchange's own, else
        the one its price implies), rounded toward the safe side and aimed one tick plus
        the reference's typical move inside the floor and ceiling (bot.pricing.floating).
        """
        own = ad.own
        assert own is not None
        if own.price_type != "floating" or not own.ratio:
            return "price", price, price
        key = (own.asset, own.fiat, own.side.value)
        got = self.references.get(key)
        fresher = got is not None and self.clock.time() - got[1] <= REFERENCE_MAX_AGE \
            and got[1] >= ad.price_seen_at  # else the ad's price as last seen implies a newer one
        reference = got[0] if got is not None and fresher else own.price * 100 / own.ratio
        track = self.tracks.get(key)
        move = track.typical_move() if track is not None else Decimal(0)
        margin = own.tick + move * own.ratio / 100
        g = ad.loaded.config.guards
        if asked is not None:
            kept = asked.quantize(RATIO_TICK)
            shown = effective(reference, kept, own.tick)
            low, high = inner_bounds(g.floor, g.ceiling, margin)
            if (low is None or shown >= low) and (high is None or shown <= high):
                return "ratio", kept, shown
        ratio, shown = choose_ratio(price, reference, own.side, own.tick, g.floor, g.ceiling, margin)
        return "ratio", ratio, shown

    async def _send(self, own: OwnAd, field_: str, value: Decimal) -> None:
        if field_ == "ratio":
            await self.api.update_ad_price(own.adv_no, ratio=value)
        else:
            await self.api.update_ad_price(own.adv_no, price=value)

    async def _apply(
        self, ad: AdRuntime, price: Decimal, base: DecisionRow, why: str, now: float,
        wire: tuple[str, Decimal, Decimal] | None = None,
    ) -> DecisionRow:
        assert ad.own is not None
        wire = wire or self._wire_value(ad, price)
        if self._in_place(ad, wire):  # the margin already holds it there
            return replace(base, reason=self._in_place_reason(ad, wire, why))
        field_, value, price = wire
        try:
            await self._send(ad.own, field_, value)
        except (ExchangeUnavailable, BadResponse) as exc:  # the update may have taken effect
            return await self._unknown_outcome(ad, field_, value, price, base, why, now, exc)
        except CapabilityUnavailable as exc:
            return replace(base, reason=f"repricing unavailable: {exc}")
        except PriceOutOfRange as exc:
            return await self._band_refused(ad, price, base, exc, now)
        except QuantityConflict as exc:
            return await self._quantity_conflict(ad, field_, value, price, base, why, now, exc)
        except AdNotFound as exc:
            ad.online = False
            logger.error("ad {} is not found or not online ({}); holding it", ad.label, exc)
            return replace(base, result="failed", reason=str(exc), code=exc.code)
        except BusinessError as exc:
            return replace(base, result="failed", reason=f"exchange refused: {exc}", code=exc.code)
        except BinanceError as exc:
            return replace(base, result="failed", reason=str(exc), code=exc.code or exc.status)
        return self._took(ad, base, price, field_, value, now, why)

    def _took(self, ad: AdRuntime, base: DecisionRow, price: Decimal, field_: str, value: Decimal,
              now: float, why: str) -> DecisionRow:
        """The exchange took the update (at once, on a resend or as its read-back shows): the
        ad's new price, the band it confirms, the log line and the applied row."""
        self._applied(ad, price, field_, value, now)
        self.bands.accepted(self._band_key(ad), price, now)
        logger.info("repriced {} {} -> {}: {}", ad.label, base.price_before, price, why)
        return _outcome(base, "applied", why)

    def _applied(self, ad: AdRuntime, price: Decimal, field_: str, value: Decimal, now: float) -> None:
        assert ad.own is not None
        ratio = value if field_ == "ratio" else None
        ad.settle = Settle(now, price, ad.own.price, ratio, ad.own.ratio if ratio else None)
        ad.updates.append(Update(now, ad.own.price, price))
        self.rivals.book(self._band_key(ad)).our_move(now, price)
        keep_after = now - max(3600.0, ad.loaded.config.guards.update_window)
        ad.updates = [u for u in ad.updates if u.at >= keep_after]
        ad.own = _repriced(ad.own, price, value if field_ == "ratio" else ad.own.ratio)

    async def _quantity_conflict(
        self, ad: AdRuntime, field_: str, value: Decimal, price: Decimal, base: DecisionRow,
        why: str, now: float, exc: QuantityConflict,
    ) -> DecisionRow:
        """187049/187040/187031: the ad's quantities disagree with the exchange's state. Read the
        ad back (that settles the state), then resend the minimal body (advNo and the price
        field) once; refused again, hold the ad's updates for CONFLICT_HOLD and alert."""
        assert ad.own is not None
        logger.warning("update of {} refused ({}); reading the ad back and resending once",
                       ad.label, exc)
        try:
            back = await self.api.ad_detail(ad.own.adv_no)
            ad.online = back.adv_status in (None, 1)
            await self._send(ad.own, field_, value)
        except BusinessError as err:  # refused again (or the ad is gone): hold and alert
            return await self._hold_refused(ad, base, exc, err, now)
        except (BinanceError, CapabilityUnavailable) as err:  # passing trouble: the next tick
            return replace(base, result="failed", code=exc.code,
                           reason=f"exchange refused: {exc}; reading the ad back and resending "
                                  f"failed: {err}")
        return self._took(ad, base, price, field_, value, now,
                          f"{why} (resent after reading the ad back: code {exc.code})")

    async def _hold_refused(self, ad: AdRuntime, base: DecisionRow, exc: BinanceError,
                            err: BaseException, now: float) -> DecisionRow:
        """Hold an ad whose update the exchange still refuses after a read-back, and say so."""
        assert ad.own is not None
        ad.held_until = now + CONFLICT_HOLD
        text = (f"ad {ad.label}: the exchange refuses its price updates (code {exc.code}: the ad's "
                f"quantities disagree with the exchange's state), again after reading the ad back "
                f"and resending the price alone ({err}); its updates hold for "
                f"{CONFLICT_HOLD / 60:.0f} min. Check the ad's amounts in the Binance app.")
        logger.error("{}", text)
        for alert in self.alerts:
            await alert("ad_refused", f"ad:{ad.own.adv_no}:refused", text)
        code = getattr(err, "code", None) or exc.code
        return replace(base, result="failed", reason=text, code=code)

    async def _unknown_outcome(
        self, ad: AdRuntime, field_: str, value: Decimal, price: Decimal, base: DecisionRow,
        why: str, now: float, exc: BinanceError,
    ) -> DecisionRow:
        """Read the ad back; reissue once only if it does not show the new price."""
        assert ad.own is not None
        logger.warning("update of {} has an unknown outcome ({}); reading it back", ad.label, exc)
        try:
            back = await self.api.ad_detail(ad.own.adv_no)
        except (BinanceError, CapabilityUnavailable) as err:
            return replace(base, result="unknown", reason=f"outcome unknown, read-back failed: {err}")
        shown = back.price_floating_ratio if field_ == "ratio" else back.price
        if shown is not None and shown == value:
            return self._took(ad, base, price, field_, value, now, f"{why} (confirmed by read-back)")
        try:
            await self._send(ad.own, field_, value)
        except (BinanceError, CapabilityUnavailable) as err:
            return replace(base, result="unknown", reason=f"reissue after read-back failed: {err}")
        return self._took(ad, base, price, field_, value, now, f"{why} (reissued after read-back)")

    # --- the exchange's band, hidden ads, hiding on purpose -----------------------------

    @staticmethod
    def _band_key(ad: AdRuntime) -> tuple[str, str, str]:
        assert ad.own is not None
        return (ad.own.asset, ad.own.fiat, ad.own.side.value)

    async def _band_refused(self, ad: AdRuntime, price: Decimal, base: DecisionRow,
                            exc: PriceOutOfRange, now: float) -> DecisionRow:
        """187055: learn the band from the refusal; the next decision is clamped into it.
        The refused price is not sent again: no retry here, and none in a loop."""
        assert ad.own is not None
        learned = self.bands.refused(self._band_key(ad), price, ad.own.price, exc.msg or "", now)
        text = f"the exchange refused {price} as outside its price band ({exc.msg}); {learned}"
        logger.warning("ad {}: {}", ad.label, text)
        for alert in self.alerts:
            await alert("price_band", f"band:{ad.own.adv_no}", f"ad {ad.label}: {text}")
        return replace(base, result="failed", reason=text, code=exc.code)

    async def _exchange_hidden(self, ad: AdRuntime) -> str:
        """Why the exchange hides the ad from search now ("" when it shows it), from the bot's own
        order count and the ad's amounts; an ad found in search is not hidden whatever they say."""
        assert ad.own is not None
        was = ad.hidden
        ad.__dict__["hidden"] = "" if ad.rank is not None else hidden_reason(  # not `own`: no hook
            ad.own, self.open_orders(ad.own.adv_no), was)
        if ad.hidden and ad.hidden != was:
            logger.warning("ad {} is hidden by the exchange: {}", ad.label, ad.hidden)
            if ad.hidden.startswith("available amount"):
                for alert in self.alerts:
                    await alert("ad_hidden", f"hidden:{ad.own.adv_no}:amount",
                                f"ad {ad.label} is hidden by the exchange: {ad.hidden}; "
                                "refill it to show it again (it will have lost its rank)")
        elif was and not ad.hidden:
            logger.info("ad {} is shown in search again", ad.label)
        return ad.hidden

    def unsafe(self, ad: AdRuntime) -> str:
        """Why the ad's price cannot be kept inside its guards now ("" when it can)."""
        age = self.clock.time() - (ad.market_at if ad.market_at is not None else self.started_at)
        lost = self.registry.status("repricing").state is CapState.DISABLED
        return unsafe_reason(kill_switch=self.kill_switch, repricing=not lost,
                             market_age=age, stale_after=self.market_stale, band_hold=ad.band_hold)

    async def check_visibility(self) -> None:
        """Hide every ad that became unsafe (on_unsafe = "hide"); showing again waits for a
        decision on fresh market data (`_evaluate`), so a flapping endpoint does not flip it."""
        for ad in self.ads:
            await self._visibility(ad, show=False)

    async def _visibility(self, ad: AdRuntime, *, show: bool) -> None:
        """Hide the ad (visible = 0) once while it is unsafe; with `show`, show it again once it
        is safe, only if the bot hid it. A failed request is tried at the next check, not looped."""
        if ad.own is None or ad.loaded.config.on_unsafe != "hide" or not ad.online or ad.closed:
            return  # a closed ad's visibility is its schedule's (bot/schedule/keeper.py)
        why = self.unsafe(ad)
        if bool(why) == bool(ad.hidden_by_bot) or (not why and not show):
            return
        if self.dry_run:
            logger.warning("dry run: would {} ad {}: {}", "hide" if why else "show",
                           ad.label, why or "safe again")
            ad.hidden_by_bot = f"dry run, not sent: {why}" if why else ""
            return
        try:
            await self.api.update_ad_visible(ad.own.adv_no, visible=not why)
        except (BinanceError, CapabilityUnavailable) as exc:
            said = f"could not {'hide' if why else 'show'} it ({exc}): {why or 'safe again'}"
            level = "DEBUG" if self._hide_failed.get(ad.own.adv_no) == said else "WARNING"
            logger.log(level, "ad {}: {}; tried again at the next check", ad.label, said)
            self._hide_failed[ad.own.adv_no] = said
            return
        self._hide_failed.pop(ad.own.adv_no, None)
        ad.hidden_by_bot = why
        text = (f"ad {ad.label} hidden from search (visible = 0): {why}" if why
                else f"ad {ad.label} shown in search again (visible = 1): safe again")
        logger.warning("{}", text)
        for alert in self.alerts:
            await alert("ad_visibility", f"visibility:{ad.own.adv_no}:{'hidden' if why else 'shown'}",
                        text)

def _eager(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None] | None:
    """Run `coro` now until it first waits: None when it finished without waiting, else a task
    that carries it on from there. What `asyncio.gather` would have run in a task of its own
    runs the same, in the same order, without a task for a coroutine that never waits (an
    ad that holds, or whose update is answered at once). Its first step runs in the caller's
    task and context: the decision path must not read `asyncio.current_task()` (so no
    `asyncio.timeout`) nor set a context variable before its first wait."""
    try:
        waits_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_Resumed(coro, waits_on))


class _Resumed:
    """The rest of a coroutine started by hand (`_eager`), for a task to drive: the task gets
    what the coroutine waits on, the coroutine what the task sends or throws back in
    (a cancellation reaches it where it waits)."""

    __slots__ = ("coro", "waits_on")

    def __init__(self, coro: Coroutine[Any, Any, None], waits_on: Any) -> None:
        self.coro, self.waits_on = coro, waits_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waits_on = self.coro, self.waits_on
        while True:
            try:
                sent = yield waits_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # handed on to the coroutine as it is
                try:
                    waits_on = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waits_on = coro.send(sent)
                except StopIteration:
                    return


def _outcome(base: DecisionRow, result: str, reason: str) -> DecisionRow:
    """`replace(base, result=result, reason=reason)`, made directly (less than half the time)."""
    return DecisionRow(base.at, base.ad, base.adv_no, base.strategy, base.price_before,
                       base.target, result, reason, base.guards, base.code, base.trace,
                       base.repeats, base.first_at)


def _repriced(own: OwnAd, price: Decimal, ratio: Decimal | None) -> OwnAd:
    """`replace(own, price=price, ratio=ratio)`: a copy of an ad already checked, without its
    checks again when the two new values are what they check for (Decimals)."""
    if type(price) is not Decimal or (ratio is not None and type(ratio) is not Decimal):
        return replace(own, price=price, ratio=ratio)  # the checks say what is wrong
    moved: OwnAd = object.__new__(OwnAd)
    moved.__dict__.update(own.__dict__)
    moved.__dict__.update(price=price, ratio=ratio)
    return moved


def _moves(ad: AdRuntime) -> tuple[Move, ...]:
    """The ad's last MOVES_SHOWN updates as a strategy sees them, built again only when its
    updates changed (an update appends one, and the window's trim makes a new list): up to
    100 objects per decision otherwise, for an ad that moves often."""
    updates = ad.updates
    key = (len(updates), updates[0] if updates else None, updates[-1] if updates else None)
    got = ad.__dict__.get("_moves")
    if got is None or got[0] is not updates or got[1] != key:
        got = (updates, key, tuple(Move(u.at, u.before, u.after) for u in updates[-MOVES_SHOWN:]))
        ad.__dict__["_moves"] = got
    return got[2]


def _reference_trace(ref: Reference) -> dict[str, Any]:
    """The reference as a decision records it; a stale one says so, with its age."""
    trace: dict[str, Any] = {"price": str(ref.price), "source": ref.source}
    if ref.stale:
        trace |= {"stale": True, "age": round(ref.age)}
    return trace
