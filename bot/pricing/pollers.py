"""The pricing side's pollers: the market search, the reference price, our own ads.

Each turns replies into events for the engine (the machinery, parking and interval
planning are bot.polling's). A failing call is not logged here (the registry logs
transitions once): the next tick is the retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loguru import logger

from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import BinanceError, NotSent
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityUnavailable
from bot.events import MarketSnapshot, OwnAdsUpdate, ReferenceUpdate
from bot.polling import Poller
from bot.pricing.cadence import Cadence


class MarketPoller(Poller):
    """One ads search per (asset, fiat, search side), shared by every ad in that market."""

    capability = "market"
    endpoints = ("search",)
    expires = True

    def __init__(self, api: P2PApi, asset: str, fiat: str, search_side: str, rows: int,
                 cadence: Cadence | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.api, self.asset, self.fiat, self.search_side, self.rows = api, asset, fiat, search_side, rows
        self.cadence = cadence  # the adaptive interval (bot.pricing.cadence); None: the fixed interval
        if cadence is not None:
            cadence.add(self.key, self.name)

    @property
    def key(self) -> tuple[str, str, str]:
        """(asset, fiat, search side): the market, as its snapshots name it."""
        return (self.asset, self.fiat, self.search_side)

    def next_delay(self) -> float:
        """The market's planned cadence (within its band and the market reads' cap), stretched
        only by the budget's heat; the fixed interval without a cadence."""
        if self.cadence is None:
            return super().next_delay()
        return self.cadence.interval(self.key) * self.heat()

    def deadline(self) -> float | None:
        """The slow end of the band, or the interval when longer: a read of a fast market that
        waited a second is still the freshest there will be for a while; one that waited past
        the slow end comes after the next read of a quiet market would have."""
        if self.cadence is None:
            return super().deadline()
        return max(self.next_delay(), self.cadence.band.slow)

    def weight_per_minute(self) -> float:
        """At the slow end of the band: the cadence's cap bounds what moving markets add."""
        if self.cadence is None:
            return super().weight_per_minute()
        return ENDPOINTS["search"].weight * 60.0 / self.cadence.band.slow

    @property
    def name(self) -> str:
        """Names the market by the side of the ads it reads (a BUY search reads SELL ads)."""
        ads_side = "SELL" if self.search_side == "BUY" else "BUY"
        return f"market {self.asset}/{self.fiat} {ads_side} ads"

    async def fetch(self, source: str) -> MarketSnapshot:
        """Search the market; tell the cadence what the read showed (or that it failed)."""
        try:
            page = await self.api.search_ads(self.asset, self.fiat, self.search_side, rows=self.rows)
        except NotSent:
            raise  # dropped unsent by the scheduler: not a failure of the search
        except (CapabilityUnavailable, BinanceError):
            if self.cadence is not None:
                self.cadence.failed(self.key)
            raise
        if self.cadence is not None:
            self.cadence.read(self.key, [(i.adv.adv_no, i.adv.price) for i in page.items],
                              self.clock.monotonic())
        return MarketSnapshot(self.asset, self.fiat, self.search_side, tuple(page.items),
                              page.total, self.clock.time())


class ReferencePoller(Poller):
    """Binance's reference price for the assets of one (fiat, side); idle while derived.

    With a `pay_type` the call is filtered by that payment method. The filtered call can fail
    where the unfiltered one works: the poller then reads without the filter (said once) and
    tries the filter again `FILTER_RETRY_TICKS` polls later. When no read works, the last
    values read are published again marked stale, with the time they were read (their age).
    """

    capability = "reference_price"
    endpoints = ("reference_price",)
    expires = True
    FILTER_RETRY_TICKS = 20

    def __init__(self, api: P2PApi, assets: Sequence[str], fiat: str, side: str,
                 pay_type: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.api, self.assets, self.fiat, self.side = api, list(assets)[:3], fiat, side
        self.pay_type = pay_type
        self.unfiltered_until = 0  # the tick from which the filter is tried again
        self.last: dict[str, tuple[Any, float]] = {}  # asset -> (price, read at)
        self.failing = False

    @property
    def name(self) -> str:
        """Names what it reads: two of them (one per side) said the same "ReferencePoller"."""
        return f"reference price {','.join(self.assets)}/{self.fiat} {self.side}"

    async def fetch(self, source: str) -> None:
        """Read the reference prices (nothing to read when running on the derived source)."""
        if source != "exchange":
            return None
        try:
            prices = await self._read()
        except CapabilityUnavailable:
            raise
        except BinanceError as exc:
            self._stale(exc)
            raise
        if self.failing:
            logger.info("{}: the reference price is read again", self.name)
        self.failing = False
        now = self.clock.time()
        for price in prices:
            self.last[price.asset] = (price.reference_price, now)
            self.bus.publish(ReferenceUpdate(price.asset, self.fiat, self.side,
                                             price.reference_price, now))
        return None

    async def _read(self) -> list[Any]:
        if self.pay_type and self.ticks >= self.unfiltered_until:
            try:
                return await self.api.reference_prices(self.assets, self.fiat, self.side,
                                                       self.pay_type)
            except CapabilityUnavailable:
                raise
            except BinanceError as exc:
                if not self.unfiltered_until:
                    logger.warning("{}: the reference price for payType {} failed ({}); it is "
                                   "read without the filter", self.name, self.pay_type, exc)
                self.unfiltered_until = self.ticks + self.FILTER_RETRY_TICKS
        return await self.api.reference_prices(self.assets, self.fiat, self.side)

    def _stale(self, exc: BinanceError) -> None:
        """Keep the last values, marked stale with the time they were read."""
        if not self.failing:
            logger.warning("{}: the reference price cannot be read ({}); the last value is kept,"
                           " marked stale", self.name, exc)
        self.failing = True
        for asset, (price, at) in self.last.items():
            self.bus.publish(ReferenceUpdate(asset, self.fiat, self.side, price, at, stale=True))


class OwnAdsPoller(Poller):
    """The merchant's own ads (all pages): prices, status, and ids for selectors."""

    capability = "my_ads"
    endpoints = ("my_ads",)
    rows = 20  # the exchange caps a page at about 20 rows
    max_pages = 2500  # 50,000 ads: only a guard against an answer that never ends

    def __init__(self, api: P2PApi, **kw: Any) -> None:
        super().__init__(**kw)
        self.api = api
        self.capped = False  # the guard was hit (said once)

    async def fetch(self, source: str) -> OwnAdsUpdate:
        """Read every page of own ads: until a short page, the total, or a page with nothing new."""
        ads: dict[str, Any] = {}
        for page_no in range(1, self.max_pages + 1):
            page = await self.api.my_ads(page=page_no, rows=self.rows)
            fresh = {a.adv_no: a for a in page.items if a.adv_no not in ads}
            ads.update(fresh)
            if (len(page.items) < self.rows or not fresh
                    or (page.total is not None and len(ads) >= page.total)):
                break
        else:
            if not self.capped:
                logger.warning("your ads: stopped reading after {} pages ({} ads)", self.max_pages,
                               len(ads))
            self.capped = True
        return OwnAdsUpdate(tuple(ads.values()), self.clock.time())
