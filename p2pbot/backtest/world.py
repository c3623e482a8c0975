"""The market history a backtest replays, and the models used where our price differs from it.

Replayed as recorded: every rival row (price, amounts, limits, position), the reference
and its source, the capabilities that were working, our ad's amounts and open orders, and
our own row while our price is the one recorded (a lagging read included).

Modelled while our price differs from the recorded one (`diverged`):
- our position: by price among the recorded rows, behind the ads at the same price
  (an update moves an ad behind them, as on the exchange);
- the rivals that reprice against others (a user whose price changed at least
  BOT_MOVES_PER_HOUR times an hour in the recording): the simulator's rule
  (simulator.world.market.Market._target): one tick better than the best other ad of the two
  best, never past the best price the rival showed in the whole recording (its floor);
  they answer by the next snapshot;
- orders won: the simulator's order model (simulator.world.orders.OrderBook.arrivals),
  rate_per_hour x rank_decay^(rank-1), taken as its expectation (no draw), each order
  the mean of a uniform total between the ad's minimum and what its amount can fill.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.binance.models import SearchItem
from simulator.world.config import OrdersConfig

BOT_MOVES_PER_HOUR = 20  # price changes an hour from which a rival is taken as a repricing bot
MAX_GAP = 60.0  # seconds a snapshot counts for at most (a gap in the recording counts as unseen)


@dataclass
class Step:
    """One recorded market snapshot and the decisions made on it."""

    at: float
    market: tuple[str, str, str]  # asset, fiat, search side
    rows: list[list[Any]]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    span: float = 0.0  # seconds until the next snapshot of this market (at most MAX_GAP)


@dataclass(frozen=True)
class RivalBot:
    """A rival the recording shows repricing against others."""

    user_no: str
    floor: Decimal  # the best price for takers it showed
    moves_per_hour: float


@dataclass
class History:
    """The steps in time order, the orders recorded, the recorded ads and the rival bots."""

    steps: list[Step]
    orders: list[tuple[float, dict[str, Any]]]
    ads: dict[str, dict[str, Any]]  # adv_no -> the first decision recorded on it
    bots: dict[tuple[tuple[str, str, str], str], RivalBot]  # (market, user_no) -> bot
    source: str = "recording"
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)  # reference, own

    @property
    def span(self) -> tuple[float, float]:
        """The first and last snapshot's time."""
        return (self.steps[0].at, self.steps[-1].at) if self.steps else (0.0, 0.0)


def build(entries: Sequence[tuple[float, str, dict[str, Any]]], since: float | None = None,
          until: float | None = None, source: str = "recording") -> History:
    """The history of recorded rows (each market row followed by its decisions)."""
    steps: list[Step] = []
    orders: list[tuple[float, dict[str, Any]]] = []
    events: list[tuple[float, str, dict[str, Any]]] = []
    ads: dict[str, dict[str, Any]] = {}
    current: Step | None = None
    for at, kind, body in entries:
        inside = (since is None or at >= since) and (until is None or at <= until)
        if kind == "market":
            current = Step(at, (body["asset"], body["fiat"], body["side"]), body["rows"]) \
                if inside else None
            if current is not None:
                steps.append(current)
        elif kind == "decision" and current is not None and at == current.at:
            current.decisions.append(body)
            ads.setdefault(body["adv_no"], body)
        elif kind == "order" and inside:
            orders.append((at, body))
        elif kind in ("reference", "own") and inside:
            events.append((at, kind, body))
    _spans(steps)
    events.sort(key=lambda e: e[0])  # written when handled: in the order they were read
    return History(steps, orders, ads, find_bots(steps, ads), source, events)


def _spans(steps: Sequence[Step]) -> None:
    last: dict[tuple[str, str, str], Step] = {}
    for step in steps:
        before = last.get(step.market)
        if before is not None:
            before.span = min(step.at - before.at, MAX_GAP)
        last[step.market] = step
    for step in last.values():  # the last snapshot counts as long as the one before it
        step.span = min(10.0, MAX_GAP)


def find_bots(steps: Sequence[Step], ads: dict[str, dict[str, Any]]
              ) -> dict[tuple[tuple[str, str, str], str], RivalBot]:
    """The rivals that change price at least BOT_MOVES_PER_HOUR times an hour, with their floor."""
    mine = set(ads)
    seen: dict[tuple[tuple[str, str, str], str], list[Decimal]] = defaultdict(list)
    first: dict[tuple[str, str, str], float] = {}
    last: dict[tuple[str, str, str], float] = {}
    for step in steps:
        first.setdefault(step.market, step.at)
        last[step.market] = step.at
        for row in step.rows:
            if row[0] not in mine and row[1]:
                seen[(step.market, row[1])].append(Decimal(row[3]))
    bots = {}
    for key, prices in seen.items():
        market = key[0]
        hours = max((last[market] - first[market]) / 3600.0, 1 / 60)
        moves = sum(1 for a, b in zip(prices, prices[1:], strict=False) if a != b) / hours
        if moves >= BOT_MOVES_PER_HOUR:
            # advertisers on the search side BUY sell crypto: lower is better for takers
            floor = min(prices) if market[2] == "BUY" else max(prices)
            bots[key] = RivalBot(key[1], floor, moves)
    return bots


def _better(search_side: str, a: Decimal, b: Decimal) -> bool:
    """Whether price `a` is better for takers than `b` (search BUY finds SELL ads: lower)."""
    return a < b if search_side == "BUY" else a > b


def place(rows: list[list[Any]], own_row: list[Any], search_side: str) -> list[list[Any]]:
    """`own_row` among `rows` by price, behind the ads at the same price."""
    price = Decimal(own_row[3])
    out: list[list[Any]] = []
    placed = False
    for row in rows:
        if not placed and _better(search_side, price, Decimal(row[3])):
            out.append(own_row)
            placed = True
        out.append(row)
    if not placed:
        out.append(own_row)
    return out


def answer(rows: list[list[Any]], bots: dict[str, RivalBot], search_side: str,
           tick: Decimal) -> list[list[Any]]:
    """The rival bots' answer to the book (simulator.world.market.Market._target), in book order,
    each seeing the moves before it; the book re-sorted by price (stable)."""
    rows = [list(r) for r in rows]
    for row in rows:
        bot = bots.get(row[1])
        if bot is None:
            continue
        others = [Decimal(r[3]) for r in rows if r is not row]
        if not others:
            continue
        best = min(others) if search_side == "BUY" else max(others)
        target = best - tick if search_side == "BUY" else best + tick
        target = max(target, bot.floor) if search_side == "BUY" else min(target, bot.floor)
        row[3] = str(target)
    sign = 1 if search_side == "BUY" else -1
    return sorted(rows, key=lambda r: Decimal(r[3]) * sign)


def to_item(row: Sequence[Any], asset: str, fiat: str) -> SearchItem:
    """A recorded row as the search result the engine reads."""
    (adv_no, user_no, nick, price, low, high, available, pay, merchant, month, rate,
     ratio) = row
    return SearchItem.model_validate({
        "adv": {"advNo": adv_no, "price": price, "asset": asset, "fiatUnit": fiat,
                "minSingleTransAmount": low, "maxSingleTransAmount": high,
                "tradableQuantity": available, "priceFloatingRatio": ratio,
                "tradeMethods": [{"identifier": p} for p in pay]},
        "advertiser": {"nickName": nick, "userNo": user_no or None,
                       "userType": "merchant" if merchant else "user",
                       "monthOrderCount": month, "monthFinishRate": rate},
    })


@dataclass(frozen=True)
class OrderModel:
    """The simulator's order model as an expectation: orders an hour at rank r."""

    rate_per_hour: Decimal = OrdersConfig().rate_per_hour
    rank_decay: Decimal = OrdersConfig().rank_decay

    def expected(self, rank: int | None, seconds: float) -> Decimal:
        """Orders expected in `seconds` at `rank` (none when the ad is not in the results)."""
        if rank is None or seconds <= 0:
            return Decimal(0)
        per_second = self.rate_per_hour / 3600 * self.rank_decay ** (rank - 1)
        return per_second * Decimal(str(seconds))

    @staticmethod
    def order_size(min_amount: Decimal, available: Decimal, price: Decimal) -> Decimal:
        """The mean fiat total of one order: uniform between the minimum and what is available."""
        most = available * price
        return (min_amount + max(min_amount, most)) / 2
