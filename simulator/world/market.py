"""A moving P2P market: a random-walk reference price and competitor ads, some of them repricing bots."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from simulator.answers import dumps_text
from simulator.world.config import MarketConfig
from simulator.world.data import (
    FALLBACK_PAY_METHODS,
    PAY_METHODS,
    SIDES,
    STEP_MS,
    AdBase,
    Ids,
    Scales,
    fmt,
    nice,
    q,
    uniform,
)

_MIN_UNITS = (5, 10, 20, 50, 100)  # an ad's minimum order, in asset units (stablecoin-sized)
_MAX_UNITS = (300, 1000, 3000, 10000)
_UNIT = {"BTC": Decimal("0.00001"), "ETH": Decimal("0.0003"), "BNB": Decimal("0.0015")}
_REPRICE_SECONDS = (30, 300)  # how often an ordinary advertiser re-reads the reference
_JITTER = Decimal("0.0005")
BOT_ROLES = frozenset({"bot", "rival", "mirror"})  # ads that reprice against others


@dataclass(slots=True)
class Advertiser:
    """The Advertiser object of a search result."""

    user_no: str
    nick_name: str
    user_type: str
    month_order_count: int
    month_finish_rate: float
    order_count: int
    positive_rate: float
    adv_confirm_time: int
    user_grade: int
    _written: tuple[tuple[Any, ...], str] | None = field(default=None, init=False, repr=False,
                                                        compare=False)

    def json_text(self) -> str:
        """`to_json` as the gateway writes it (simulator.answers.dumps), written once."""
        facts = (self.user_no, self.nick_name, self.user_type, self.month_order_count,
                 self.month_finish_rate, self.order_count, self.positive_rate,
                 self.adv_confirm_time, self.user_grade)
        if self._written is None or self._written[0] != facts:
            self._written = (facts, dumps_text(self.to_json()))
        return self._written[1]

    def to_json(self) -> dict[str, Any]:
        """The Advertiser object as search returns it."""
        return {"userNo": self.user_no, "nickName": self.nick_name, "userType": self.user_type,
                "monthOrderCount": self.month_order_count, "monthFinishRate": self.month_finish_rate,
                "orderCount": self.order_count, "positiveRate": self.positive_rate,
                "advConfirmTime": self.adv_confirm_time,
                "userGrade": self.user_grade, "userIdentity": "", "isBlocked": False}


@dataclass(slots=True, kw_only=True)
class Listing(AdBase):
    """A competitor's ad. `role` is regular, decoy, bot, rival (a fast bot) or mirror (a fast
    bot that sits one tick from the merchant's own ad)."""

    role: str
    advertiser: Advertiser
    markup: Decimal  # relative distance from the reference (worse for the taker when larger)
    floor: Decimal = Decimal(0)  # bots: relative distance of the price they never pass
    next_reprice_ms: int = 0
    pending_since_ms: int | None = None
    answer_ms: int = 0  # rivals and mirrors: how long this answer takes (drawn per answer)


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """The optional filters of a search."""

    pay_types: frozenset[str] = frozenset()
    publisher_type: str | None = None
    trans_amount: Decimal | None = None
    tradable_only: bool = False

    def admits(self, ad: AdBase, user_type: str) -> bool:
        """Whether `ad` passes every filter."""
        if self.pay_types and not self.pay_types.intersection(ad.pay_methods):
            return False
        if self.publisher_type and user_type != self.publisher_type:
            return False
        if self.trans_amount is not None and not (
                ad.min_amount <= self.trans_amount <= ad.available_fiat()):
            return False
        return not (self.tradable_only and not ad.tradable())


def advertiser_side(taker_side: str) -> str:
    """Search takes the taker's side: a taker who BUYs sees advertisers who SELL."""
    return "SELL" if taker_side == "BUY" else "BUY"


class Market:
    """One asset/fiat market: the reference price and both books of competitor ads."""

    def __init__(self, cfg: MarketConfig, *, rng: random.Random, ids: Ids, now_ms: int,
                 rivals: tuple[random.Random, Ids] | None = None) -> None:
        self.cfg = cfg
        self.asset, self.fiat = cfg.asset, cfg.fiat
        self.scales = Scales.of(cfg.asset, cfg.fiat, cfg.price_scale)
        self.tick = Decimal(1).scaleb(-cfg.price_scale)
        self._price_exponent = self.tick  # q(value, price_scale) without the call (price_at)
        self.reference = q(cfg.reference, 8)
        self._rng, self._ids = rng, ids
        self._sigma = float(cfg.volatility) / math.sqrt(60.0)  # per one-second step
        self._pays = cfg.pay_methods or PAY_METHODS.get(cfg.fiat, FALLBACK_PAY_METHODS)
        self.books: dict[str, list[Listing]] = {side: [] for side in SIDES}
        for side in SIDES:
            for i in range(cfg.competitors):
                self.books[side].append(self._new_listing(side, self._role(i), now_ms))
        # rivals and mirrors come from their own streams: the rest of the market is unchanged
        self._rival_rng, rival_ids = rivals or (random.Random(f"rivals:{self.asset}:{self.fiat}"),
                                                ids)
        extra = ["rival"] * cfg.rival_bots + ["mirror"] * cfg.mirror_bots
        for side in SIDES if extra else ():
            for role in extra:
                self.books[side].append(self._new_listing(side, role, now_ms,
                                                          self._rival_rng, rival_ids))
        # the ads that reprice against others, in book order: churn replaces regulars only,
        # so these stay where they are for the market's life (looked up once, not every step)
        self._bot_ads = {side: [ad for ad in self.books[side] if ad.role in BOT_ROLES]
                         for side in SIDES}

    def _role(self, i: int) -> str:
        """The role of the i-th competitor: bots, decoys, then regulars."""
        cfg = self.cfg
        return "bot" if i < cfg.bots else "decoy" if i < cfg.bots + cfg.decoys else "regular"

    def reference_price(self) -> Decimal:
        """The reference price at the fiat's price scale."""
        return q(self.reference, self.cfg.price_scale)

    def price_at(self, side: str, markup: Decimal) -> Decimal:
        """The price `markup` away from the reference, on the taker-unfriendly side of `side`."""
        factor = 1 + markup if side == "SELL" else 1 - markup
        return (self.reference * factor).quantize(self._price_exponent, ROUND_HALF_UP)

    # ----- moving ------------------------------------------------------------------------

    def walk(self) -> None:
        """One step of the reference price's random walk."""
        if self._sigma:
            change = Decimal(f"{self._rng.gauss(0.0, self._sigma):.12f}")
            self.reference = q(self.reference * (1 + change), 8)

    def move(self, now_ms: int, own: Sequence[AdBase]) -> None:
        """One step of the competitors: follow the reference, let bots react, churn."""
        for side in SIDES:
            self._follow(side, now_ms)
            self._bots(side, now_ms, [ad for ad in own if ad.side == side and ad.status == 1])
            self._churn(side, now_ms)

    def _follow(self, side: str, now_ms: int) -> None:
        low, high = self.cfg.spread
        for ad in self.books[side]:
            if ad.role in BOT_ROLES or now_ms < ad.next_reprice_ms:
                continue
            top = low if ad.role == "decoy" else high
            bottom = Decimal(0) if ad.role == "decoy" else low
            ad.markup = min(max(ad.markup + uniform(self._rng, -_JITTER, _JITTER), bottom), top)
            self._set_price(ad, self.price_at(side, ad.markup), now_ms)
            ad.next_reprice_ms = now_ms + self._rng.randint(*_REPRICE_SECONDS) * 1000

    def _bots(self, side: str, now_ms: int, own: Sequence[AdBase]) -> None:
        bots = self._bot_ads[side]
        if not bots:
            return
        top = self._top_two(side, own)
        sell = side == "SELL"
        for bot in bots:  # one after the other: each sees the moves made before it
            limit = self.price_at(side, bot.floor)
            target = self._mirror(bot, own, limit) if bot.role == "mirror" else \
                self._target(bot, top, limit)
            if target == bot.price:
                bot.pending_since_ms = None
                continue
            past_floor = bot.price < limit if sell else bot.price > limit
            if bot.pending_since_ms is None:  # the change happened during the last step
                bot.pending_since_ms = now_ms - STEP_MS
                bot.answer_ms = self._answer_ms(bot)
            reacted = now_ms - bot.pending_since_ms >= bot.answer_ms
            if past_floor or reacted:  # a floor that moved with the reference is obeyed at once
                worse = target > bot.price if sell else target < bot.price
                self._set_price(bot, target, now_ms)
                bot.pending_since_ms = None
                if worse and any(ad is bot for ad in top):
                    top = self._top_two(side, own)
                else:
                    top = self._best_two(side, [ad for ad in top if ad is not bot] + [bot])

    def _answer_ms(self, bot: Listing) -> int:
        """How long `bot` takes to answer this move: fixed for bots, drawn for rivals/mirrors."""
        if bot.role == "bot":
            return self.cfg.bot_reaction_seconds * 1000
        return self._rival_rng.randint(*self.cfg.rival_seconds) * 1000

    def _mirror(self, bot: Listing, own: Sequence[AdBase], limit: Decimal) -> Decimal:
        """One tick better than the merchant's own online ad of this side, never past the floor."""
        mine = self._best_two(bot.side, [ad for ad in own if ad.side == bot.side])
        if not mine:
            return self.price_at(bot.side, bot.markup)
        if bot.side == "SELL":
            return max(mine[0].price - self.tick, limit)
        return min(mine[0].price + self.tick, limit)

    def _top_two(self, side: str, own: Sequence[AdBase]) -> list[AdBase]:
        """The two best non-decoy ads of a book (own online ads included)."""
        return self._best_two(side, [ad for ad in self.books[side] if ad.role != "decoy"]
                              + list(own))

    @staticmethod
    def _best_two(side: str, pool: Sequence[AdBase]) -> list[AdBase]:
        """The two best-priced ads of `pool`, best first; an ad listed earlier wins a tie
        (what heapq.nsmallest/nlargest by price give, in one pass without their set-up)."""
        first: AdBase | None = None
        second: AdBase | None = None
        sell = side == "SELL"
        for ad in pool:
            price = ad.price
            if first is None or (price < first.price if sell else price > first.price):
                first, second = ad, first
            elif second is None or (price < second.price if sell else price > second.price):
                second = ad
        if first is None:
            return []
        return [first] if second is None else [first, second]

    def _target(self, bot: Listing, top: Sequence[AdBase], limit: Decimal) -> Decimal:
        """One tick better than the best other ad, never past the floor. Bots ignore decoys
        (they filter by amount, as merchants do)."""
        best = top[0] if top and top[0] is not bot else top[1] if len(top) > 1 else None
        if best is None:
            return self.price_at(bot.side, bot.markup)
        if bot.side == "SELL":
            return max(best.price - self.tick, limit)
        return min(best.price + self.tick, limit)

    def bot_target(self, bot: Listing, own: Sequence[AdBase]) -> Decimal:
        """Where `bot` wants to be now."""
        return self._target(bot, self._top_two(bot.side, own), self.price_at(bot.side, bot.floor))

    def _churn(self, side: str, now_ms: int) -> None:
        chance = float(self.cfg.churn_per_hour) / 3600.0
        if chance and self._rng.random() < chance:
            regulars = [i for i, ad in enumerate(self.books[side]) if ad.role == "regular"]
            if regulars:
                self.books[side][self._rng.choice(regulars)] = self._new_listing(side, "regular", now_ms)

    @staticmethod
    def _set_price(ad: Listing, price: Decimal, now_ms: int) -> None:
        if price != ad.price:
            ad.price, ad.update_ms = price, now_ms

    # ----- new ads -----------------------------------------------------------------------

    def _advertiser(self, merchant: bool, rng: random.Random, ids: Ids) -> Advertiser:
        month = rng.randint(200, 4000) if merchant else rng.randint(3, 150)
        return Advertiser(
            user_no=ids.user_no(), nick_name=ids.nickname(),
            user_type="merchant" if merchant else "user", month_order_count=month,
            month_finish_rate=round(rng.uniform(0.9 if merchant else 0.7, 1.0), 4),
            order_count=month * rng.randint(2, 24), positive_rate=round(rng.uniform(0.9, 1.0), 4),
            adv_confirm_time=rng.randint(20, 600), user_grade=rng.randint(2, 3) if merchant else 1)

    def _new_listing(self, side: str, role: str, now_ms: int, rng: random.Random | None = None,
                     ids: Ids | None = None) -> Listing:
        rng, ids, cfg = rng or self._rng, ids or self._ids, self.cfg
        unit = _UNIT.get(self.asset, Decimal(1))
        low, high = cfg.spread
        markup = uniform(rng, Decimal(0), low) if role == "decoy" else uniform(rng, low, high)
        floor = uniform(rng, *cfg.bot_floor) if role in BOT_ROLES else Decimal(0)
        min_amount = nice(self.reference * unit * rng.choice(_MIN_UNITS))
        max_amount = max(nice(self.reference * unit * rng.choice(_MAX_UNITS)), min_amount * 2)
        surplus = unit * rng.randint(200, 20000)
        if role == "decoy":
            min_amount = nice(self.reference * unit)
            if rng.random() < 0.5:
                max_amount = nice(self.reference * unit * 5)  # a tiny max limit
            else:
                surplus = unit * rng.randint(2, 6)  # a tiny amount left
        merchant = role in BOT_ROLES or rng.random() < 0.6
        return Listing(
            adv_no=ids.adv_no(), side=side, asset=self.asset, fiat=self.fiat,
            price=self.price_at(side, markup), min_amount=min_amount, max_amount=max_amount,
            surplus=surplus, init_amount=surplus,
            pay_methods=rng.sample(self._pays, k=rng.randint(1, min(3, len(self._pays)))),
            create_ms=now_ms, update_ms=now_ms,
            classify="profession" if merchant and rng.random() < 0.3 else "mass",
            pay_time_limit=rng.choice((15, 15, 30)), role=role,
            advertiser=self._advertiser(merchant, rng, ids), markup=markup, floor=floor,
            next_reprice_ms=now_ms + rng.randint(*_REPRICE_SECONDS) * 1000)

    # ----- reading -----------------------------------------------------------------------

    def search(self, taker_side: str, flt: SearchFilter, own: Sequence[AdBase],
               own_advertiser: Advertiser) -> list[tuple[AdBase, Advertiser]]:
        """Every ad a taker on `taker_side` sees, the exchange's way round, own online ads included."""
        side = advertiser_side(taker_side)
        entries: list[tuple[AdBase, Advertiser]] = [(ad, ad.advertiser) for ad in self.books[side]]
        entries += [(ad, own_advertiser) for ad in own if ad.side == side and ad.status == 1]
        entries = [(ad, who) for ad, who in entries if flt.admits(ad, who.user_type)]
        entries.sort(key=lambda entry: entry[0].sort_key())
        return entries

    def ranks_of(self, ads: Sequence[AdBase], own: Sequence[AdBase]) -> list[int]:
        """Each of `ads`' 1-based position in its unfiltered search: the ads whose search key
        (`AdBase.sort_key`) is smaller, compared price first without building the keys (plain
        loops: this runs at every world step, and a generator per count cost a third more)."""
        ranks = []
        for ad in ads:
            price, tie, better = ad.price, (ad.update_ms, ad.adv_no), 0
            if ad.side == "SELL":
                for other in self.books["SELL"]:
                    p = other.price
                    if p < price or (p == price and (other.update_ms, other.adv_no) < tie):
                        better += 1
            else:
                for other in self.books["BUY"]:
                    p = other.price
                    if p > price or (p == price and (other.update_ms, other.adv_no) < tie):
                        better += 1
            key = ad.sort_key()
            for mine in own:
                if mine is not ad and mine.side == ad.side and mine.status == 1 \
                        and mine.sort_key() < key:
                    better += 1
            ranks.append(1 + better)
        return ranks

    def to_control(self, side: str | None = None) -> dict[str, Any]:
        """The market as the control API shows it: reference and competitors with their roles."""
        sides = [side] if side else list(SIDES)
        return {"asset": self.asset, "fiat": self.fiat, "reference": fmt(self.reference_price(),
                self.cfg.price_scale), "sides": {s: [self._listing_json(ad) for ad in sorted(
                    self.books[s], key=lambda ad: ad.sort_key())] for s in sides}}

    def _listing_json(self, ad: Listing) -> dict[str, Any]:
        scale = self.cfg.price_scale
        return {"advNo": ad.adv_no, "nickName": ad.advertiser.nick_name, "role": ad.role,
                "userType": ad.advertiser.user_type, "price": fmt(ad.price, scale),
                "floor": fmt(self.price_at(ad.side, ad.floor), scale) if ad.role in BOT_ROLES else None,
                "min": fmt(ad.min_amount), "max": fmt(ad.max_amount), "surplus": fmt(ad.surplus),
                "payMethods": list(ad.pay_methods), "updateTime": ad.update_ms}
