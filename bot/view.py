"""A live view of the bot for a terminal: ads, prices, ranks, decisions, capabilities."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import Bot
from bot.guards import budget
from bot.order_track import STATUS_NAME
from bot.states import CapState
from bot.status import budget_text

MARK = {CapState.ENABLED: "up", CapState.DEGRADED: "degraded", CapState.DISABLED: "DOWN"}


def render(bot: Bot, now: float, title: str = "") -> str:
    """One screen of text."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"p2pbot {title}  {stamp} (simulated UTC)" if title else f"p2pbot  {stamp} UTC", ""]
    lines.append(f"{'ad':<12} {'side':<4} {'price':>10} {'rank':>9}  {'best competitor':<28} last decision")
    for ad in bot.ads:
        own = ad.own
        if own is None:
            lines.append(f"{ad.label:<12} waiting: {ad.problem or 'not found among your ads yet'}")
            continue
        best = f"{ad.best.nickname} {ad.best.price}" if ad.best else "-"
        last = "-" if ad.last is None else f"{ad.last.result}: {ad.last.reason}"
        rank = "-" if ad.standing is None else str(ad.standing)
        if ad.rank is not None:
            rank += f" (#{ad.rank})"
        lines.append(f"{ad.label:<12} {own.side.value:<4} {own.price:>10} {rank:>9}  {best[:28]:<28} {last[:70]}")
        if ad.reference is not None:
            lines.append(f"{'':<12} reference {ad.reference.price} ({ad.reference.source})")
        lines.append(f"{'':<12} budget: {budget_text(budget(ad.loaded.config.guards, ad.updates, now))}")
    lines += ["", "capabilities: " + "  ".join(
        f"{name} {MARK[s.state]}" + (f" ({s.source})" if s.state is CapState.DEGRADED else "")
        for name, s in bot.registry.capabilities().items())]
    down = [h for h in bot.registry.health.values() if h.state.value in
            ("unregistered", "refused", "failing", "bogus")]
    for h in down:
        lines.append(f"  {h.name}: {h.state} {h.code if h.code is not None else ''} {h.message[:60]}")
    lines.append("")
    lines.append("rank: among the competitors that count (filters applied); (#n): position in the "
                 "exchange's search, decoys included")
    lines.append("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(bot.engine.counts.items())))
    lines += _orders(bot)
    return "\n".join(lines)


def _orders(bot: Bot) -> list[str]:
    """The last few orders: number tail, status, whether the greeting went out."""
    desk = getattr(bot, "desk", None)
    if desk is None:
        return []
    rows = [f"  ...{r.order_number[-6:]} {STATUS_NAME.get(r.status, str(r.status)):<20} "
            f"greeting {r.greeting}" for r in desk.view]
    chat = "up" if desk.chat.ready.is_set() else desk.chat.mode
    return ["", f"orders (chat {chat}):", *(rows or ["  none yet"])]
