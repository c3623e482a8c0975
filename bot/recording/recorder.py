"""What the running bot records per pricing decision: the market it saw, the decision, orders won.

The engine calls `Recorder.decided` where a decision is made (bot.pricing.engine); the data is
what the engine already holds, so recording costs no request. Rows are staged in memory
and written every `FLUSH` seconds (in one transaction), and once more at stop; retention runs hourly.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from loguru import logger

from bot.binance.models import SearchItem
from bot.binance.search import SearchRow, from_item
from bot.clock import Clock
from bot.events import MarketSnapshot, OrderChanged, OwnAdsUpdate, ReferenceUpdate
from state.db import StoreError
from state.decisions import DecisionRow
from state.recording import RecordingLog

FLUSH = 30.0  # seconds between writes (a crash loses at most this much of the recording)
PRUNE = 3600.0  # seconds between retention passes
ROW_FIELDS = ("adv_no", "user_no", "nickname", "price", "min", "max", "available", "pay",
              "merchant", "month_orders", "completion", "ratio")
"""The columns of one recorded search row, in order (the export names them in its header)."""
MOVING = (0, 3, 5, 6)  # adv_no, price, max, available: what changes from one snapshot to the next
STILL = (1, 2, 4, 7, 8, 9, 10, 11)  # the rest: written once per ad in an export


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


def _n(value: Decimal | None) -> str | None:
    """A decimal without trailing zeros ("930.00000000" -> "930", "0E-8" -> "0"): a page of
    rows is a third shorter."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def search_row(item: SearchItem | SearchRow) -> list[Any]:
    """One search result (the lean row pricing reads, or the strict model) as a compact list
    (ROW_FIELDS)."""
    row = item if isinstance(item, SearchRow) else from_item(item)
    adv, who = row.adv, row.advertiser
    return [adv.adv_no, who.user_no or "", who.nick_name, str(adv.price), _n(adv.min_amount),
            _n(adv.max_amount), _n(adv.available), sorted(adv.pay_methods),
            1 if who.is_merchant else 0, who.month_orders or 0, _n(who.completion_rate),
            _n(adv.price_floating_ratio)]


def market_body(snap: MarketSnapshot) -> dict[str, Any]:
    """A market snapshot as recorded: the whole page received, best first."""
    rows = [search_row(i) for i in snap.items if isinstance(i, SearchRow | SearchItem)]
    return {"asset": snap.asset, "fiat": snap.fiat, "side": snap.search_side, "rows": rows}


def decision_body(engine: Any, ad: Any, row: DecisionRow) -> dict[str, Any]:
    """One decision with the state of the ad it was made on (bot.pricing.engine.AdRuntime)."""
    own, ref = ad.own, ad.reference
    ratio = own.ratio  # the ratio the decision was made on: an update has replaced it already
    settle = getattr(ad, "settle", None)
    if row.result == "applied" and settle is not None and settle.at == row.at and settle.ratio:
        ratio = settle.ratio_before
    return {
        "ad": ad.label, "adv_no": row.adv_no, "side": own.side.value, "asset": own.asset,
        "fiat": own.fiat,
        "own": {"price": str(row.price_before), "type": own.price_type, "ratio": _s(ratio),
                "scale": own.price_scale, "min": str(own.min_amount), "max": str(own.max_amount),
                "available": str(own.available), "pay": sorted(own.pay_methods)},
        "online": ad.online, "open": engine.open_orders(own.adv_no),
        "reference": None if ref is None else {"price": str(ref.price), "source": ref.source,
                                               "age": round(ref.age, 3), "stale": ref.stale},
        "caps": sorted(engine.registry.enabled()),
        "result": row.result, "target": _s(row.target), "reason": row.reason,
        "guards": list(row.guards), "rank": ad.rank, "standing": ad.standing,
    }


def own_ad(ad: Any) -> dict[str, Any]:
    """One of our ads as the own-ads read showed it (bot.binance.models.Ad), the fields pricing
    reads."""
    return {"adv_no": ad.adv_no, "price": str(ad.price), "price_type": ad.price_type,
            "ratio": _s(ad.price_floating_ratio), "status": ad.adv_status,
            "trade_type": ad.trade_type, "asset": ad.asset, "fiat": ad.fiat_unit,
            "available": _s(ad.tradable_quantity or ad.surplus_amount),
            "min": _s(ad.min_single_trans_amount), "max": _s(ad.max_single_trans_amount),
            "scale": ad.price_scale,
            "pay": sorted(m.identifier for m in ad.trade_methods if m.identifier)}


class Recorder:
    """Stages what each decision saw; `run` writes and prunes until cancelled."""

    def __init__(self, log: RecordingLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock
        self._last_snap: MarketSnapshot | None = None
        self.failed = 0

    def decided(self, engine: Any, ad: Any, snap: MarketSnapshot, row: DecisionRow) -> None:
        """The engine's hook: one decision made on `snap` (the snapshot once, before its first)."""
        if ad.own is None:
            return
        if snap is not self._last_snap:
            self._last_snap = snap
            self.log.stage(row.at, "market", market_body(snap))
        self.log.stage(row.at, "decision", decision_body(engine, ad, row))

    async def on_order(self, ev: OrderChanged) -> None:
        """An order first seen: one order won (amounts only, no counterparty, no order number)."""
        if ev.old is not None:
            return
        o = ev.order
        self.log.stage(ev.at, "order", {
            "adv_no": getattr(o, "adv_no", None), "side": getattr(o, "side", None),
            "asset": getattr(o, "asset", None), "fiat": getattr(o, "fiat", None),
            "amount": _s(getattr(o, "amount", None)), "total": _s(getattr(o, "total", None)),
            "price": _s(getattr(o, "price", None)), "status": ev.new})

    async def on_reference(self, ev: ReferenceUpdate) -> None:
        """A reference read (or a failed one, `stale`): floating ads and the reference's
        typical move follow these between snapshots."""
        self.log.stage(ev.at, "reference", {"asset": ev.asset, "fiat": ev.fiat, "side": ev.side,
                                            "price": _s(ev.price), "stale": ev.stale})

    async def on_own_ads(self, ev: OwnAdsUpdate) -> None:
        """A read of our ads: their price, ratio and status as the exchange showed them."""
        self.log.stage(ev.at, "own", {"ads": [own_ad(a) for a in ev.ads]})

    async def flush(self) -> None:
        """Write what is staged; a failure is logged once and tried again at the next flush."""
        try:
            await self.log.flush()
        except StoreError as exc:
            self.failed += 1
            if self.failed == 1:
                logger.warning("recording: cannot write ({}); trying again", exc)

    async def run(self) -> None:
        """Write every FLUSH seconds and prune every PRUNE seconds, until cancelled."""
        next_prune = self.clock.time()
        while True:
            await self.flush()
            if self.clock.time() >= next_prune:
                with contextlib.suppress(StoreError):
                    await self.log.prune(self.clock.time())
                next_prune = self.clock.time() + PRUNE
            await self.clock.sleep(FLUSH)
