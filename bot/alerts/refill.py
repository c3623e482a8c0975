"""Keeping an ad's available amount at a target, from the funding wallet (a write: off unless
`[inventory] refill = true`, and only for the ads named in `[inventory.targets]`).

The exchange counts what an ad has traded as `initAmount - surplusAmount`, so to make
`target` available the bot sends `initAmount = initAmount + (target - surplusAmount)`
(docs/exchange.md §11.8), taking no more than the funding wallet's free balance. Guards:
only below `refill_below` x the target (not at every sale), at most one attempt per ad every
REFILL_EVERY seconds, nothing sent in a dry run, and a refusal (-2008 included: the
capability registry then blocks the endpoint) is said once and not looped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from bot.binance.errors import BinanceError
from bot.binance.models import Ad
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityUnavailable
from bot.clock import Clock
from bot.events import OwnAdsUpdate
from bot.notify import Notifications
from config.models import AppConfig

if TYPE_CHECKING:
    from bot.pricing.engine import AdRuntime

REFILL_EVERY = 300.0  # seconds between two refill attempts of one ad


@dataclass(frozen=True, slots=True)
class Refill:
    """What to send: the new initAmount, and how much it adds to the available amount."""

    init_amount: Decimal
    added: Decimal


def refill_plan(init: Decimal, surplus: Decimal, target: Decimal, free: Decimal) -> Refill | None:
    """The initAmount that brings the available amount (`surplus`) to `target`, taking at most
    `free` from the funding wallet; None when nothing can or needs to be added (pure)."""
    add = min(target - surplus, free)
    if add <= 0:
        return None
    return Refill(init + add, add)


class Refiller:
    """Refills the targeted ads at each read of the merchant's ads."""

    def __init__(self, api: P2PApi, notes: Notifications | None, clock: Clock,
                 ads: Callable[[], Sequence[AdRuntime]], config: Callable[[], AppConfig],
                 dry_run: Callable[[], bool]) -> None:
        self.api, self.notes, self.clock = api, notes, clock
        self.ads, self.config, self.dry_run = ads, config, dry_run
        self.tried: dict[str, float] = {}  # adv_no -> the last attempt
        self.said: dict[str, str] = {}  # adv_no -> the last problem said (once each)

    async def on_own_ads(self, ev: OwnAdsUpdate) -> None:
        """Refill each targeted ad that fell below its threshold."""
        inv = self.config().inventory
        if not inv.refill or not inv.targets:
            return
        by_no = {a.adv_no: a for a in ev.ads}
        for ad in self.ads():
            c = ad.loaded.config
            target = inv.targets.get(c.name or "") or inv.targets.get(c.adv_no or "")
            fresh = by_no.get(ad.own.adv_no) if ad.own is not None else None
            if target is None or fresh is None or fresh.adv_status not in (None, 1):
                continue
            surplus = fresh.surplus_amount
            if surplus is None or fresh.init_amount is None or surplus >= target * inv.refill_below:
                continue
            await self.refill(ad, fresh, target)

    async def refill(self, ad: AdRuntime, fresh: Ad, target: Decimal) -> Refill | None:
        """One attempt (paced by REFILL_EVERY); the refill sent, or None."""
        now = self.clock.time()
        if now - self.tried.get(fresh.adv_no, -REFILL_EVERY) < REFILL_EVERY:
            return None
        self.tried[fresh.adv_no] = now
        asset = fresh.asset or (ad.own.asset if ad.own is not None else "USDT")
        assert fresh.surplus_amount is not None and fresh.init_amount is not None
        try:
            free = await self.api.funding_free(asset)
        except (BinanceError, CapabilityUnavailable) as exc:
            await self._say(ad, fresh.adv_no, f"cannot read the funding wallet ({exc}): not refilled")
            return None
        plan = refill_plan(fresh.init_amount, fresh.surplus_amount, target, free)
        if plan is None:
            await self._say(ad, fresh.adv_no, f"the funding wallet has no {asset} to refill it "
                                              f"({fresh.surplus_amount} left, target {target})")
            return None
        what = (f"ad {ad.label}: available {fresh.surplus_amount} -> "
                f"{fresh.surplus_amount + plan.added} {asset} (initAmount {fresh.init_amount} -> "
                f"{plan.init_amount}; target {target}, funding wallet {free})")
        if self.dry_run():
            logger.info("dry run: would refill {}; nothing sent", what)
            return None
        try:
            await self.api.update_ad_amount(fresh.adv_no, plan.init_amount)
        except (BinanceError, CapabilityUnavailable) as exc:
            await self._say(ad, fresh.adv_no, f"refill refused ({exc}); tried again in "
                                              f"{REFILL_EVERY / 60:.0f} min")
            return None
        self.said.pop(fresh.adv_no, None)
        logger.warning("refilled {}", what)
        return plan

    async def _say(self, ad: AdRuntime, adv_no: str, problem: str) -> None:
        if self.said.get(adv_no) == problem:
            return
        self.said[adv_no] = problem
        text = f"Inventory refill: ad {ad.label}: {problem}"
        logger.warning("{}", text)
        if self.notes is not None:
            await self.notes.notify("inventory_refill", f"refill:{adv_no}", text)
