"""The schedule keeper: takes ads out at the end of their hours and brings them back.

Outside its windows (bot/schedule/windows.py) an ad is taken offline (ads/updateStatus 3) or hidden
from search (`visible = 0`, the ad staying online), as its `outside` says, and the pricing
engine holds it (`AdRuntime.closed`). At the next window the keeper brings back exactly the
ads it took out: the exchange's own business-hour offline never comes back by itself, and an
ad the merchant took offline by hand is left alone. What it took out is kept in the store, so
a restart in the night still brings the ads back in the morning.

With `[schedule] business = true` it also closes the merchant's business outside the bot's
windows and opens it inside (the merchant endpoints, a capability like any other): when the
key may not use them (-2008) the ads are still switched one by one and the keeper says so
once. A dry run sends nothing: it says what it would do, and the engine holds all the same.

A reload (SIGHUP, the console) builds a new keeper from the new file (`build(..., before=)`):
new hours, a new zone and the dry-run flag take effect at once, and what the old keeper had
taken out is carried over. An ad whose hours are gone from the file is released: brought
back if the keeper had taken it out, and priced again. The same holds at a start: an ad
without hours that the store says an earlier run took out is brought back (the schedule was
removed while the bot was stopped); a business the keeper had closed is opened again when
`business` is switched off.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from loguru import logger

from bot.binance.errors import BinanceError
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.clock import Clock
from bot.pricing.engine import AdRuntime
from bot.schedule.windows import Schedule, zone
from config.models import AppConfig
from config.schedule import effective
from state.db import StoreUnwritable
from state.meta import Meta

NO_HOURS = Schedule((), frozenset(), UTC)  # an ad released from its hours (never asked)
RECHECK = 60.0  # seconds: a failed switch is tried again, a newly found ad is looked at
PUT_AWAY = "schedule_put_away:"  # meta key prefix: what the keeper took out, per ad number
OFFLINE, HIDE = "offline", "hide"


@dataclass
class Hours:
    """One scheduled ad: its schedule, what happens outside it, and what the keeper did."""

    ad: AdRuntime
    schedule: Schedule
    outside: str
    put_away: str = ""  # OFFLINE, HIDE or both ("hide+offline") while out ("" = it is not)
    failed: str = ""  # the last failure, said once
    restored: bool = False  # what an earlier run took out has been read from the store


def local_time(at: float, tz: tzinfo) -> str:
    """`Mon 2026-11-23 08:00 -03`: an instant on the merchant's clock."""
    return datetime.fromtimestamp(at, tz).strftime("%a %Y-%m-%d %H:%M %Z")


class ScheduleKeeper:
    """Keeps every scheduled ad in or out of the market, as its hours say."""

    def __init__(self, hours: list[Hours], *, api: P2PApi, registry: CapabilityRegistry,
                 clock: Clock, meta: Meta | None, tz: tzinfo, dry_run: bool = False,
                 business: Schedule | None = None, releasing: list[Hours] | None = None,
                 reopen: bool = False) -> None:
        self.hours = hours
        self.releasing = releasing or []  # ads without hours now, that may have to come back
        self.reopen = reopen  # the business this keeper's forerunner closed: open it once
        self.api = api
        self.registry = registry
        self.clock = clock
        self.meta = meta
        self.tz = tz
        self.dry_run = dry_run
        self.business = business  # the bot's hours, when it opens and closes the business
        self.business_open: bool | None = None  # what the keeper last set
        self.business_state = "unknown"  # as the exchange last said: open, closed, break
        self._business_failed = ""

    # --- building ---------------------------------------------------------------------

    @classmethod
    def build(cls, app: AppConfig, ads: list[AdRuntime], *, api: P2PApi,
              registry: CapabilityRegistry, clock: Clock, meta: Meta | None,
              before: ScheduleKeeper | None = None) -> ScheduleKeeper:
        """The keeper for this configuration. `before`: the keeper of the config a reload
        replaces (what it took out is carried over, unless it ran dry); None at a start:
        the store says what an earlier run took out."""
        tz = zone(app.bot.timezone)
        # what a dry run took out or brought back is fiction: out of one, the store says
        carry = before is not None and not (before.dry_run and not app.bot.dry_run)
        old = {id(h.ad): h for h in (before.hours + before.releasing if before else [])}
        hours, releasing = [], []
        for ad in ads:
            table = effective(app.schedule, ad.loaded.config.schedule)
            was = old.get(id(ad))
            if table is not None:
                h = Hours(ad, table.schedule(tz), table.outside)
                hours.append(h)
            elif not carry or (was is not None and (was.put_away or not was.restored)):
                # at a start the store may say an earlier run took it out; at a reload, what
                # the old keeper took out (or had not read yet) comes back
                h = Hours(ad, NO_HOURS, "")
                releasing.append(h)
            else:
                if was is not None:
                    ad.closed = ""
                continue
            if was is not None and carry:
                h.put_away, h.restored = was.put_away, was.restored
        business = app.schedule.schedule(tz) if app.schedule and app.schedule.business else None
        reopen = business is None and before is not None and (
            before.business_open is False or before.reopen)
        keeper = cls(hours, api=api, registry=registry, clock=clock, meta=meta, tz=tz,
                     dry_run=app.bot.dry_run, business=business, releasing=releasing,
                     reopen=reopen)
        if carry and before is not None and business is not None:  # no second open or close
            keeper.business_open, keeper.business_state = before.business_open, before.business_state
        return keeper

    async def _restore(self, h: Hours, adv_no: str) -> None:
        """What an earlier run took out, so this run brings it back (read once per ad)."""
        h.restored = True
        if self.meta is not None and not self.dry_run and not h.put_away:
            h.put_away = await self.meta.get(PUT_AWAY + adv_no) or ""

    # --- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the hours until cancelled: at every change of a schedule, and every RECHECK."""
        while True:
            await self.tick()
            await self.clock.sleep(self.sleep_for())

    def sleep_for(self) -> float:
        """Seconds to the next change of any schedule, at most RECHECK."""
        now = self.clock.time()
        changes = [s.next_change(now) for s in self._schedules()]
        soonest = min((c for c in changes if c is not None), default=now + RECHECK)
        return max(0.0, min(soonest - now, RECHECK))

    @property
    def scheduled(self) -> bool:
        """Whether any ad has hours, or the business has."""
        return bool(self.hours) or self.business is not None

    def _schedules(self) -> list[Schedule]:
        return [h.schedule for h in self.hours] + ([self.business] if self.business else [])

    async def tick(self) -> None:
        """Bring every ad (and the business) to what its hours say now."""
        now = self.clock.time()
        opening = self.business is not None and self.business.is_open(now)
        if opening or self.reopen:  # first: the ads go back online into an open business
            await self._business(True)
            self.reopen = self.reopen and self.business_open is not True
        for h in self.hours:
            await self._keep(h, now)
        if self.releasing:
            await self._read_released()
        for h in list(self.releasing):
            await self._release(h)
        if self.business is not None and not opening:
            await self._business(False)

    async def _read_released(self) -> None:
        """What earlier runs took out of the ads without hours, in one read of the store for
        all of them (at a start every ad without hours is one: a read each would delay the
        first decision of a large desk)."""
        unread = [h for h in self.releasing if not h.restored and h.ad.own is not None]
        if not unread:
            return
        stored = {} if self.meta is None or self.dry_run else await self.meta.prefixed(PUT_AWAY)
        for h in unread:
            assert h.ad.own is not None
            h.put_away = h.put_away or stored.get(PUT_AWAY + h.ad.own.adv_no, "")
            h.restored = True

    async def _release(self, h: Hours) -> None:
        """An ad without hours: brought back if the keeper had taken it out (the store says so
        after a restart), then forgotten."""
        ad = h.ad
        if ad.own is None or not h.restored:
            return  # not found among your ads yet
        ad.closed = ""
        if h.put_away:
            await self._switch(h, back=True, why="its hours were removed from the config")
        if not h.put_away:
            self.releasing.remove(h)

    async def _keep(self, h: Hours, now: float) -> None:
        ad = h.ad
        if ad.own is None:
            return  # not found among your ads yet
        if not h.restored:
            await self._restore(h, ad.own.adv_no)
        if h.schedule.is_open(now):
            ad.closed = ""
            if h.put_away:
                await self._switch(h, back=True)
            return
        change = h.schedule.next_change(now)
        back = f"; back {local_time(change, self.tz)}" if change is not None else ""
        ad.closed = f"outside its hours ({h.schedule.describe()}){back}"
        if not h.put_away and (h.outside == HIDE or ad.online):
            await self._switch(h, back=False)

    async def _switch(self, h: Hours, *, back: bool, why: str = "its hours begin") -> None:
        """Take the ad out (offline or hidden) or bring it back; a failure is said once and
        tried again at the next tick."""
        ad, mode = h.ad, (h.put_away or h.outside)
        assert ad.own is not None
        verb = _verb(mode, back)
        if self.dry_run:  # in memory only: the next run starts from what the exchange shows
            logger.warning("dry run, not sent: ad {} would be {}: {}", ad.label, verb,
                           why if back else ad.closed)
            h.put_away = "" if back else mode
            return
        try:
            await self._send(ad, mode, back)
        except (BinanceError, CapabilityUnavailable, RefusedSwitch) as exc:
            said = f"ad {ad.label} could not be {verb} ({exc}); tried again in {RECHECK:.0f} s"
            logger.log("DEBUG" if said == h.failed else "WARNING", "{}", said)
            h.failed = said
            return
        h.failed = ""
        if OFFLINE in _modes(mode):
            ad.online = back
        h.put_away = "" if back else mode
        await self._remember(ad.own.adv_no, h.put_away)
        logger.warning("ad {} {}: {}", ad.label, verb, why if back else ad.closed)

    async def _send(self, ad: AdRuntime, mode: str, back: bool) -> None:
        """Out: the one way `mode` says. Back: online first (an offline ad cannot be shown),
        then shown."""
        assert ad.own is not None
        if OFFLINE in _modes(mode):
            answer = await self.api.update_ad_status(ad.own.adv_no, 1 if back else 3)
            mine = [f for f in answer.fail_list if f.adv_no in (None, ad.own.adv_no)]
            if mine:
                raise RefusedSwitch(f"{mine[0].error_code}: {mine[0].error_msg or 'refused'}")
        if HIDE in _modes(mode):
            await self.api.update_ad_visible(ad.own.adv_no, visible=back)

    async def _remember(self, adv_no: str, put_away: str) -> None:
        if self.meta is not None:
            with contextlib.suppress(StoreUnwritable):  # kept in memory; a restart would not know
                await self.meta.set(PUT_AWAY + adv_no, put_away)

    async def _business(self, open_: bool) -> None:
        """Open or close the merchant's business once per change; -2008 aware (the ads are
        switched one by one meanwhile)."""
        if self.business_open is open_:
            return
        word = "open" if open_ else "close"
        if self.dry_run:
            logger.warning("dry run, not sent: the merchant's business would {}", word)
            self.business_open = open_
            return
        try:
            await self.api.set_business(open_)
            self.business_state = (await self.api.merchant_detail()).state
        except (BinanceError, CapabilityUnavailable) as exc:
            said = (f"could not {word} the merchant's business ({exc}); the ads are switched "
                    "one by one, and the business is tried again at the next check")
            if said != self._business_failed:
                logger.warning("{}", said)
            self._business_failed = said
            return
        self._business_failed = ""
        self.business_open = open_
        logger.warning("the merchant's business is {} (schedule)", "open" if open_ else "closed")
        if not open_:
            await self._closed_with_the_business()

    async def _closed_with_the_business(self) -> None:
        """Closing the business took every online ad offline: the keeper brings back the
        scheduled ones at their next window (a hidden ad, or one it could not switch itself)."""
        for h in self.hours:
            if h.ad.own is not None and h.ad.online:
                h.put_away = "+".join(sorted({*_modes(h.put_away), OFFLINE}))
                h.ad.online = False
                await self._remember(h.ad.own.adv_no, h.put_away)

    # --- showing ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The schedules as the status page shows them."""
        now = self.clock.time()
        ads = []
        for h in self.hours:
            change = h.schedule.next_change(now)
            ads.append({"ad": h.ad.label, "open": h.schedule.is_open(now),
                        "hours": h.schedule.describe(), "outside": h.outside,
                        "put_away": h.put_away or None, "next_change": change,
                        "next_change_local": local_time(change, self.tz) if change else None,
                        "failed": h.failed or None})
        return {"business": None if self.business is None else
                {"open": self.business.is_open(now), "state": self.business_state,
                 "failed": self._business_failed or None},
                "ads": ads}


def _modes(put_away: str) -> set[str]:
    """The ways an ad was taken out: {"offline"}, {"hide"}, both, or none."""
    return {m for m in put_away.split("+") if m}


def _verb(mode: str, back: bool) -> str:
    """What switching the ad does, in words."""
    ways = _modes(mode)
    if back:
        return " and ".join(w for m, w in ((OFFLINE, "back online"), (HIDE, "shown again"))
                            if m in ways)
    return "taken offline" if OFFLINE in ways else "hidden from search"


class RefusedSwitch(Exception):
    """updateStatus answered with the ad in its failList."""
