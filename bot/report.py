"""Reports: what the desk traded in a span, as a pure function of orders, transitions and edits.

Orders are grouped by the merchant's calendar day (in `[bot] timezone`), ad and side. Volume
and fiat totals count completed orders only (a cancelled order moved nothing); the average
buy and sell prices are weighted by volume (fiat total / asset amount), and the spread earned
is what selling at the average sell price what was bought at the average buy price makes, on
the amount both sides traded. Completion and cancellation rates are over finished orders.
The time from paid to released comes from the status changes the bot saw (its precision is
the order poll interval): on a SELL order the merchant releases (their own speed), on a BUY
order the counterparty does.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from bot.binance.models import HistoryRow
from bot.clock import describe_duration
from state.report import StoredOrder

COMPLETED = 4
CANCELLED = (6, 7)
OPEN = (1, 2, 3)
PAID, RELEASED = 2, 4
MONEY = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class ReportOrder:
    """One order as the report needs it (from the store, or from the order history)."""

    order_number: str
    status: int
    side: str  # the merchant's side, SELL or BUY
    asset: str
    fiat: str
    amount: Decimal
    total: Decimal
    created_at: float
    adv_no: str = ""
    paid_at: float | None = None  # when the bot saw it paid
    released_at: float | None = None  # when the bot saw it completed
    source: str = "store"


@dataclass(slots=True)
class Bucket:
    """Counts and sums of one group of orders."""

    orders: int = 0
    completed: int = 0
    cancelled: int = 0
    open: int = 0
    volume: Decimal = Decimal(0)  # asset, completed orders
    fiat: Decimal = Decimal(0)  # fiat total, completed orders

    def add(self, o: ReportOrder) -> None:
        """Count one order."""
        self.orders += 1
        if o.status == COMPLETED:
            self.completed += 1
            self.volume += o.amount
            self.fiat += o.total
        elif o.status in CANCELLED:
            self.cancelled += 1
        else:
            self.open += 1

    @property
    def average(self) -> Decimal | None:
        """Fiat per unit over completed orders, or None without any."""
        return self.fiat / self.volume if self.volume else None


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the daily table: a day, an ad, a side."""

    day: date
    ad: str
    adv_no: str
    side: str
    asset: str
    fiat: str
    bucket: Bucket


@dataclass(frozen=True, slots=True)
class Spread:
    """Average buy and sell prices of one market and what the difference earned."""

    asset: str
    fiat: str
    buy: Bucket
    sell: Bucket

    @property
    def spread(self) -> Decimal | None:
        """Average sell minus average buy price, when both sides traded."""
        if self.buy.average is None or self.sell.average is None:
            return None
        return self.sell.average - self.buy.average

    @property
    def matched(self) -> Decimal:
        """The amount both bought and sold."""
        return min(self.buy.volume, self.sell.volume)

    @property
    def earned(self) -> Decimal | None:
        """The spread on the matched amount, in fiat."""
        return None if self.spread is None else self.spread * self.matched


@dataclass(frozen=True, slots=True)
class Release:
    """Paid-to-released times of one side (seconds)."""

    side: str
    seconds: tuple[float, ...]

    def median(self) -> float | None:
        """The median, or None without any."""
        return statistics.median(self.seconds) if self.seconds else None

    def p90(self) -> float | None:
        """The time 90% of the orders were released within."""
        if not self.seconds:
            return None
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


@dataclass(slots=True)
class Report:
    """Everything `p2pbot report` prints."""

    first: date
    last: date
    tz: tzinfo
    rows: list[Row] = field(default_factory=list)
    total: Bucket = field(default_factory=Bucket)
    spreads: list[Spread] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    edits: dict[str, int] = field(default_factory=dict)  # ad -> price edits applied
    sources: dict[str, int] = field(default_factory=dict)  # where the orders came from

    @property
    def finished(self) -> int:
        """Completed or cancelled orders."""
        return self.total.completed + self.total.cancelled

    def rate(self, count: int) -> Decimal | None:
        """`count` as a share of the finished orders."""
        return Decimal(count) / self.finished if self.finished else None

    def daily(self) -> list[dict[str, str | int]]:
        """One entry per day of the span (empty days too): orders and fiat by side, for charts."""
        days: dict[date, dict[str, str | int]] = {}
        day = self.first
        while day <= self.last:
            days[day] = {"day": day.isoformat(), "orders": 0, "buy_fiat": "0", "sell_fiat": "0"}
            day += timedelta(days=1)
        for r in self.rows:
            entry = days.get(r.day)
            if entry is None:
                continue
            entry["orders"] = int(entry["orders"]) + r.bucket.orders
            key = "sell_fiat" if r.side == "SELL" else "buy_fiat"
            entry[key] = format(Decimal(str(entry[key])) + r.bucket.fiat, "f")
        return list(days.values())


def span(first: date, last: date, tz: tzinfo) -> tuple[float, float]:
    """[first 00:00, the day after last 00:00) on the merchant's clock, as epoch seconds."""
    start = datetime.combine(first, datetime.min.time(), tz).timestamp()
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp()
    return start, end


def merge(stored: Iterable[ReportOrder], history: Iterable[ReportOrder]) -> list[ReportOrder]:
    """The stored orders, completed by the history: an order the store lacks is added, and a
    final status the store missed (it still holds it open) is taken from the history."""
    found = {o.order_number: o for o in stored}
    for h in history:
        mine = found.get(h.order_number)
        if mine is None:
            found[h.order_number] = h
        elif mine.status in OPEN and h.status not in OPEN:
            found[h.order_number] = replace(mine, status=h.status)
    return list(found.values())


def build(orders: Iterable[ReportOrder], *, first: date, last: date, tz: tzinfo,
          labels: Mapping[str, str] | None = None,
          edits: Mapping[str, int] | None = None) -> Report:
    """The report of the orders created in [first, last] (merchant's days, inclusive)."""
    start, end = span(first, last, tz)
    chosen = [o for o in orders if start <= o.created_at < end]
    report = Report(first, last, tz, edits=dict(edits or {}))
    groups: dict[tuple[date, str, str, str, str], Bucket] = {}
    markets: dict[tuple[str, str], Spread] = {}
    for o in sorted(chosen, key=lambda o: (o.created_at, o.order_number)):
        day = datetime.fromtimestamp(o.created_at, tz).date()
        groups.setdefault((day, o.adv_no, o.side, o.asset, o.fiat), Bucket()).add(o)
        market = markets.setdefault((o.asset, o.fiat), Spread(o.asset, o.fiat, Bucket(), Bucket()))
        (market.sell if o.side == "SELL" else market.buy).add(o)
        report.total.add(o)
        report.sources[o.source] = report.sources.get(o.source, 0) + 1
    names = labels or {}
    report.rows = sorted((Row(day, names.get(adv, adv or "?"), adv, side, asset, fiat, bucket)
                          for (day, adv, side, asset, fiat), bucket in groups.items()),
                         key=lambda r: (r.day, r.ad, r.adv_no, r.side))
    report.spreads = list(markets.values())
    report.releases = [Release(side, tuple(o.released_at - o.paid_at for o in chosen
                                           if o.side == side and o.status == COMPLETED
                                           and o.paid_at is not None and o.released_at is not None
                                           and o.released_at >= o.paid_at))
                       for side in ("SELL", "BUY")]
    return report


def from_store(o: StoredOrder) -> ReportOrder | None:
    """A stored order for the report; None when it was never read in full."""
    if None in (o.amount, o.total, o.created_at, o.side, o.asset, o.fiat):
        return None  # never read in full: nothing to count it by
    assert o.amount is not None and o.total is not None and o.created_at is not None
    return ReportOrder(o.order_number, o.status, str(o.side).upper(), str(o.asset), str(o.fiat),
                       o.amount, o.total, o.created_at, o.adv_no or "", o.paid_at, o.released_at)


def from_history(r: HistoryRow, side: str) -> ReportOrder | None:
    """An order history row for the report (`side`: the side asked for)."""
    if r.status is None or r.create_time is None:
        return None  # a status the bot does not know is not guessed
    return ReportOrder(r.order_number, int(r.status), (r.trade_type or side).upper(),
                       r.asset or "?", r.fiat or "?", r.amount, r.total_price,
                       r.create_time / 1000, r.adv_no or "", source="history")


# --- text and CSV ------------------------------------------------------------------------------


def _money(value: Decimal | None) -> str:
    return "-" if value is None else format(value.quantize(MONEY), "f")


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _percent(value: Decimal | None) -> str:
    return "-" if value is None else f"{(value * 100).quantize(Decimal('0.1'))}%"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else describe_duration(seconds)


def render(report: Report, zone: str) -> str:
    """The report as text."""
    got = ", ".join(f"{n} from the {'store' if s == 'store' else 'order history'}"
                    for s, n in sorted(report.sources.items(), key=lambda kv: kv[0] != "store"))
    lines = [f"report {report.first} .. {report.last} ({zone}); "
             f"{report.total.orders} orders ({got or 'none'})", ""]
    lines += _table(report.rows)
    lines += ["", "prices (completed orders, weighted by volume)"]
    lines += [_spread(s) for s in report.spreads] or ["  no completed orders"]
    t = report.total
    lines += ["", f"completion {_percent(report.rate(t.completed))} ({t.completed} of "
                  f"{report.finished} finished), cancellation {_percent(report.rate(t.cancelled))} "
                  f"({t.cancelled}); {t.open} still open"]
    lines += [_release(r) for r in report.releases]
    edits = ", ".join(f"{ad} {n}" for ad, n in sorted(report.edits.items())) or "none"
    lines.append(f"price edits applied: {edits}")
    return "\n".join(lines)


def _table(rows: Sequence[Row]) -> list[str]:
    head = (f"{'day':<10}  {'ad':<16} {'side':<4} {'market':<10} {'orders':>6} {'done':>5} "
            f"{'cancel':>6} {'open':>4} {'volume':>14} {'fiat total':>14} {'avg price':>10}")
    lines = [head]
    for r in rows:
        b = r.bucket
        lines.append(f"{r.day.isoformat():<10}  {r.ad[:16]:<16} {r.side:<4} "
                     f"{r.asset + '/' + r.fiat:<10} {b.orders:>6} {b.completed:>5} "
                     f"{b.cancelled:>6} {b.open:>4} {_amount(b.volume):>14} "
                     f"{_money(b.fiat):>14} {_money(b.average):>10}")
    if not rows:
        lines.append("no orders in this span")
    return lines


def _spread(s: Spread) -> str:
    buy = f"buy {_money(s.buy.average)} ({_amount(s.buy.volume)} {s.asset})"
    sell = f"sell {_money(s.sell.average)} ({_amount(s.sell.volume)} {s.asset})"
    if s.spread is None:
        return f"  {s.asset}/{s.fiat}: {buy}, {sell}; no spread: one side did not trade"
    pct = s.spread / s.buy.average if s.buy.average else None
    return (f"  {s.asset}/{s.fiat}: {buy}, {sell}; spread {_money(s.spread)} ({_percent(pct)}), "
            f"earned {_money(s.earned)} {s.fiat} on {_amount(s.matched)} {s.asset} bought and sold")


def _release(r: Release) -> str:
    who = "you released (SELL)" if r.side == "SELL" else "counterparties released (BUY)"
    if not r.seconds:
        return f"paid -> released, {who}: no completed order seen paid"
    return (f"paid -> released, {who}, {len(r.seconds)} orders: median {_duration(r.median())}, "
            f"90% within {_duration(r.p90())}, slowest {_duration(max(r.seconds))}")


CSV_COLUMNS = ("day", "ad", "adv_no", "side", "asset", "fiat", "orders", "completed", "cancelled",
               "open", "volume", "fiat_total", "avg_price")


def render_csv(report: Report) -> str:
    """The daily table as CSV (one row per day, ad and side)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        b = r.bucket
        writer.writerow([r.day.isoformat(), r.ad, r.adv_no, r.side, r.asset, r.fiat, b.orders,
                         b.completed, b.cancelled, b.open, format(b.volume, "f"),
                         format(b.fiat, "f"), "" if b.average is None else _money(b.average)])
    return out.getvalue()
