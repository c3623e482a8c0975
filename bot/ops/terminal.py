"""A live view of the bot for a terminal: ads, prices, ranks, decisions, capabilities, alerts.

The screen is redrawn every second, so a warning written to the terminal would be
wiped at once: warnings and alerts are kept by `Alerts` (a log sink) and drawn at
the bottom until newer ones push them out. Every line fits the width (80 columns).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from loguru import logger

from bot.app import Bot
from bot.health import CapState
from bot.localtime import show, zone_name
from bot.ops.status_api import budget_text
from bot.orders.track import STATUS_NAME
from bot.pricing.guards import budget
from bot.schedule.windows import zone

MARK = {CapState.ENABLED: "up", CapState.DEGRADED: "degraded", CapState.DISABLED: "DOWN",
        CapState.UNCHECKED: "unchecked"}
WIDTH = 80
ALERTS_KEPT = 6


@dataclass(frozen=True, slots=True)
class Alert:
    """One warning or alert as the view shows it."""

    at: float
    level: str
    text: str


class Alerts:
    """The last warnings and alerts, oldest first: a loguru sink the view draws from."""

    def __init__(self, keep: int = ALERTS_KEPT, now: Callable[[], float] = time.time) -> None:
        self.items: deque[Alert] = deque(maxlen=keep)
        self.now = now  # the bot's clock: simulated time in `demo`

    def write(self, message: Any) -> None:
        """loguru sink: keep the record's first line (already redacted by the patcher)."""
        record = message.record
        first = str(record["message"]).splitlines()[0] if record["message"] else ""
        self.items.append(Alert(self.now(), record["level"].name, first))

    def attach(self, level: str = "WARNING") -> int:
        """Start collecting; returns the loguru handler id."""
        return logger.add(self.write, level=level, format="{message}", colorize=False)


def fit(line: str, width: int = WIDTH) -> str:
    """The line cut to `width` columns, an ellipsis marking the cut."""
    return line if len(line) <= width else line[:width - 1] + "…"


def render(bot: Bot, now: float, title: str = "", *, alerts: Alerts | None = None,
           width: int = WIDTH) -> str:
    """One screen of text, every line at most `width` columns."""
    tz = zone(bot.cfg.bot.timezone)  # the merchant's clock ([bot] timezone)
    stamp = show(now, tz)
    lines = [f"p2pbot {title}  {stamp} (simulated, {zone_name(tz)})" if title
             else f"p2pbot  {stamp} ({zone_name(tz)})", ""]
    lines += _ads(bot)
    lines += ["", *_capabilities(bot, width)]
    lines.append("")
    lines.append("rank: among competitors that count (filters applied); #n: in the search")
    lines.append("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(bot.engine.counts.items())))
    lines += _orders(bot)
    lines += _alerts(alerts, tz)
    return "\n".join(fit(line, width) for line in lines)


def _ads(bot: Bot) -> list[str]:
    """Two lines an ad: where it stands, then its last decision (and the reference)."""
    lines = [f"{'ad':<14} {'side':<4} {'price':>10} {'rank':>8}  best competitor"]
    for ad in bot.ads:
        own = ad.own
        if own is None:
            lines.append(f"{ad.label[:14]:<14} waiting: {ad.problem or 'not found among your ads'}")
            continue
        best = f"{ad.best.nickname} {ad.best.price}" if ad.best else "-"
        rank = "-" if ad.standing is None else str(ad.standing)
        if ad.rank is not None:
            rank += f" #{ad.rank}"
        lines.append(f"{ad.label[:14]:<14} {own.side.value:<4} {own.price!s:>10} {rank:>8}  {best}")
        band = bot.engine.bands.band((own.asset, own.fiat, own.side.value), own.tick,
                                     bot.clock.time())
        if band is not None:
            lines.append(f"  exchange band: {band.low or '?'} to {band.high or '?'} ({band.source})")
        if ad.stale_reads:
            lines.append(f"  lagging reads of its own price not believed: {ad.stale_reads}")
        if ad.hidden:
            lines.append(f"  hidden by the exchange: {ad.hidden}")
        if ad.hidden_by_bot:
            lines.append(f"  hidden by the bot (visible = 0): {ad.hidden_by_bot}")
        if ad.closed:
            lines.append(f"  closed: {ad.closed}")
        if ad.last is not None:
            times = f" (x{ad.last.repeats})" if ad.last.repeats > 1 else ""
            lines.append(f"  {ad.last.result}{times}: {ad.last.reason}")
        if ad.reference is not None:
            lines.append(f"  reference {ad.reference.price} ({ad.reference.source})")
        used = budget(ad.loaded.config.guards, ad.updates, bot.clock.time())
        lines.append(f"  budget: {budget_text(used)}")
    return lines


def _capabilities(bot: Bot, width: int) -> list[str]:
    """The capabilities, wrapped to the width, then each endpoint that is not available."""
    words = [f"{name} {MARK[s.state]}" + (f" ({s.source})" if s.state is CapState.DEGRADED else "")
             for name, s in bot.registry.capabilities().items()]
    lines: list[str] = []
    current = "capabilities:"
    for word in words:
        if len(current) + 2 + len(word) > width:
            lines.append(current)
            current = " "
        current += "  " + word
    lines.append(current)
    for h in bot.registry.health.values():
        if h.state.value in ("unregistered", "refused", "failing", "bogus"):
            code = "" if h.code is None else f" {h.code}"
            lines.append(f"  {h.name}: {h.state}{code} {h.message}".rstrip())
    return lines


def _orders(bot: Bot) -> list[str]:
    """The last few orders: number tail, status, whether the greeting went out."""
    desk = getattr(bot, "desk", None)
    if desk is None:
        return []
    rows = [f"  ...{r.order_number[-6:]} {STATUS_NAME.get(r.status, str(r.status)):<20} "
            f"greeting {r.greeting}" for r in desk.view]
    chat = "up" if desk.chat.ready.is_set() else desk.chat.mode
    return ["", f"orders (chat {chat}):", *(rows or ["  none yet"])]


def _alerts(alerts: Alerts | None, tz: tzinfo = UTC) -> list[str]:
    """The last warnings and alerts, kept on screen across redraws."""
    if alerts is None:
        return []
    if not alerts.items:
        return ["", "last alerts: none"]
    return ["", "last alerts:", *(f"  {_clock(a.at, tz)} {a.level.lower():<7} {a.text}"
                                  for a in alerts.items)]


def _clock(at: float, tz: tzinfo = UTC) -> str:
    return datetime.fromtimestamp(at, tz).strftime("%H:%M:%S")
