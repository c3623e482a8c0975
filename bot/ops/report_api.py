"""`/api/report`: the last days of trade for the status page's daily chart (bot/report.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.localtime import zone_json
from bot.report import build, from_store, span
from bot.schedule.windows import zone
from state.report import ad_names, edits_between, orders_between

if TYPE_CHECKING:
    from bot.app import Bot

DAYS = 14
MAX_DAYS = 92


async def daily(bot: Bot, days: int = DAYS) -> dict[str, Any]:
    """The report of the last `days` days (today included), from the store, per day."""
    tz = zone(bot.cfg.bot.timezone)
    now = bot.clock.time()
    last = datetime.fromtimestamp(now, tz).date()
    first = last - timedelta(days=max(1, min(days, MAX_DAYS)) - 1)
    start, end = span(first, last, tz)
    stored = [from_store(o) for o in await orders_between(bot.store, start, end)]
    report = build([o for o in stored if o is not None], first=first, last=last, tz=tz,
                   labels=await ad_names(bot.store), edits=await edits_between(bot.store, start, end))
    t = report.total
    return {
        "timezone": zone_json(tz, now), "from": first.isoformat(), "to": last.isoformat(),
        "days": report.daily(),
        "totals": {"orders": t.orders, "completed": t.completed, "cancelled": t.cancelled,
                   "open": t.open},
        "edits": report.edits,
    }
