"""The bot's state as JSON (`/api/status`): capabilities, endpoint timelines, ads, decisions, orders.

Prices stay strings (exact decimals); times are epoch seconds on the bot's clock
(simulated time in `demo`). Everything here only reads.
"""

from __future__ import annotations

import inspect
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.binance.endpoints import ENDPOINTS
from bot.capabilities.registry import cause_json
from bot.capabilities.table import CAPABILITIES
from bot.health import WORKING
from bot.localtime import zone_json
from bot.pricing.guards import Budget, budget
from bot.schedule.windows import zone
from state.decisions import DecisionRow
from state.endpoints import EndpointLog, Transition
from state.outbox import DRY_RUN

if TYPE_CHECKING:
    from bot.app import Bot
    from bot.pricing.engine import AdRuntime

HISTORY_HOURS = 6.0
RECENT_DECISIONS = 20
CHART_POINTS = 400
RIVALS_SHOWN = 5


def _s(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def readiness(bot: Bot) -> tuple[bool, list[str]]:
    """(ready, the essential capabilities not seen working).

    Ready means every essential capability has been seen working (unchecked never counts)
    and the exchange holds nothing: no IP ban (a 418, or one restored from the store at
    start) and no 429 pause; during one every essential capability is down. A dry run sends
    no write, so a capability that only writes (repricing) cannot be seen working: it is not
    asked for then.
    """
    skip = write_only() if bot.engine.dry_run else frozenset()
    halted = bot.registry.halted() is not None
    down = [name for name in bot.cfg.capabilities.essential
            if name not in skip and (halted or bot.registry.status(name).state not in WORKING)]
    return not down and not halted, down


def write_only() -> frozenset[str]:
    """Capabilities whose every endpoint is a write."""
    return frozenset(name for name, spec in CAPABILITIES.items()
                     if all(ENDPOINTS[e].write for src in spec.sources for e in src.endpoints))


def capabilities(bot: Bot) -> list[dict[str, Any]]:
    """Every capability: state, source, cause, and the sentence of its state (`says`).

    During a 429 pause or a 418 ban every capability is `paused` (nothing is sent), and
    `says` gives the end: "paused by the exchange until 14:03:12 local (in 42 s): ..."."""
    essential = set(bot.cfg.capabilities.essential)
    halt = bot.registry.halted()
    out = []
    for name, spec in CAPABILITIES.items():
        s = bot.registry.status(name)
        cause = None if s.cause is None else cause_json(s.cause)
        state = "paused" if halt is not None else str(s.state)
        says = halt.says if halt is not None else spec.says(state)
        out.append({"name": name, "state": state, "source": s.source, "cause": cause,
                    "causes": [cause_json(c) for c in s.causes],
                    "paused_until": halt.until if halt is not None else None,
                    "essential": name in essential, "says": says,
                    "does": spec.does, "degraded": spec.degraded, "without": spec.without,
                    "endpoints": sorted({e for src in spec.sources for e in src.endpoints})})
    return out


def endpoints(bot: Bot, transitions: list[Transition]) -> list[dict[str, Any]]:
    """Every endpoint's health and its transitions in the window (the timeline)."""
    changes: dict[str, list[Transition]] = {}
    for t in transitions:
        changes.setdefault(t.endpoint, []).append(t)
    now = bot.clock.time()
    out = []
    for h in bot.registry.health.values():
        timeline = changes.get(h.name, [])
        out.append({
            "name": h.name, "state": str(h.state), "code": h.code, "message": h.message,
            "since": h.since or None, "latency_ms": None if h.latency is None else h.latency * 1000,
            "flaps": h.flap_count(now, bot.registry.config.flap_window),
            "next_probe_at": h.next_probe_at, "probation": h.probation,
            "state_at_start": timeline[0].old if timeline else str(h.state),
            "timeline": [{"at": t.at, "old": t.old, "new": t.new, "code": t.code,
                          "message": t.message} for t in timeline],
        })
    return out


def decision(row: DecisionRow) -> dict[str, Any]:
    """One decision as JSON."""
    best = (row.trace.get("best") or [None])[0] if row.trace else None
    return {"at": row.at, "ad": row.ad, "adv_no": row.adv_no, "strategy": row.strategy,
            "result": row.result, "reason": row.reason, "price_before": _s(row.price_before),
            "target": _s(row.target), "guards": list(row.guards), "code": row.code,
            "best": best, "rank": row.trace.get("rank") if row.trace else None,
            "repeats": row.repeats, "first_at": row.since}


async def history(bot: Bot, ad: AdRuntime, since: float) -> list[dict[str, Any]]:
    """The ad's price over the window: every applied update and a sample of the other decisions."""
    if ad.own is None:
        return []
    log = bot.decisions
    applied = await log.recent(ad.own.adv_no, limit=CHART_POINTS, since=since, results=("applied",))
    sampled = await log.recent(ad.own.adv_no, limit=CHART_POINTS, since=since)
    rows = {(r.at, r.result): r for r in (*applied, *sampled)}
    points = []
    for r in sorted(rows.values(), key=lambda r: r.at):
        price = r.target if r.result == "applied" and r.target is not None else r.price_before
        if r.repeats > 1:  # a repeated decision held the price from its first time on
            points.append({"at": max(r.since, since), "price": _s(price), "result": r.result})
        points.append({"at": r.at, "price": _s(price), "result": r.result})
    points.append({"at": bot.clock.time(), "price": _s(ad.own.price), "result": "now"})
    return points


def edit_budget(ad: AdRuntime, now: float) -> dict[str, Any]:
    """The ad's edit budget: updates used and left in the window, and what the pace allows now."""
    b = budget(ad.loaded.config.guards, ad.updates, now)
    return {"used": b.used, "left": b.left, "max": b.total, "window": b.window,
            "paced": b.paced, "next_in": b.next_in, "text": budget_text(b)}


def budget_text(b: Budget) -> str:
    """'24 of 30 left in the window (3600 s); the pace allows 2 now' (or 'the next in 84 s')."""
    pace = f"the pace allows {b.paced} now" if b.paced else f"the pace allows the next in {b.next_in:.0f} s"
    return f"{b.left} of {b.total} left in the window ({b.window:.0f} s); {pace}"


def settling(bot: Bot, ad: AdRuntime) -> dict[str, Any]:
    """The read-your-write settle window: the price the bot set while reads may lag, until
    when, and how many lagging reads of the ad were not believed so far."""
    window = bot.engine.settle_seconds
    settle = ad.settle
    live = settle is not None and bot.clock.time() - settle.at < window
    return {"price": _s(settle.price) if live and settle else None,
            "until": settle.at + window if live and settle else None,
            "stale_reads_ignored": ad.stale_reads}


def exchange_band(bot: Bot, ad: AdRuntime) -> dict[str, Any] | None:
    """The exchange's price band for the ad as learned from its refusals, or None."""
    own = ad.own
    if own is None:
        return None
    band = bot.engine.bands.band((own.asset, own.fiat, own.side.value), own.tick, bot.clock.time())
    return None if band is None else {"low": _s(band.low), "high": _s(band.high),
                                      "source": band.source}


async def ad_status(bot: Bot, ad: AdRuntime, since: float) -> dict[str, Any]:
    """One configured ad: where it stands, against whom, and its recent prices."""
    own = ad.own
    ref = ad.reference
    out: dict[str, Any] = {
        "label": ad.label, "strategy": ad.loaded.strategy.name,
        "enabled": ad.loaded.config.enabled, "online": ad.online, "problem": ad.problem or None,
        "adv_no": own.adv_no if own else ad.loaded.config.adv_no,
        "side": own.side.value if own else ad.loaded.config.side and str(ad.loaded.config.side),
        "asset": own.asset if own else ad.loaded.config.asset,
        "fiat": own.fiat if own else ad.loaded.config.fiat,
        "price": _s(own.price) if own else None, "price_type": own.price_type if own else None,
        "rank": ad.rank,
        "standing": ad.standing,
        "best": None if ad.best is None else {"nickname": ad.best.nickname,
                                              "price": _s(ad.best.price)},
        "reference": None if ref is None else {"price": _s(ref.price), "source": ref.source},
        "spread": _s(own.price - ref.price) if own and ref else None,
        "last": None if ad.last is None else decision(ad.last),
        "budget": edit_budget(ad, bot.clock.time()),
        "hidden": ad.hidden or None, "hidden_by_bot": ad.hidden_by_bot or None,
        "on_unsafe": ad.loaded.config.on_unsafe, "band": exchange_band(bot, ad),
        "settle": settling(bot, ad),
        "rivals": rivals(bot, ad),
    }
    out["history"] = await history(bot, ad, since)
    return out


def rivals(bot: Bot, ad: AdRuntime, n: int = RIVALS_SHOWN) -> list[dict[str, Any]]:
    """The competitors that matter for the ad: the `n` seen most often near its rank, with what
    their profile says (bot.pricing.rivals)."""
    if ad.own is None:
        return []
    book = bot.engine.rivals.books.get((ad.own.asset, ad.own.fiat, ad.own.side.value))
    return [] if book is None else [p.to_json() for p in book.top(n)]


async def open_orders(bot: Bot) -> list[Any] | None:
    """The desk's open orders, or None when there is no desk (it is optional)."""
    desk = getattr(bot, "desk", None)
    if desk is None:
        return None
    for holder in (desk, getattr(desk, "orders", None), getattr(desk, "store", None)):
        fn = getattr(holder, "open_orders", None)
        if callable(fn):
            got = fn()
            return list(await got if inspect.isawaitable(got) else got)
    return None


async def would_send(bot: Bot, limit: int = RECENT_DECISIONS) -> list[dict[str, Any]]:
    """Chat messages a dry run did not send (newest first): what the bot would have said."""
    outbox = getattr(getattr(bot, "desk", None), "outbox", None)
    if outbox is None:
        return []
    rows = await outbox.finished_between(DRY_RUN, limit=limit)
    return [{"at": r.updated_at, "order_number": r.order_number, "status": r.status,
             "content": str(r.payload.get("content", ""))} for r in reversed(rows)]


def order(o: Any) -> dict[str, Any]:
    """One order record as JSON (any dataclass; Decimal as strings)."""
    data = {f.name: getattr(o, f.name) for f in fields(o)} if is_dataclass(o) else dict(vars(o))
    return {k: _s(v) if isinstance(v, Decimal) else v for k, v in data.items()}


def markets(bot: Bot) -> dict[str, dict[str, Any]]:
    """Every searched market: the interval it is read at now and why (the adaptive cadence)."""
    cadence = getattr(bot, "cadence", None)
    return cadence.snapshot() if cadence is not None else {}


async def build(bot: Bot, hours: float = HISTORY_HOURS, orders: list[Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole /api/status document."""
    now = bot.clock.time()
    since = now - hours * 3600
    ready, down = readiness(bot)
    recent = await bot.decisions.recent(limit=RECENT_DECISIONS)
    transitions = await EndpointLog(bot.store).transitions(since=since)
    ads = [await ad_status(bot, ad, since) for ad in bot.ads]
    # the window starts where the data does, so a fresh start is not a sliver at the right edge
    known = [t.at for t in transitions] + [p["at"] for a in ads for p in a["history"]]
    start = max(since, min([*known, bot.started_at or now, now]) - 60)
    return {
        "now": now, "started_at": bot.started_at, "window": {"from": start, "to": now},
        "ready": ready, "essential_down": down, "banned_until": bot.registry.banned_until(),
        "paused_until": bot.registry.paused_until(),
        "dry_run": bot.engine.dry_run, "kill_switch": bot.engine.kill_switch,
        "config": str(bot.loaded.path),
        "capabilities": capabilities(bot),
        "endpoints": endpoints(bot, transitions),
        "ads": ads,
        "markets": markets(bot),
        "decisions": [decision(r) for r in recent],
        "desk": getattr(bot, "desk", None) is not None,
        "orders": [order(o) for o in orders or []],
        "would_send": await would_send(bot),
        "timezone": zone_json(zone(bot.cfg.bot.timezone), now),  # the page's clock
        "schedule": (keeper.snapshot() if (keeper := getattr(bot, "keeper", None)) is not None
                     and keeper.scheduled else None),
        **(extra or {}),
    }
