"""The console's commands run against the running bot; every one is logged with its sender.

Changes to the config (pause, resume, set, clear) are stored as overrides (state.overrides)
and the bot reloads its config with them (Bot.reload lays them over the file), so they hold
across restarts until /clear. /set shows the old and new value and waits for /confirm.
/hide and /show write to the exchange at once, or, in a dry run, say what they would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.alerts.acks import UnknownAlert, acknowledge
from bot.alerts.acks import describe as describe_alert
from bot.binance.errors import BinanceError
from bot.capabilities.registry import CapabilityUnavailable
from bot.capabilities.table import CAPABILITIES
from bot.console.commands import Command, Usage, help_text, parse
from bot.console.overrides import OverrideRefused, current, describe, override_ad
from bot.orders.track import STATUS_NAME
from state.alerts import AlertStore
from state.overrides import BOT_SCOPE, Override, OverrideStore

if TYPE_CHECKING:
    from bot.app import Bot
    from bot.pricing.engine import AdRuntime

CONFIRM_WITHIN = 300.0  # seconds a /set waits for its /confirm


@dataclass(frozen=True, slots=True)
class Pending:
    """A /set shown and waiting for /confirm."""

    selector: str
    label: str
    field: str
    value: Decimal
    old: Any
    at: float


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%m-%d %H:%M:%S")


class ConsoleHandler:
    """Turns one message from an allowed chat into an answer, acting on the bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.overrides = OverrideStore(bot.store)
        self.alerts = AlertStore(bot.store)
        self.pending: dict[int, Pending] = {}

    async def handle(self, chat_id: int, who: str, text: str) -> str:
        """The answer to one message (a malformed command gets its usage)."""
        logger.info("console: {} (chat {}) sent {!r}", who, chat_id, text[:200])
        try:
            cmd = parse(text)
            answer = await getattr(self, f"_{cmd.name}")(cmd, chat_id, who)
        except Usage as exc:
            answer = str(exc)
        except OverrideRefused as exc:
            answer = f"refused: {exc}"
        logger.info("console: answer to {}: {}", who, answer.splitlines()[0][:200] if answer else "")
        return str(answer)

    # --- finding an ad -----------------------------------------------------------------

    def ad(self, ref: str | None) -> AdRuntime:
        """The configured ad `ref` names: its name, its adv_no, or #N; else Usage."""
        ads = self.bot.ads
        for i, ad in enumerate(ads, 1):
            c = ad.loaded.config
            own_no = ad.own.adv_no if ad.own is not None else None
            if ref in (c.name, c.adv_no, own_no, f"#{i}", c.selector):
                return ad
        names = ", ".join(f"#{i} {ad.label}" for i, ad in enumerate(ads, 1)) or "none"
        raise Usage(f"no ad '{ref}'. Your ads: {names}")

    async def _apply(self) -> None:
        """Reload the config with the stored overrides (the file as last read, and them)."""
        await self.bot.reload(self.bot.toml)

    # --- commands ----------------------------------------------------------------------

    async def _help(self, cmd: Command, chat_id: int, who: str) -> str:
        return help_text()

    async def _status(self, cmd: Command, chat_id: int, who: str) -> str:
        bot = self.bot
        head = []
        if bot.engine.dry_run:
            head.append("DRY RUN: nothing is sent to the exchange")
        if bot.engine.kill_switch:
            head.append("PAUSED: the kill switch is on (/resume all)")
        lines = [*head, "Ads:"]
        for i, ad in enumerate(bot.ads, 1):
            lines.append(f"#{i} {self._ad_line(ad)}")
        caps = bot.registry.capabilities()
        off = [f"{n} {caps[n].state.value}" for n in CAPABILITIES if n in caps
               and caps[n].state.value != "enabled"]
        lines.append("Capabilities: " + ("all enabled" if not off else ", ".join(off)))
        lines.append(await self._orders_line())
        alerts = await self.alerts.open()
        if alerts:
            lines.append(f"Alerts open: {len(alerts)} (/alerts)")
        return "\n".join(lines)

    def _ad_line(self, ad: AdRuntime) -> str:
        g = ad.loaded.config.guards
        bounds = ", ".join(f"{n} {v}" for n, v in (("floor", g.floor), ("ceiling", g.ceiling))
                           if v is not None)
        state = "paused" if not ad.loaded.config.enabled else \
            "offline" if not ad.online else "live"
        if ad.hidden_by_bot:
            state += ", hidden by the bot"
        elif ad.hidden:
            state += f", hidden by the exchange ({ad.hidden})"
        if ad.own is None:
            return f"{ad.label}: not found among your ads yet ({bounds})"
        own = ad.own
        rank = f"rank {ad.rank}" if ad.rank is not None else "not in search"
        last = f"; last: {ad.last.result} {ad.last.reason[:80]}" if ad.last is not None else ""
        return (f"{ad.label} {own.side} {own.asset}/{own.fiat}: {own.price} ({rank}), {state}; "
                f"{bounds}{last}")

    async def _orders_line(self) -> str:
        desk = getattr(self.bot, "desk", None)
        if desk is None:
            return "Orders: not followed"
        opened = await desk.orders.open_orders(limit=1000)
        if not opened:
            return "Orders: none open"
        counts: dict[str, int] = {}
        for o in opened:
            name = STATUS_NAME.get(o.status, str(o.status))
            counts[name] = counts.get(name, 0) + 1
        return "Orders open: " + ", ".join(f"{n} {name}" for name, n in counts.items())

    async def _pause(self, cmd: Command, chat_id: int, who: str) -> str:
        now = self.bot.clock.time()
        if cmd.target == "all":
            await self.overrides.put(Override(BOT_SCOPE, "kill_switch", "true", who, now))
            await self._apply()
            return "paused: the kill switch is on, no ad is repriced until /resume all"
        ad = self.ad(cmd.target)
        await self.overrides.put(Override(ad.loaded.config.selector, "enabled", "false", who, now))
        await self._apply()
        return f"paused ad {ad.label}: its price holds until /resume {ad.label}"

    async def _resume(self, cmd: Command, chat_id: int, who: str) -> str:
        if cmd.target == "all":
            await self.overrides.delete(BOT_SCOPE, "kill_switch")
            await self._apply()
            if self.bot.engine.kill_switch:
                return "the console's pause is lifted, but the file says kill_switch = true"
            return "resumed: the kill switch is off"
        ad = self.ad(cmd.target)
        await self.overrides.delete(ad.loaded.config.selector, "enabled")
        await self._apply()
        if not ad.loaded.config.enabled:
            return f"the console's pause is lifted, but the file says enabled = false for {ad.label}"
        return f"resumed ad {ad.label}"

    async def _hide(self, cmd: Command, chat_id: int, who: str) -> str:
        return await self._visible(cmd, visible=False)

    async def _show(self, cmd: Command, chat_id: int, who: str) -> str:
        return await self._visible(cmd, visible=True)

    async def _visible(self, cmd: Command, *, visible: bool) -> str:
        ad = self.ad(cmd.target)
        verb = "show" if visible else "hide"
        if ad.own is None:
            return f"cannot {verb} ad {ad.label}: not found among your ads yet"
        if self.bot.engine.dry_run:
            logger.info("dry run: would {} ad {} (console)", verb, ad.label)
            return f"dry run: would {verb} ad {ad.label}; nothing sent"
        try:
            await self.bot.api.update_ad_visible(ad.own.adv_no, visible=visible)
        except (BinanceError, CapabilityUnavailable) as exc:
            return f"could not {verb} ad {ad.label}: {exc}"
        ad.hidden_by_bot = "" if visible else "hidden from the console"
        return f"ad {ad.label} is {'shown in' if visible else 'hidden from'} search"

    async def _set(self, cmd: Command, chat_id: int, who: str) -> str:
        ad = self.ad(cmd.target)
        assert cmd.field is not None and cmd.value is not None
        override_ad(ad.loaded, {cmd.field: str(cmd.value)})  # refused here with the reason
        old = current(ad.loaded, cmd.field)
        self.pending[chat_id] = Pending(ad.loaded.config.selector, ad.label, cmd.field, cmd.value,
                                        old, self.bot.clock.time())
        return (f"ad {ad.label}: {cmd.field} {old if old is not None else 'unset'} -> {cmd.value}. "
                f"Send /confirm within {CONFIRM_WITHIN / 60:.0f} min to apply it.")

    async def _confirm(self, cmd: Command, chat_id: int, who: str) -> str:
        pending = self.pending.pop(chat_id, None)
        now = self.bot.clock.time()
        if pending is None or now - pending.at > CONFIRM_WITHIN:
            return "nothing to confirm (send /set first)"
        ad = self.ad(pending.selector)
        override_ad(ad.loaded, {pending.field: str(pending.value)})  # still valid after a reload?
        await self.overrides.put(Override(pending.selector, pending.field, str(pending.value),
                                          who, now))
        await self._apply()
        return (f"done: ad {ad.label} {pending.field} is {current(ad.loaded, pending.field)} "
                f"(was {pending.old}); kept across restarts until /clear {ad.label}")

    async def _ack(self, cmd: Command, chat_id: int, who: str) -> str:
        try:
            rows = await acknowledge(self.alerts, cmd.target or "", f"telegram:{who}",
                                     self.bot.clock.time())
        except UnknownAlert as exc:
            return str(exc)
        return "\n".join(f"acknowledged: {describe_alert(r)}" for r in rows)

    async def _alerts(self, cmd: Command, chat_id: int, who: str) -> str:
        rows = await self.alerts.open()
        if not rows:
            return "no open alert"
        return "\n".join(describe_alert(r) for r in rows)

    async def _history(self, cmd: Command, chat_id: int, who: str) -> str:
        ad = self.ad(cmd.target)
        adv_no = ad.own.adv_no if ad.own is not None else ad.loaded.config.adv_no
        if adv_no is None:
            return f"ad {ad.label}: no decision yet (not found among your ads)"
        rows = await self.bot.decisions.recent(adv_no=adv_no, limit=cmd.count)
        if not rows:
            return f"ad {ad.label}: no decision yet"
        lines = [f"ad {ad.label}, last {len(rows)} decision(s), newest first (UTC):"]
        for r in rows:
            to = f" -> {r.target}" if r.target is not None else ""
            lines.append(f"{_stamp(r.at)} {r.result} {r.price_before}{to}: {r.reason[:120]}")
        return "\n".join(lines)

    async def _overrides(self, cmd: Command, chat_id: int, who: str) -> str:
        rows = await self.overrides.all()
        if not rows:
            return "no console changes: the bot runs the file as it is"
        return "Console changes on top of the file:\n" + "\n".join(describe(rows, self.bot.toml))

    async def _clear(self, cmd: Command, chat_id: int, who: str) -> str:
        if cmd.target is None:
            n = await self.overrides.delete()
            await self._apply()
            return f"cleared {n} console change(s): the bot runs the file as it is"
        ad = self.ad(cmd.target)
        n = await self.overrides.delete(ad.loaded.config.selector)
        await self._apply()
        return f"cleared {n} console change(s) of ad {ad.label}"
