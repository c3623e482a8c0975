"""What each config did over the history, side by side: the numbers a merchant compares.

Time-weighted: each decision counts for the time until the next snapshot of its market
(p2pbot.backtest.world.Step.span). The rank is the ad's position in the search results as
takers see them (decoys included): the order model works on it.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from p2pbot.backtest.runner import AdRun, Run
from p2pbot.backtest.world import History

RANK_BUCKETS = ("1", "2", "3", "4-5", "6-10", "11+", "unseen")
FORMAT = "p2pbot-backtest"
VERSION = 1
REPLAYED = ("rival rows (price, amounts, limits, position) as recorded; the reference and its "
            "source; the capabilities working; our ad's amounts and open orders; our own row "
            "while our price is the recorded one")
MODELLED = ("while our price differs from the recorded one: our position (by price, behind "
            "equal prices); the answer of rivals that reprice at least 20 times an hour (the "
            "simulator's bot rule: one tick better than the best other ad, never past the best "
            "price they showed); orders and volume for every config (the simulator's order "
            "model as an expectation: rate_per_hour x rank_decay^(rank-1))")


def bucket(rank: int | None) -> str:
    """The rank's bucket in the distribution."""
    if rank is None:
        return "unseen"
    if rank <= 3:
        return str(rank)
    return "4-5" if rank <= 5 else "6-10" if rank <= 10 else "11+"


_NUM = re.compile(r"-?\d[\d.,]*")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")


def why(reason: str, guards: tuple[str, ...]) -> str:
    """A hold's reason without its numbers and names, so holds of one kind add up."""
    if guards:
        return f"guard {guards[-1]}"  # the last one named is the one that stopped it
    if "; unchanged: ratio " in reason:  # a floating ad whose ratio already gives the price
        return "unchanged: ratio in place"  # (the strategy's reason before it: "reference # #%")
    text = re.sub(r"'[^']*'", "'…'", reason)
    text = re.split(r"[:;(]", text, maxsplit=1)[0].strip()
    text = _ORDINAL.sub(lambda m: "first" if m.group(1) == "1" else "nth", text)  # not "#st"
    return _NUM.sub("#", text)[:70] or "hold"


@dataclass
class Metrics:
    """One config's numbers (all its ads together)."""

    name: str
    hours: float
    decisions: int = 0
    rank1_share: float = 0.0
    ranks: dict[str, float] = field(default_factory=dict)  # bucket -> share of the time
    edits: int = 0
    edits_per_hour: float = 0.0
    guards: dict[str, int] = field(default_factory=dict)
    held_minutes: dict[str, float] = field(default_factory=dict)  # why -> minutes
    margin_floor: str | None = None  # median distance above the floor
    margin_ceiling: str | None = None  # median distance below the ceiling
    orders: float = 0.0
    volume: str = "0"
    modelled_share: float = 0.0  # share of the time our price differed from the recording

    def value(self, name: str) -> float:
        """A metric by name for objectives (margin: above the floor)."""
        table = {"rank1_share": self.rank1_share, "edits": float(self.edits),
                 "orders": self.orders, "volume": float(self.volume),
                 "margin": float(self.margin_floor or 0),
                 "margin_ceiling": float(self.margin_ceiling or 0),
                 "edits_per_hour": self.edits_per_hour,
                 "modelled_share": self.modelled_share}
        return table[name]


OBJECTIVE_METRICS = ("rank1_share", "orders", "volume", "margin", "margin_ceiling", "edits",
                     "edits_per_hour", "modelled_share")


def measure(run: Run) -> Metrics:
    """The numbers of one run."""
    m = Metrics(run.name, round(run.seconds / 3600, 3))
    total = 0.0
    ranks: defaultdict[str, float] = defaultdict(float)  # seconds per rank bucket
    guards: Counter[str] = Counter()
    held: defaultdict[str, float] = defaultdict(float)  # minutes per reason
    above: list[Decimal] = []
    below: list[Decimal] = []
    orders, volume, modelled = Decimal(0), Decimal(0), 0.0
    for ad in run.ads:
        for s in ad.samples:
            m.decisions += 1
            total += s.span
            ranks[bucket(s.rank)] += s.span
            guards.update(s.row.guards)
            if s.row.result == "applied":
                m.edits += 1
            elif s.row.result == "held":
                held[why(s.row.reason, s.row.guards)] += s.span / 60
            _margins(ad, s.price, above, below)
            orders += s.orders
            volume += s.volume
            modelled += s.span if s.diverged else 0.0
    if total:
        m.ranks = {b: round(ranks[b] / total, 4) for b in RANK_BUCKETS if ranks[b]}
        m.rank1_share = m.ranks.get("1", 0.0)
        m.modelled_share = round(modelled / total, 4)
    m.edits_per_hour = round(m.edits / m.hours, 2) if m.hours else 0.0
    m.guards = dict(guards.most_common())
    m.held_minutes = {k: round(v, 1) for k, v in sorted(held.items(), key=lambda kv: -kv[1])}
    m.margin_floor = str(statistics.median(above)) if above else None
    m.margin_ceiling = str(statistics.median(below)) if below else None
    m.orders = round(float(orders), 2)
    m.volume = str(volume.quantize(Decimal(1)))
    return m


def _margins(ad: AdRun, price: Decimal, above: list[Decimal], below: list[Decimal]) -> None:
    if ad.floor is not None:
        above.append(price - ad.floor)
    if ad.ceiling is not None:
        below.append(ad.ceiling - price)


def differences(metrics: list[Metrics]) -> list[str]:
    """Each config against the first, in words: what changed and the likely why."""
    if len(metrics) < 2:
        return []
    base, out = metrics[0], []
    for m in metrics[1:]:
        out.append(_explain(base, m))
    return out


def _explain(a: Metrics, b: Metrics) -> str:
    points = (b.rank1_share - a.rank1_share) * 100
    parts = [f"{b.name} vs {a.name}: rank 1 {b.rank1_share:.0%} vs {a.rank1_share:.0%} "
             f"({points:+.0f} points), {b.edits - a.edits:+d} edits, "
             f"{b.orders - a.orders:+.2f} orders, volume {Decimal(b.volume) - Decimal(a.volume):+}"]
    if a.margin_floor is not None and b.margin_floor is not None:
        parts.append(f"median margin above the floor "
                     f"{Decimal(b.margin_floor) - Decimal(a.margin_floor):+}")
    guard_delta = {g: b.guards.get(g, 0) - a.guards.get(g, 0) for g in {*a.guards, *b.guards}}
    more = sorted(((d, g) for g, d in guard_delta.items() if d), reverse=True)
    if more:
        parts.append("guards hit: " + ", ".join(f"{g} {d:+d}" for d, g in more[:3]))
    held = {k: b.held_minutes.get(k, 0) - a.held_minutes.get(k, 0)
            for k in {*a.held_minutes, *b.held_minutes}}
    top = sorted(held.items(), key=lambda kv: -abs(kv[1]))[:2]
    if top and abs(top[0][1]) >= 1:
        parts.append("held: " + ", ".join(f"{k} {v:+.0f} min" for k, v in top if abs(v) >= 1))
    if b.modelled_share or a.modelled_share:
        parts.append(f"{b.modelled_share:.0%} of {b.name}'s time is modelled (its price differs "
                     "from the recorded one)")
    return "; ".join(parts)


def document(history: History, metrics: list[Metrics], runs: list[Run],
             elapsed: float) -> dict[str, Any]:
    """The whole report as one JSON-ready document."""
    first, last = history.span
    return {
        "format": FORMAT, "version": VERSION,
        "history": {"source": history.source, "from": first, "to": last,
                    "hours": round((last - first) / 3600, 3), "snapshots": len(history.steps),
                    "orders_recorded": len(history.orders),
                    "rival_bots": len(history.bots)},
        "replayed": REPLAYED, "modelled": MODELLED,
        # what the recording says about each rival that reprices (bot.pricing.rivals adds its profiles)
        "rivals": [{"user_no": bot.user_no, "market": "/".join(market),
                    "moves_per_hour": round(bot.moves_per_hour, 1), "best_price": str(bot.floor)}
                   for (market, _), bot in sorted(history.bots.items(),
                                                  key=lambda kv: -kv[1].moves_per_hour)],
        "configs": [asdict(m) for m in metrics],
        "differences": differences(metrics),
        "seconds": round(elapsed, 3),
    }


def text(doc: dict[str, Any]) -> str:
    """The report for the terminal: the configs side by side."""
    configs = doc["configs"]
    h = doc["history"]
    names = [c["name"] for c in configs]
    width = max(14, *(len(n) + 2 for n in names))
    lines = [f"backtest over {h['hours']:g} h of {h['source']} ({h['snapshots']} snapshots, "
             f"{h['rival_bots']} rival bots found, {h['orders_recorded']} orders recorded), "
             f"{doc['seconds']:.1f} s", ""]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<28}" + "".join(f"{v:>{width}}" for v in values))

    row("", names)
    row("rank-1 share", [f"{c['rank1_share']:.1%}" for c in configs])
    for b in RANK_BUCKETS[1:]:
        row(f"  rank {b}", [f"{c['ranks'].get(b, 0):.1%}" for c in configs])
    row("edits (applied)", [str(c["edits"]) for c in configs])
    row("edits per hour", [f"{c['edits_per_hour']:g}" for c in configs])
    row("median margin above floor", [c["margin_floor"] or "-" for c in configs])
    row("median margin below ceiling", [c["margin_ceiling"] or "-" for c in configs])
    row("orders (estimated)", [f"{c['orders']:.2f}" for c in configs])
    row("volume (estimated, fiat)", [c["volume"] for c in configs])
    row("time modelled", [f"{c['modelled_share']:.0%}" for c in configs])
    guards = sorted({g for c in configs for g in c["guards"]})
    if guards:
        lines.append("guards hit (decisions)")
        for g in guards:
            row(f"  {g}", [str(c["guards"].get(g, 0)) for c in configs])
    reasons = sorted({k for c in configs for k in c["held_minutes"]},
                     key=lambda k: -max(c["held_minutes"].get(k, 0) for c in configs))[:8]
    if reasons:
        lines.append("minutes held, and why")
        for k in reasons:
            row(f"  {k[:26]}", [f"{c['held_minutes'].get(k, 0):g}" for c in configs])
    if doc["differences"]:
        lines += ["", "differences:"] + [f"  {d}" for d in doc["differences"]]
    rivals = doc.get("rivals") or []
    if rivals:
        lines += ["", f"rivals that reprice (answered by the model): {len(rivals)}; the busiest:"]
        lines += [f"  {r['user_no']} {r['market']}: {r['moves_per_hour']:g} moves/h, best price "
                  f"{r['best_price']}" for r in rivals[:5]]
    lines += ["", f"replayed: {doc['replayed']}", f"modelled: {doc['modelled']}"]
    return "\n".join(lines)
