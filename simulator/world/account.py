"""The merchant's own ads: listing, reading back, and updates validated the way the exchange does.

Orders live in `simulator.world.orders`; this module is the ads half of the account.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from simulator.errors import SimError, missing
from simulator.scenario import RealismSpec
from simulator.world.config import OwnAdConfig, RulesConfig, WorldConfig
from simulator.world.data import (
    SIDES,
    AdBase,
    Ids,
    as_mapping,
    fmt,
    get_decimal,
    get_int,
    get_str,
    page_of,
    q,
    q_down,
)
from simulator.world.market import Advertiser, Market

HISTORY = 2000  # points of price and rank history kept per ad
LIST_CAP = 20  # the exchange caps a page of ads at about 20 rows
_STATUSES = (1, 3, 4)
# open orders at which the exchange hides an ad, and at which it shows it again (docs/exchange.md §11.6)
HIDE_AT_OPEN_ORDERS = {"BUY": (8, 4), "SELL": (50, 40)}
BAND_STEP = Decimal("0.5")  # percent the moving band's half-width may move in a simulated minute
QUANTITY_TEXT = "The ad's quantity does not match its current state; refresh the ad and try again"


def not_online(adv_no: str) -> SimError:
    """187022: the ad does not exist or is not online."""
    return SimError(187022, f"Advertisement {adv_no} does not exist or is not online.")


@dataclass(slots=True, kw_only=True)
class OwnAd(AdBase):
    """An ad of the merchant, with what the control API shows about it."""

    rank: int | None = None
    price_history: deque[tuple[int, Decimal]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rank_history: deque[tuple[int, int | None]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    updates: int = 0
    visible: bool = True  # ads/update `visible`: 0 hides the ad from search, online all the same
    hidden: str = ""  # why the exchange hides it from search now ("" = it does not)

    @property
    def searchable(self) -> bool:
        """Whether takers find it in search: online, visible and not hidden by the exchange."""
        return self.status == 1 and self.visible and not self.hidden
    # read-your-write lag: (update time, the ad's (price, ratio, update_ms) just before it)
    before: list[tuple[int, tuple[Decimal, Decimal, int]]] = field(default_factory=list)
    conflict: int | None = None  # a quantity-state code the next update gets (until a read)

    def floating_price(self, reference: Decimal, price_scale: int) -> Decimal:
        """reference × priceFloatingRatio / 100 at the price scale."""
        return q(reference * self.ratio / 100, price_scale)


class Account:
    """The merchant: its advertiser card and its ads."""

    def __init__(self, cfg: WorldConfig, markets: Mapping[tuple[str, str], Market], *,
                 ids: Ids, now_ms: int) -> None:
        self._markets = markets
        self._rules: RulesConfig = cfg.rules
        self.nickname = cfg.account.nickname
        self.real_name = cfg.account.real_name
        self.advertiser = Advertiser(
            user_no=cfg.account.user_no or ids.user_no(), nick_name=cfg.account.nickname,
            user_type="merchant", month_order_count=812, month_finish_rate=0.9871,
            order_count=9540, positive_rate=0.9953, adv_confirm_time=95, user_grade=3)
        self.ads: dict[str, OwnAd] = {}
        self.business_status = 1  # 1 open, 2 closed (business hours), 3 on a break
        self.funding: dict[str, Decimal] = dict(cfg.account.funding)  # free, per asset
        low, high = self._rules.moving_band
        self._band_width = {key: (low + high) / 2 for key in markets}  # moving band half-widths
        self.realism = RealismSpec()
        self._conflicts = random.Random(0)
        for ad_cfg in cfg.resolved_own_ads():
            ad = self._new_ad(ad_cfg, ids, now_ms)
            self.ads[ad.adv_no] = ad

    def _new_ad(self, cfg: OwnAdConfig, ids: Ids, now_ms: int) -> OwnAd:
        market = self._markets[(cfg.asset, cfg.fiat)]
        floating = cfg.price_type == "floating"
        ad = OwnAd(
            adv_no=cfg.adv_no or ids.adv_no(), side=cfg.side, asset=cfg.asset, fiat=cfg.fiat,
            price=q(cfg.price or Decimal(0), market.cfg.price_scale), min_amount=cfg.min,
            max_amount=cfg.max, surplus=cfg.surplus, init_amount=cfg.surplus,
            pay_methods=list(cfg.pay_methods), create_ms=now_ms, update_ms=now_ms,
            classify=cfg.classify, pay_time_limit=cfg.pay_time_limit_minutes, status=cfg.status,
            remarks=cfg.remarks, auto_reply=cfg.auto_reply, price_type=2 if floating else 1,
            ratio=cfg.ratio or Decimal(0))
        if floating:
            ad.price = ad.floating_price(market.reference, market.cfg.price_scale)
        ad.price_history.append((now_ms, ad.price))
        return ad

    def ads_in(self, asset: str, fiat: str) -> list[OwnAd]:
        """The own ads of one market, whatever their status."""
        return [ad for ad in self.ads.values() if ad.asset == asset and ad.fiat == fiat]

    def use_realism(self, spec: RealismSpec, rng: random.Random) -> None:
        """Switch on the real exchange's habits (read lag, quantity-state refusals)."""
        self.realism, self._conflicts = spec, rng

    # ----- read-your-write lag -------------------------------------------------------------

    def shown(self, ad: OwnAd, endpoint: str, now_ms: int) -> OwnAd:
        """`ad` as `endpoint` shows it now: during the read lag after an update, as it was
        before that update (price, ratio and the update time that places it in search)."""
        lag_ms = int(self.realism.read_lag_seconds * 1000)
        ad.before = [b for b in ad.before if b[0] > now_ms - lag_ms]
        if not ad.before or endpoint not in self.realism.read_lag_endpoints:
            return ad
        price, ratio, update_ms = ad.before[0][1]
        return replace(ad, price=price, ratio=ratio, update_ms=update_ms)

    def shown_in(self, asset: str, fiat: str, endpoint: str, now_ms: int) -> list[OwnAd]:
        """The own ads of one market as `endpoint` shows them now."""
        return [self.shown(ad, endpoint, now_ms) for ad in self.ads_in(asset, fiat)]

    def _read(self, ad: OwnAd) -> None:
        """Reading the ad back settles a quantity-state disagreement (when the scenario says so)."""
        if self.realism.quantity_conflict_clears:
            ad.conflict = None

    def market_of(self, ad: AdBase) -> Market:
        """The market an ad trades in."""
        return self._markets[(ad.asset, ad.fiat)]

    # ----- moving with the market --------------------------------------------------------

    def reprice(self, market: Market, now_ms: int, ads: Sequence[OwnAd] | None = None) -> None:
        """Recompute floating prices after the reference moved (`ads`: the market's own ads,
        when the caller has them: `ads_in` once per world step instead of three times)."""
        for ad in self.ads_in(market.asset, market.fiat) if ads is None else ads:
            if ad.price_type == 2:
                self._set_price(ad, ad.floating_price(market.reference, market.cfg.price_scale),
                                now_ms, touch=False)

    def searchable_in(self, asset: str, fiat: str) -> list[OwnAd]:
        """The own ads of one market takers can find in search."""
        return [ad for ad in self.ads_in(asset, fiat) if ad.searchable]

    def move_band(self, market: Market, rng: random.Random) -> None:
        """One simulated minute of the moving band: its half-width wanders inside moving_band."""
        low, high = self._rules.moving_band
        key = (market.asset, market.fiat)
        step = Decimal(rng.randint(-10, 10)) * BAND_STEP / 10
        self._band_width[key] = min(max(self._band_width[key] + step, low), high)

    def band(self, market: Market) -> tuple[Decimal, Decimal]:
        """The prices a fixed price (or a floating ad's effective price) must stay within now."""
        scale = market.cfg.price_scale
        if self._rules.price_band_mode == "moving":
            width = self._band_width[(market.asset, market.fiat)]
            low, high = 100 - width, 100 + width
        else:
            low, high = self._rules.price_band
        lowest = q(market.reference * low / 100, scale, rounding="ROUND_CEILING")
        return lowest, q_down(market.reference * high / 100, scale)

    def refresh_hidden(self, open_orders: Callable[[], Mapping[str, int]], now_ms: int) -> None:
        """Hide or show ads the way the exchange does: too many open orders (rank kept), or an
        available amount below the minimum order (rank lost once it is refilled).
        `open_orders()` (open orders per ad) is only counted when the first rule is on."""
        counts = open_orders() if self._rules.hide_on_open_orders else {}
        for ad in self.ads.values():
            count = counts.get(ad.adv_no, 0)
            hide_at, show_at = HIDE_AT_OPEN_ORDERS[ad.side]
            was = ad.hidden
            if self._rules.hide_on_open_orders and (count >= hide_at or (
                    was.endswith("open orders") and count > show_at)):
                ad.hidden = f"{count} open orders"
            elif self._rules.hide_below_min and not ad.tradable():
                ad.hidden = "available amount below the minimum order"
            else:
                ad.hidden = ""
            if was.startswith("available") and not ad.hidden:
                ad.update_ms = now_ms  # refilled: it comes back behind the ads at its price

    def record_ranks(self, market: Market, now_ms: int,
                     ads: Sequence[OwnAd] | None = None) -> None:
        """Each ad's position in its own search (None while takers cannot find it); `ads` as
        in `reprice`."""
        if ads is None:
            ads = self.ads_in(market.asset, market.fiat)
        own = [ad for ad in ads if ad.searchable]
        found = dict(zip(map(id, own), market.ranks_of(own, own), strict=True)) if own else {}
        for ad in ads:
            rank = found.get(id(ad))
            if rank != ad.rank:
                ad.rank = rank
                ad.rank_history.append((now_ms, rank))

    @staticmethod
    def _set_price(ad: OwnAd, price: Decimal, now_ms: int, *, touch: bool) -> None:
        if price != ad.price:
            ad.price = price
            ad.price_history.append((now_ms, price))
            if touch:  # a merchant's change moves the ad behind others at the same price
                ad.update_ms = now_ms

    # ----- endpoints ---------------------------------------------------------------------

    def my_ads(self, body: Any, now_ms: int) -> tuple[list[dict[str, Any]], int]:
        """listWithPagination: own ads by filters, a page at a time."""
        src = as_mapping(body)
        adv_no = get_str(src, "advNo")
        status = get_int(src, "advStatus", default=0)
        asset, fiat = get_str(src, "asset"), get_str(src, "fiatUnit")
        side = get_str(src, "tradeType", choices=SIDES)
        found = [ad for ad in self.ads.values()
                 if (adv_no is None or ad.adv_no == adv_no) and (not status or ad.status == status)
                 and (asset is None or ad.asset == asset) and (fiat is None or ad.fiat == fiat)
                 and (side is None or ad.side == side)]
        rows = page_of(found, src, cap=LIST_CAP, required=True)
        for ad in rows:
            self._read(ad)
        return [self.shown(ad, "my_ads", now_ms).to_json(self.market_of(ad).scales)
                for ad in rows], len(found)

    def ad_detail(self, query: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """getDetailByNo: one own ad by the `adsNo` query parameter."""
        adv_no = get_str(query, "adsNo", required=True)
        assert adv_no is not None
        ad = self.ads.get(adv_no)
        if ad is None:
            raise not_online(adv_no)
        self._read(ad)
        return self.shown(ad, "ad_detail", now_ms).to_json(self.market_of(ad).scales)

    def update_ad(self, body: Any, now_ms: int) -> bool:
        """ads/update: only advNo plus the ad's price field and/or `visible` (1 shown, 0 hidden
        from search, the ad staying online); the exchange's checks in its order."""
        src = as_mapping(body)
        adv_no = get_str(src, "advNo", required=True)
        assert adv_no is not None
        ad = self.ads.get(adv_no)
        if ad is None or ad.status != 1:
            raise not_online(adv_no)
        name = "price" if ad.price_type == 1 else "priceFloatingRatio"
        if "initAmount" in src and not set(src) - {"advNo", "initAmount"}:
            return self._set_amount(ad, src)
        extra = sorted(set(src) - {"advNo", name, "updateMode", "visible"})
        if extra or src.get("updateMode", "selective") != "selective":
            fields = ", ".join(extra) or "updateMode"
            raise SimError(187049, f"Field not allowed in this update: {fields}.")
        visible = src.get("visible")
        if visible is not None and (isinstance(visible, bool) or str(visible) not in ("0", "1")):
            raise SimError(-1100, "Illegal parameter 'visible': 0 or 1 is expected.")
        if visible is not None and name not in src:
            ad.visible = str(visible) == "1"
            ad.updates += 1
            return True
        value = self._checked_value(ad, name, src)
        self._quantity_state(ad)
        if visible is not None:
            ad.visible = str(visible) == "1"
        market = self.market_of(ad)
        before = (ad.price, ad.ratio, ad.update_ms)
        if ad.price_type == 1:
            self._set_price(ad, value, now_ms, touch=True)
        else:
            if value != ad.ratio:
                ad.update_ms = now_ms
            ad.ratio = value
            self._set_price(ad, ad.floating_price(market.reference, market.cfg.price_scale),
                            now_ms, touch=False)
        if (ad.price, ad.ratio) != before[:2] and self.realism.read_lag_seconds:
            ad.before.append((now_ms, before))
        ad.updates += 1
        return True

    def _set_amount(self, ad: OwnAd, src: Mapping[str, Any]) -> bool:
        """ads/update {advNo, initAmount}: the available amount moves by the change, taken from
        (or given back to) the funding wallet; what has traded (initAmount - surplusAmount)
        cannot be undone (docs/exchange.md §11.8)."""
        new = get_decimal(src, "initAmount")
        if new is None:
            raise missing("initAmount")
        self._quantity_state(ad)
        traded = ad.init_amount - ad.surplus
        if new < traded or new <= 0:
            raise SimError(-1100, f"Illegal parameter 'initAmount': at least {fmt(traded)} has "
                                  "already traded.")
        delta = new - ad.init_amount
        free = self.funding.get(ad.asset, Decimal(0))
        if delta > free:
            raise SimError(187026, f"Insufficient balance in the funding wallet: {fmt(free)} "
                                   f"{ad.asset} available.")
        self.funding[ad.asset] = free - delta
        ad.init_amount, ad.surplus = new, ad.surplus + delta
        ad.updates += 1
        return True

    def funding_assets(self, query: Mapping[str, str]) -> list[dict[str, str]]:
        """get-funding-asset: the funding wallet, or one asset of it."""
        asset = query.get("asset")
        return [{"asset": a, "free": fmt(free), "locked": "0", "freeze": "0", "withdrawing": "0",
                 "btcValuation": "0"} for a, free in sorted(self.funding.items())
                if asset in (None, "", a)]

    def _quantity_state(self, ad: OwnAd) -> None:
        """187049/187040/187031 when the ad's amounts disagree with the exchange's state: drawn
        at the scenario's rate, and repeated until the ad is read back."""
        spec = self.realism
        if ad.conflict is None and spec.quantity_conflict_rate and \
                self._conflicts.random() < spec.quantity_conflict_rate:
            ad.conflict = self._conflicts.choice(spec.quantity_conflict_codes)
        if ad.conflict is not None:
            raise SimError(ad.conflict, f"{QUANTITY_TEXT} (advNo {ad.adv_no}).")

    def _checked_value(self, ad: OwnAd, name: str, src: Mapping[str, Any]) -> Decimal:
        value = get_decimal(src, name)
        if value is None:
            raise missing(name)
        market = self.market_of(ad)
        scale = market.cfg.price_scale if name == "price" else self._rules.ratio_scale
        if value <= 0 or value != q(value, scale):
            raise SimError(-1100, f"Illegal parameter '{name}': a positive number with at most "
                                  f"{scale} decimals is expected.")
        price = value if name == "price" else market.reference * value / 100
        low, high = self.band(market)
        if not low <= price <= high:
            said = f": minimum {low}, maximum {high}" if self._rules.band_in_message else ""
            raise SimError(187055, f"The price is out of the allowed range{said}.")
        return q(value, scale)

    def update_ad_status(self, body: Any, now_ms: int) -> dict[str, Any]:
        """ads/updateStatus: advStatus 1 online, 3 offline, 4 closed; failures per ad."""
        src = as_mapping(body)
        adv_nos = src.get("advNos")
        if not adv_nos:
            raise missing("advNos")
        if not isinstance(adv_nos, list) or not all(isinstance(n, str | int) for n in adv_nos):
            raise SimError(-1100, "Illegal parameter 'advNos': a list of ad numbers is expected.")
        status = get_int(src, "advStatus")
        if status not in _STATUSES:
            raise SimError(-1100, "Illegal parameter 'advStatus': expected 1, 3 or 4.")
        fails = []
        for adv_no in (str(n) for n in adv_nos):
            ad = self.ads.get(adv_no)
            if ad is None or (ad.status == 4 and status != 4):
                fails.append({"advNo": adv_no, "errorCode": 187022,
                              "errorMsg": not_online(adv_no).msg})
                continue
            if ad.status != status:
                ad.status, ad.update_ms = status, now_ms
        return {"status": not fails, "failList": fails}

    # ----- the merchant's state (docs/exchange.md §11.13) --------------------------------

    def merchant_detail(self) -> dict[str, Any]:
        """user/baseDetail: the merchant's card and `businessStatus`."""
        return {"userNo": self.advertiser.user_no, "nickName": self.nickname,
                "businessStatus": self.business_status}

    def set_business(self, open_: bool, now_ms: int) -> bool:
        """startBusiness / closeBusiness. Closing takes every online ad offline; opening
        brings none back: the merchant puts them online again (docs/exchange.md §11.6)."""
        self.business_status = 1 if open_ else 2
        if not open_:
            for ad in online(list(self.ads.values())):
                ad.status, ad.update_ms = 3, now_ms
        return True

    # ----- control -----------------------------------------------------------------------

    def to_control(self) -> list[dict[str, Any]]:
        """Own ads with current price, rank and their histories."""
        return [self._control_json(ad) for ad in self.ads.values()]

    def _control_json(self, ad: OwnAd) -> dict[str, Any]:
        scale = self.market_of(ad).cfg.price_scale
        return {
            "advNo": ad.adv_no, "side": ad.side, "asset": ad.asset, "fiat": ad.fiat,
            "priceType": "fixed" if ad.price_type == 1 else "floating",
            "price": fmt(ad.price, scale),
            "priceFloatingRatio": fmt(ad.ratio) if ad.price_type == 2 else None,
            "advStatus": ad.status, "rank": ad.rank, "surplusAmount": fmt(ad.surplus),
            "updates": ad.updates, "visible": ad.visible, "hidden": ad.hidden or None,
            "priceHistory": [{"time": t, "price": fmt(p, scale)} for t, p in ad.price_history],
            "rankHistory": [{"time": t, "rank": r} for t, r in ad.rank_history],
        }


def online(ads: Sequence[OwnAd]) -> list[OwnAd]:
    """The online ads among `ads`."""
    return [ad for ad in ads if ad.status == 1]
