"""Resolving the configured ads to the merchant's own ads on the exchange.

Pure: which of your ads a `[[ads]]` entry names (by `adv_no`, or by asset/fiat/side
when that is unambiguous), and how a reloaded config maps onto the ads already
running (an ad is the same ad when its selector is, and keeps its runtime state).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.binance.models import Ad
from bot.pricing.engine import AdRuntime
from config.loader import LoadedAd


def matches(ad: AdRuntime, own: Sequence[Ad]) -> list[Ad]:
    """The own ads an entry selects: by adv_no, else by asset/fiat/side, online ones first."""
    c = ad.loaded.config
    if c.adv_no:
        return [a for a in own if a.adv_no == c.adv_no]
    found = [a for a in own
             if (a.asset, a.fiat_unit, (a.trade_type or "").upper()) == (c.asset, c.fiat, str(c.side))]
    online = [a for a in found if a.adv_status in (None, 1)]
    return online or found


def ambiguity(ad: AdRuntime, found: Sequence[Ad]) -> str | None:
    """The problem when an entry without adv_no selects more than one ad, else None."""
    if ad.loaded.config.adv_no or len(found) <= 1:
        return None
    return (f"ad {ad.label}: {ad.loaded.config.selector} matches {len(found)} of your ads "
            f"({', '.join(a.adv_no for a in found)}); set adv_no in [[ads]]")


def missing_labels(ads: Sequence[AdRuntime]) -> str:
    """The configured ads not found, named for a log line."""
    return "; ".join(ad.label if ad.label == ad.loaded.config.selector
                     else f"{ad.label} ({ad.loaded.config.selector})" for ad in ads)


def merge(current: Sequence[AdRuntime], loaded: Sequence[LoadedAd]
          ) -> tuple[list[AdRuntime], list[AdRuntime], list[str]]:
    """(every ad, the new ones, labels of removed ones) after a reload: an ad is the same
    when its selector is, and keeps its state (price, rank, edit history); only what the
    file says changes."""
    by_selector = {ad.loaded.config.selector: ad for ad in current}
    ads: list[AdRuntime] = []
    added: list[AdRuntime] = []
    for new in loaded:
        runtime = by_selector.pop(new.config.selector, None)
        if runtime is None:
            runtime = AdRuntime(new)
            added.append(runtime)
        else:
            runtime.loaded = new  # strategy, params, filters, guards; state kept
        ads.append(runtime)
    return ads, added, [ad.label for ad in by_selector.values()]
