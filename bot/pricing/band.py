"""The exchange's price band, learned from its refusals (docs/exchange.md §11.4: 187055).

Binance refuses a price outside a band that moves with the market; the band is not a
fixed percentage. A refusal usually names the allowed minimum and maximum: they are
taken as the band. When it names none, the edge lies between the last price the
exchange accepted and the one it refused: each later update tries the middle of that
gap (one update each, within the edit budget), so the edge is found in about
log2(gap / tick) updates. What is learned is kept per (asset, fiat, side) for `ttl`
seconds, then forgotten: the band moves, and an old edge would hold the ad back.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from strategies.base import PriceBand

BAND_TTL = 300.0  # seconds a learned band is believed (desks keep it for minutes)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?!\.?\d|\w|\s*%)")

Key = tuple[str, str, str]  # (asset, fiat, the ad's side)


def bounds_in(message: str, refused: Decimal) -> tuple[Decimal, Decimal] | None:
    """The allowed (minimum, maximum) a refusal names, or None when it names no two prices.

    The exact format is unverified, so: every number in the text that is not a percentage,
    not the refused price itself, and within a factor 10 of it (error codes such as 187055
    inside a -9000 message are not prices); the two extremes when at least two remain.
    """
    found: list[Decimal] = []
    for text in _NUMBER.findall(message or ""):
        try:
            value = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            continue
        if value != refused and refused / 10 <= value <= refused * 10:
            found.append(value)
    if len(found) < 2:
        return None
    return min(found), max(found)


@dataclass(slots=True)
class Edge:
    """What is known of one edge of the band: named by the exchange (`exact`), or
    bracketed between a price it accepted (`ok`) and one it refused (`bad`)."""

    at: float
    exact: Decimal | None = None
    ok: Decimal | None = None
    bad: Decimal | None = None

    def limit(self, tick: Decimal, up: bool) -> Decimal | None:
        """The furthest price to send towards this edge: the edge, or the middle of the gap."""
        if self.exact is not None:
            return self.exact
        if self.ok is None or self.bad is None:
            return None
        gap = abs(self.bad - self.ok)
        if gap <= tick:
            return self.ok  # found: the edge is the last price accepted
        half = (gap / 2).quantize(tick, rounding=ROUND_FLOOR if up else ROUND_CEILING)
        half = max(half, tick)
        return self.ok + half if up else self.ok - half


class BandBook:
    """Learned bands per (asset, fiat, side), each edge forgotten `ttl` seconds after it was learned."""

    def __init__(self, ttl: float = BAND_TTL) -> None:
        self.ttl = ttl
        self._edges: dict[tuple[Key, str], Edge] = {}

    def refused(self, key: Key, price: Decimal, accepted: Decimal | None, message: str,
                now: float) -> str:
        """Learn from a refusal of `price` (the ad's last accepted price was `accepted`);
        returns what was learned, for the decision's reason."""
        named = bounds_in(message, price)
        if named is not None:
            low, high = named
            self._edges[(key, "low")] = Edge(now, exact=low)
            self._edges[(key, "high")] = Edge(now, exact=high)
            return f"the exchange allows {low} to {high}"
        if accepted is None or accepted == price:
            return "the refusal names no bounds and no accepted price brackets the edge"
        name, up = ("high", True) if price > accepted else ("low", False)
        edge = self._edges.get((key, name))
        if edge is None or edge.exact is not None or self._expired(edge, now):
            edge = Edge(now, ok=accepted, bad=price)
        else:
            edge.bad = price if edge.bad is None else (min(edge.bad, price) if up else max(edge.bad, price))
            edge.ok = accepted if edge.ok is None else (max(edge.ok, accepted) if up else min(edge.ok, accepted))
            edge.at = now
        self._edges[(key, name)] = edge
        return (f"the refusal names no bounds: the {name} edge is between {edge.ok} (accepted) "
                f"and {edge.bad} (refused); the next update tries the middle")

    def accepted(self, key: Key, price: Decimal, now: float) -> None:
        """A price the exchange took: it narrows a bracketed edge, or shows the band moved."""
        if not self._edges:
            return
        for name, up in (("high", True), ("low", False)):
            edge = self._edges.get((key, name))
            if edge is None:
                continue
            beyond: Callable[[Decimal, Decimal], bool] = operator.gt if up else operator.lt
            if edge.exact is not None and beyond(price, edge.exact) or \
                    edge.bad is not None and not beyond(edge.bad, price):
                del self._edges[(key, name)]  # the band moved past what we knew
            elif edge.ok is not None and beyond(price, edge.ok):
                edge.ok, edge.at = price, now

    def band(self, key: Key, tick: Decimal, now: float) -> PriceBand | None:
        """The band to clamp to now, or None when nothing (unexpired) is known."""
        if not self._edges:  # nothing learned (almost always): every decision asks
            return None
        limits: dict[str, Decimal | None] = {}
        source = "message"
        for name, up in (("low", False), ("high", True)):
            edge = self._edges.get((key, name))
            if edge is not None and self._expired(edge, now):
                del self._edges[(key, name)]
                edge = None
            limits[name] = None if edge is None else edge.limit(tick, up)
            if edge is not None and edge.exact is None:
                source = "bisect"
        if limits["low"] is None and limits["high"] is None:
            return None
        return PriceBand(low=limits["low"], high=limits["high"], source=source)  # type: ignore[arg-type]

    def _expired(self, edge: Edge, now: float) -> bool:
        return now - edge.at > self.ttl
