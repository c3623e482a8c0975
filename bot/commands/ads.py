"""`ads`: list the merchant's own ads (every page) and print a ready `[[ads]]` block for each.

Read-only: it reads `ads/listWithPagination` through the capability registry and the
signed client, page by page until the exchange's total is reached, and changes nothing.
Each block names the ad by its id, picks the strategy that fits its price type (undercut
for a fixed price, follow_reference at its current ratio for a floating one), and sets a
tight floor and ceiling around today's price and a small edit budget: the settings of the
first live day (docs/going-live.md). `check-config` accepts every block as printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from bot.binance.errors import BinanceError
from bot.binance.models import Ad, PriceType
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.commands.common import (
    EXIT_DEGRADED,
    EXIT_OK,
    ConfigError,
    credentials,
    fail,
    load_settings,
    make_client,
    open_store,
)
from state.endpoints import EndpointLog
from state.meta import Meta

PAGE_ROWS = 20  # the exchange caps a page at about 20 rows whatever `rows` says
MAX_PAGES = 100
BAND = Decimal("0.01")  # the first day's floor and ceiling: 1% either side of today's price
FIRST_DAY_UPDATES = 10  # the first day's edit budget per hour
STATUS = {1: "online", 3: "offline", 4: "closed"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ads`."""
    p.add_argument("--json", action="store_true", help="print the ads as JSON")
    p.add_argument("--no-toml", action="store_true", help="only the table, no [[ads]] blocks")
    p.add_argument("--band", type=Decimal, default=BAND * 100, metavar="PERCENT",
                   help="the floor and ceiling of each block, this many percent either side of "
                        "today's price (default 1)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `ads`: 0 with the list, 3 when the ads could not be read."""
    if not 0 < args.band < 100:
        return fail(ConfigError(f"--band {args.band}: give a percentage above 0 and below 100"))
    try:
        ads = asyncio.run(_read(say_where=not args.json))
    except ConfigError as exc:
        return fail(exc)
    except (BinanceError, CapabilityUnavailable) as exc:
        print(f"p2pbot ads: your ads could not be read: {exc}")
        return EXIT_DEGRADED
    band = Decimal(args.band) / 100
    if args.json:
        print(json.dumps([{**row(ad), "toml": block(ad, band)} for ad in ads], indent=2))
    else:
        print(render(ads, band, toml=not args.no_toml))
    return EXIT_OK


async def _read(*, say_where: bool) -> list[Ad]:
    settings = load_settings()
    creds = credentials(settings)
    async with open_store(settings.db) as store, make_client(creds) as client:
        reg = CapabilityRegistry(client, log=EndpointLog(store), meta=Meta(store))
        await reg.restore()
        if say_where:
            print(f"exchange: {settings.base_url}", flush=True)
        return await all_ads(P2PApi(reg))


async def all_ads(api: P2PApi, rows: int = PAGE_ROWS) -> list[Ad]:
    """Every own ad, every page (until the total, a short page, or MAX_PAGES); each once."""
    found: dict[str, Ad] = {}
    for page in range(1, MAX_PAGES + 1):
        got = await api.my_ads(page=page, rows=rows)
        for ad in got.items:
            found.setdefault(ad.adv_no, ad)
        if not got.items or (got.total is not None and len(found) >= got.total):
            break
        if got.total is None and len(got.items) < rows:
            break
    return list(found.values())


# --- what is printed ---------------------------------------------------------------------------


def row(ad: Ad) -> dict[str, Any]:
    """One ad as the table and the JSON show it."""
    floating = ad.price_type == PriceType.FLOATING
    return {
        "adv_no": ad.adv_no, "side": (ad.trade_type or "?").upper(),
        "asset": ad.asset, "fiat": ad.fiat_unit,
        "price_type": "floating" if floating else "fixed",
        "price": str(ad.price), "ratio": _text(ad.price_floating_ratio) if floating else None,
        "min": _text(ad.min_single_trans_amount), "max": _text(ad.max_single_trans_amount),
        "available": _text(ad.surplus_amount if ad.surplus_amount is not None
                           else ad.tradable_quantity),
        "status": STATUS.get(ad.adv_status or 0, f"status {ad.adv_status}"),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _cells(r: dict[str, Any]) -> tuple[str, ...]:
    kind = r["price_type"] + (f" {r['ratio']}%" if r["ratio"] else "")
    return (r["adv_no"], r["side"], f"{r['asset']}/{r['fiat']}", kind, r["price"],
            f"{r['min'] or '?'}-{r['max'] or '?'}", r["available"] or "?", r["status"])


def render(ads: Sequence[Ad], band: Decimal, *, toml: bool = True) -> str:
    """The table, then one `[[ads]]` block per ad."""
    if not ads:
        return "no ads: create one in the Binance app first (P2P > Post new ad)"
    cells = [_cells(row(ad)) for ad in ads]
    head = ("adv_no", "side", "market", "type", "price", "limits (fiat)", "available", "status")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    right = {4, 5, 6}  # numbers line up on the right
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                       for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip()
             for line in [head, *cells]]
    if toml:
        lines += ["", "# Paste the blocks of the ads the bot may price into your config file, then",
                  "# run `p2pbot check-config`. The floor and ceiling are tight on purpose and",
                  "# the edit budget small: widen them once you have watched a day.", ""]
        lines += [block(ad, band) for ad in ads]
    return "\n".join(lines)


def block(ad: Ad, band: Decimal = BAND) -> str:
    """A `[[ads]]` block for this ad that check-config accepts."""
    side = (ad.trade_type or "SELL").upper()
    floor, ceiling = bounds(ad, band)
    name = f"{side.lower()}-{(ad.asset or 'ad').lower()}-{(ad.fiat_unit or '').lower()}"
    name = f"{name}-{ad.adv_no[-4:]}"
    said = f"{side} {ad.asset}/{ad.fiat_unit}, {row(ad)['price_type']} at {ad.price}"
    lines = ["[[ads]]", f'name = "{name}"', f'adv_no = "{ad.adv_no}"  # {said}']
    if ad.price_type == PriceType.FLOATING and ad.price_floating_ratio is not None:
        lines += ['strategy = "follow_reference"', "[ads.params]",
                  f'ratio = "{format(ad.price_floating_ratio.normalize(), "f")}"'
                  "  # the ratio it has now (percent of the reference price)"]
    else:
        tick = _tick(ad)
        lines += ['strategy = "undercut"', "[ads.params]",
                  f'step = "{tick}"  # beat the competitor by one tick']
    lines += ["[ads.guards]",
              f'floor = "{floor}"  # {ad.fiat_unit} per {ad.asset}: never below',
              f'ceiling = "{ceiling}"  # never above',
              f"max_updates = {FIRST_DAY_UPDATES}  # price edits an hour, at most", ""]
    return "\n".join(lines)


def _tick(ad: Ad) -> str:
    """One unit of the ad's price scale (`priceScale`, else the decimals of its price)."""
    exponent = ad.price.as_tuple().exponent
    scale = ad.price_scale if ad.price_scale is not None else \
        max(0, -exponent if isinstance(exponent, int) else 2)
    return format(Decimal(1).scaleb(-scale), "f")


def bounds(ad: Ad, band: Decimal) -> tuple[str, str]:
    """Floor and ceiling `band` either side of today's price, at the ad's price scale (one
    tick apart at least, the floor above zero)."""
    tick = Decimal(_tick(ad))
    floor = (ad.price * (1 - band)).quantize(tick, rounding=ROUND_FLOOR)
    ceiling = (ad.price * (1 + band)).quantize(tick, rounding=ROUND_CEILING)
    floor = max(floor, tick)
    if ceiling <= floor:
        ceiling = floor + tick
    return format(floor, "f"), format(ceiling, "f")
