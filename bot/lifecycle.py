"""Running for weeks: a new config taken without a restart.

`apply_config` is `Bot.reload`: the ads keep their runtime state (current price,
rank, edit history), only what the file says changes.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from loguru import logger

from bot.pollers import MarketPoller, OwnAdsPoller, ReferencePoller, plan_intervals
from bot.pricing import AdRuntime
from config.loader import LoadedConfig

if TYPE_CHECKING:
    from bot.app import Bot



def _intervals(bot: Bot) -> None:
    b = bot.cfg.bot
    for p in bot.pollers:
        if isinstance(p, MarketPoller):
            p.interval = b.market_interval
        elif isinstance(p, ReferencePoller):
            p.interval = b.reference_interval
            if p.pay_type != b.reference_pay_type:  # a reload: the filter is tried afresh
                p.pay_type, p.unfiltered_until = b.reference_pay_type, 0
        elif isinstance(p, OwnAdsPoller):
            p.interval = b.my_ads_interval
    bot.governor.budget = b.weight_budget
    bot.cadence.band = bot.cfg.band()
    bot.cadence.replan()
    bot.client.max_response_bytes = b.max_response_bytes
    bot.client.max_in_flight = b.max_in_flight
    bot.client.scheduler.max_queued = b.max_queued
    plan_intervals(bot.pollers, b.weight_budget)


def _merge_ads(bot: Bot, loaded: LoadedConfig) -> tuple[list[AdRuntime], list[AdRuntime], list[str]]:
    """(every ad, the new ones, labels of removed ones): an ad is the same when its selector is."""
    current = {ad.loaded.config.selector: ad for ad in bot.ads}
    ads: list[AdRuntime] = []
    added: list[AdRuntime] = []
    for new in loaded.ads:
        runtime = current.pop(new.config.selector, None)
        if runtime is None:
            runtime = AdRuntime(new)
            added.append(runtime)
        else:
            runtime.loaded = new  # strategy, params, filters, guards; state kept
        ads.append(runtime)
    return ads, added, [ad.label for ad in current.values()]


async def apply_config(bot: Bot, loaded: LoadedConfig) -> list[str]:
    """Take a validated config while running; returns what changed, for the log."""
    old = bot.cfg
    ads, added, removed = _merge_ads(bot, loaded)
    bot.loaded, bot.cfg = loaded, loaded.app
    bot.ads = ads
    bot.engine.ads = ads
    bot.engine.dry_run = loaded.app.bot.dry_run
    bot.registry.dry_run = loaded.app.bot.dry_run  # no write probes in a dry run
    bot.engine.kill_switch = loaded.app.bot.kill_switch
    bot.engine.reference_max_jump = loaded.app.bot.reference_max_jump
    bot.engine.reference_interval = loaded.app.bot.reference_interval
    bot.engine.settle_seconds = loaded.app.bot.settle_seconds
    for track in bot.engine.tracks.values():
        track.max_jump = loaded.app.bot.reference_max_jump
    bot.registry.config = loaded.app.capabilities.probe_config()
    bot.retention.days = loaded.app.bot.decisions_retention_days
    for ad in added:  # its market is searched once it is found (Bot._resolve)
        if bot.own_seen:
            bot._resolve(ad, bot.own_seen)
    bot._reference_pollers()
    _intervals(bot)
    changes = [f"{len(ads)} ad(s)"]
    changes += [f"added {ad.label}" for ad in added] + [f"removed {label}" for label in removed]
    if old.bot.dry_run != loaded.app.bot.dry_run:
        changes.append(f"dry_run {loaded.app.bot.dry_run}")
    if old.bot.kill_switch != loaded.app.bot.kill_switch:
        changes.append(f"kill_switch {loaded.app.bot.kill_switch}")
    if old.web != loaded.app.web:
        logger.warning("config reload: [web] changes take effect at the next restart")
    desk_reload = getattr(getattr(bot, "desk", None), "reload", None)
    if callable(desk_reload):
        result = desk_reload(loaded)
        if inspect.isawaitable(result):
            await result
    return changes
