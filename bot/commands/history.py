"""`history`: from the store, when each endpoint went down and came back, price updates, orders.

Times are the merchant's (`[bot] timezone` of the config file, as `report` shows them); an
ISO time without a zone given to --since/--until is read in that zone too."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import asdict
from datetime import UTC, datetime, tzinfo

from bot.commands import options
from bot.commands.common import EXIT_OK, ConfigError, fail, load_settings, open_store
from bot.localtime import zone_name, zone_of_file
from bot.orders.track import STATUS_NAME
from config.settings import config_path
from state.decisions import DecisionLog, DecisionRow
from state.endpoints import EndpointLog, Transition
from state.orders import OrderStore, TransitionRow
from state.outbox import DRY_RUN, Outbox, OutboxRow

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PARTS = ("endpoints", "prices", "orders", "decisions")


add_arguments = options.history  # the options live in a light module (fast --help)


def parse_when(text: str | None, now: float | None = None, tz: tzinfo = UTC) -> float | None:
    """An ISO date/time (in `tz` when it names no zone) or a span back from now ('90m', '2d')
    as epoch seconds."""
    if text is None:
        return None
    now = time.time() if now is None else now
    m = _RELATIVE.match(text.strip())
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since/--until: {text!r} is neither an ISO time nor a span like 6h") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def run(args: argparse.Namespace) -> int:
    """Entry point of `history`."""
    try:
        print(asyncio.run(_main(args)))
    except ConfigError as exc:
        return fail(exc)
    return EXIT_OK


async def _main(args: argparse.Namespace) -> str:
    settings = load_settings()
    tz = zone_of_file(config_path(args.config, settings.config))
    since, until = parse_when(args.since, tz=tz), parse_when(args.until, tz=tz)
    if not settings.db.exists():
        raise ConfigError(f"no store at {settings.db} (set P2PBOT_DB): nothing recorded yet")
    show = {part.strip() for part in args.show.split(",") if part.strip()}
    unknown = show - set(PARTS)
    if unknown:
        raise ConfigError(f"--show: unknown part(s) {', '.join(sorted(unknown))}; "
                          f"use {', '.join(PARTS)}")
    async with open_store(settings.db) as store:
        rows = await EndpointLog(store).transitions(args.endpoint, since, until)
        prices = await DecisionLog(store).recent(limit=100_000, since=since,
                                                 results=("applied", "failed", "unknown", "dry_run"))
        orders = await OrderStore(store).transitions(since=since, until=until)
        decisions = (await DecisionLog(store).recent(limit=100_000, since=since)
                     if "decisions" in show else [])
        would = await Outbox(store).finished_between(DRY_RUN, since, until, limit=100_000)
    prices = [p for p in reversed(prices) if until is None or p.at <= until]
    decisions = [d for d in reversed(decisions) if until is None or d.since <= until]
    if args.json:
        return json.dumps({
            "transitions": [asdict(t) for t in rows] if "endpoints" in show else [],
            "outages": outages(rows) if "endpoints" in show else [],
            "price_updates": [_price_json(p) for p in prices] if "prices" in show else [],
            "orders": [asdict(o) for o in orders] if "orders" in show else [],
            "decisions": [_decision_json(d) for d in decisions],
            "would_send": [_would_json(w) for w in would] if "orders" in show else [],
        })
    parts = []
    if "endpoints" in show:
        parts.append(render(rows, tz))
    if "prices" in show:
        parts.append(render_prices(prices, tz))
    if "orders" in show:
        parts.append(render_orders(orders, tz))
        if would:
            parts.append(render_would_send(would, tz))
    if "decisions" in show:
        parts.append(render_decisions(decisions, tz))
    return "\n\n".join(parts)


def _would_json(row: OutboxRow) -> dict[str, object]:
    return {"at": row.updated_at, "order_number": row.order_number, "status": row.status,
            "content": str(row.payload.get("content", ""))}


def render_would_send(rows: list[OutboxRow], tz: tzinfo = UTC) -> str:
    """Chat messages a dry run did not send, oldest first."""
    lines = ["chat messages not sent (dry run):"]
    for r in rows:
        lines.append(f"{_stamp(r.updated_at, tz)}  dry run: would send to order {r.order_number} "
                     f"({r.status}): {str(r.payload.get('content', ''))[:200]}")
    return "\n".join(lines)


def _price_json(p: DecisionRow) -> dict[str, object]:
    return {"at": p.at, "ad": p.ad, "adv_no": p.adv_no, "from": str(p.price_before),
            "to": None if p.target is None else str(p.target), "result": p.result,
            "reason": p.reason, "code": p.code}


def _decision_json(d: DecisionRow) -> dict[str, object]:
    return {**_price_json(d), "first_at": d.since, "repeats": d.repeats, "strategy": d.strategy,
            "guards": list(d.guards)}


Column = tuple[str, str]  # (title, format spec for the title and every cell: "<14", ">10", "")


def table(columns: list[Column], rows: list[list[str]]) -> str:
    """Fixed-width text columns, the last one free; every table of `history` is one."""
    def line(cells: list[str]) -> str:
        return "  ".join(f"{c:{spec}}" for c, (_, spec) in zip(cells, columns, strict=True)).rstrip()
    return "\n".join([line([title for title, _ in columns]), *(line(r) for r in rows)])


def stamp_column(tz: tzinfo) -> Column:
    """The time column, titled with the zone its times are in."""
    title = f"time ({zone_name(tz)})"
    return (title, f"<{max(19, len(title))}")


def render_decisions(rows: list[DecisionRow], tz: tzinfo = UTC) -> str:
    """Every decision, holds included, oldest first; a repeated one shows its count and span."""
    if not rows:
        return "no decisions recorded"
    return table(
        [stamp_column(tz), ("ad", "<14"), ("price", ">10"), ("target", ">10"), ("result", "<8"),
         ("repeats", ">7"), ("reason", "")],
        [[_stamp(d.since, tz), d.ad[:14], str(d.price_before), _opt(d.target), d.result,
          f"x{d.repeats}", d.reason[:80] + (f" (until {_stamp(d.at, tz)})" if d.repeats > 1 else "")]
         for d in rows])


def render_prices(rows: list[DecisionRow], tz: tzinfo = UTC) -> str:
    """Price updates sent (applied, refused or of unknown outcome) or not (dry_run), oldest first."""
    if not rows:
        return "no price updates recorded"
    return table(
        [stamp_column(tz), ("ad", "<14"), ("from", ">10"), ("to", ">10"), ("result", "<8"), ("reason", "")],
        [[_stamp(p.at, tz), p.ad[:14], str(p.price_before), _opt(p.target), p.result, p.reason[:80]]
         for p in rows])


def render_orders(rows: list[TransitionRow], tz: tzinfo = UTC) -> str:
    """Order status changes, oldest first; inferred ones (across a gap) are marked."""
    if not rows:
        return "no order events recorded"
    return table(
        [stamp_column(tz), ("order", "<20"), ("from", "<20"), ("to", "<20"), ("source", "")],
        [[_stamp(t.at, tz), t.order_number, "-" if t.old is None else STATUS_NAME.get(t.old, str(t.old)),
          STATUS_NAME.get(t.new, str(t.new)), t.source + (" (inferred)" if t.inferred else "")]
         for t in rows])


def _opt(value: object | None) -> str:
    return "" if value is None else str(value)


def _stamp(at: float, tz: tzinfo = UTC) -> str:
    return datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M:%S")


def outages(rows: list[Transition]) -> list[dict[str, object]]:
    """Periods during which each endpoint was not available: start, end (None if still), code."""
    open_: dict[str, dict[str, object]] = {}
    done: list[dict[str, object]] = []
    for t in rows:
        if t.new != "available" and t.endpoint not in open_:
            open_[t.endpoint] = {"endpoint": t.endpoint, "state": t.new, "code": t.code,
                                 "start": t.at, "end": None}
        elif t.new == "available" and t.endpoint in open_:
            period = open_.pop(t.endpoint)
            period["end"] = t.at
            done.append(period)
    return sorted(done + list(open_.values()), key=lambda p: (str(p["endpoint"]), float(p["start"])))  # type: ignore[arg-type]


def render(rows: list[Transition], tz: tzinfo = UTC) -> str:
    """Transitions, then outages, as text."""
    if not rows:
        return "no endpoint transitions recorded"
    lines = [table(
        [stamp_column(tz), ("endpoint", "<17"), ("from", "<12"), ("to", "<12"), ("code", ">6"), ("message", "")],
        [[_stamp(t.at, tz), t.endpoint, t.old, t.new, _opt(t.code), t.message] for t in rows])]
    lines += ["", "outages (not available):"]
    for p in outages(rows):
        start = float(p["start"])  # type: ignore[arg-type]
        end = p["end"]
        span = f"until {_stamp(float(end), tz)} ({_human(float(end) - start)})" if end else "still down"  # type: ignore[arg-type]
        code = f" {p['code']}" if p["code"] is not None else ""
        lines.append(f"  {p['endpoint']:<17} {p['state']}{code} from {_stamp(start, tz)} {span}")
    return "\n".join(lines)


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
