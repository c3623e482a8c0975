"""What `check-config` says about time: the merchant's zone and each ad's hours, now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.localtime import show, zone_name
from bot.schedule.windows import zone
from config.loader import LoadedAd
from config.models import AppConfig
from config.schedule import effective


def hours_plan(app: AppConfig, ads: Sequence[LoadedAd], now: float) -> dict[str, Any]:
    """The zone, the business hours and every ad's effective schedule, open or closed at `now`."""
    tz = zone(app.bot.timezone)
    found: list[dict[str, object]] = []
    for ad in ads:
        table = effective(app.schedule, ad.config.schedule)
        if table is None:
            found.append({"ad": ad.label, "hours": None})
            continue
        sched = table.schedule(tz)
        change = sched.next_change(now)
        found.append({"ad": ad.label, "hours": list(table.windows), "holidays": list(table.holidays),
                      "outside": table.outside, "open_now": sched.is_open(now),
                      "next_change": show(change, tz, seconds=False) if change else None})
    return {"timezone": zone_name(tz), "configured": app.bot.timezone,
            "business": bool(app.schedule and app.schedule.business), "ads": found}


def render_hours(plan: dict[str, Any]) -> list[str]:
    """The plan's time lines for people."""
    said = "" if plan["configured"] else " (the machine's own: set [bot] timezone)"
    lines = [f"time zone: {plan['timezone']}{said}"]
    if plan["business"]:
        lines.append("  the merchant's business is closed outside [schedule] and opened inside it")
    for a in plan["ads"]:
        if a["hours"] is None:
            lines.append(f"  {a['ad']}: always open (no schedule)")
            continue
        now = "open now" if a["open_now"] else "closed now"
        until = f", {'closes' if a['open_now'] else 'opens'} {a['next_change']}" \
            if a["next_change"] else ""
        holidays = f"; holidays {', '.join(a['holidays'])}" if a["holidays"] else ""
        lines.append(f"  {a['ad']}: {', '.join(a['hours'])}{holidays}; outside: {a['outside']} "
                     f"({now}{until})")
    return lines
