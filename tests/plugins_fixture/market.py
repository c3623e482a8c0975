"""Builders for strategy test data: short to write in a table, Decimal everywhere."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from strategies.base import CompetitorAd, OwnAd, PricingContext, Reference, Side

NOW = 1_700_000_000.0


def D(text: str) -> Decimal:  # noqa: N802 - reads like a literal in tables
    """A Decimal from its text."""
    return Decimal(text)


def comp(
    nick: str,
    price: str,
    *,
    user: str | None = None,
    adv: str | None = None,
    min_amount: str = "500",
    max_amount: str = "100000",
    available: str = "1000",
    pay: Iterable[str] = ("BANK",),
    merchant: bool = True,
    orders: int = 500,
    rate: str = "0.99",
) -> CompetitorAd:
    """A competitor ad; ids default to ones derived from the nickname."""
    return CompetitorAd(
        adv_no=adv or f"adv-{nick}",
        user_no=user or f"s-{nick}",
        nickname=nick,
        price=D(price),
        min_amount=D(min_amount),
        max_amount=D(max_amount),
        available=D(available),
        pay_methods=frozenset(pay),
        is_merchant=merchant,
        month_orders=orders,
        completion_rate=D(rate),
    )


def own(
    side: str = "SELL",
    price: str = "93.00",
    *,
    min_amount: str = "1000",
    max_amount: str = "50000",
    pay: Iterable[str] = ("BANK",),
    price_type: str = "fixed",
) -> OwnAd:
    """The merchant's ad (USDT/INR unless said otherwise)."""
    return OwnAd(
        adv_no="own-1",
        side=Side(side),
        asset="USDT",
        fiat="INR",
        price=D(price),
        price_type="floating" if price_type == "floating" else "fixed",
        min_amount=D(min_amount),
        max_amount=D(max_amount),
        available=D("500"),
        pay_methods=frozenset(pay),
    )


def ctx(
    ad: OwnAd,
    competitors: Iterable[CompetitorAd] = (),
    *,
    floor: str | None = None,
    ceiling: str | None = None,
    reference: Reference | None = None,
    filtered_out: Mapping[str, int] | None = None,
    capabilities: Iterable[str] = ("market", "reference_price"),
) -> PricingContext:
    """A pricing context at a fixed time, with the market and reference capabilities up."""
    return PricingContext(
        ad=ad,
        competitors=tuple(competitors),
        now=NOW,
        reference=reference,
        floor=None if floor is None else D(floor),
        ceiling=None if ceiling is None else D(ceiling),
        filtered_out=filtered_out or {},
        capabilities=frozenset(capabilities),
    )


def market(side: str, *pairs: tuple[str, str]) -> tuple[CompetitorAd, ...]:
    """Competitors from (nickname, price) pairs, given best first for `side`."""
    ads = tuple(comp(nick, price) for nick, price in pairs)
    prices = [ad.price for ad in ads]
    assert prices == sorted(prices, key=Side(side).sort_key), "give the market best first"
    return ads
