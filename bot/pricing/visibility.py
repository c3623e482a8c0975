"""Whether an ad can be seen in search: hidden by the exchange, or hidden by the bot on purpose.

The exchange hides an ad while it has too many open orders (a BUY ad at 8, shown again
at 4; a SELL ad at 50, shown again at 40; its rank kept), and while its available
amount is below its minimum order (it loses its rank when refilled). Such an ad is
absent from search: that is not a fault and no reason to reprice, so the bot works out
why from its own order count and amounts and holds, saying so.

The bot itself hides an ad (`visible = 0` on ads/update, the ad staying online) when its
price cannot be kept inside its guards and the ad says `on_unsafe = "hide"`; it shows
it again once it is safe, and only an ad it hid itself.
"""

from __future__ import annotations

from decimal import Decimal

from strategies.base import OwnAd, Side

# open orders at which the exchange hides an ad, and at which it shows it again
HIDE_AT: dict[Side, tuple[int, int]] = {Side.BUY: (8, 4), Side.SELL: (50, 40)}
MARKET_STALE = 300.0  # seconds without market data after which an ad's price is unsafe
OPEN_ORDERS = "open orders"


def available_fiat(own: OwnAd) -> Decimal:
    """The largest order the ad can take now, in fiat (its amount left at its price, capped)."""
    left = own.available * own.price
    return min(own.max_amount, left) if own.max_amount else left


def hidden_reason(own: OwnAd, open_orders: int | None, was: str = "") -> str:
    """Why the exchange hides the ad now ("" when it does not, as far as the bot can tell).

    `open_orders` is the ad's open order count (None when unknown); `was` the reason
    given last time, for the way back: an ad hidden at 8 open orders is shown again at 4.
    """
    if open_orders is not None:
        hide_at, show_at = HIDE_AT[own.side]
        if open_orders >= hide_at or (OPEN_ORDERS in was and open_orders > show_at):
            return (f"{open_orders} {OPEN_ORDERS} (a {own.side} ad is hidden at {hide_at}, "
                    f"shown again at {show_at})")
    if own.min_amount and available_fiat(own) < own.min_amount:
        return (f"available amount {available_fiat(own).quantize(Decimal('0.01'))} {own.fiat} "
                f"is below the minimum order {own.min_amount} {own.fiat}")
    return ""


def unsafe_reason(*, kill_switch: bool, repricing: bool, market_age: float | None,
                  stale_after: float, band_hold: str) -> str:
    """Why the ad's price cannot be kept inside its guards now, or "" when it can."""
    if kill_switch:
        return "the kill switch is on"
    if not repricing:
        return "ad updates are unavailable"
    if market_age is not None and market_age > stale_after:
        return f"market data is {market_age:.0f} s old (limit {stale_after:.0f} s)"
    return band_hold
