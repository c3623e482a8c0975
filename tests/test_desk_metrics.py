"""The gauges the alert rules read (bot/ops/alert_gauges.py), on a live /metrics of a bot on the
simulator: readiness, ban, chat socket, the oldest paid order, store size, target rank."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.events import OrderChanged
from simulator.app import Simulator
from tests.e2e.support import sim_post
from tests.support import bot_on_sim, capability_state, write_config

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    """Every sample of /metrics by (name, sorted labels)."""
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        text = await r.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def test_alert_gauges_on_a_live_scrape(fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=2)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        for name in r.bot.cfg.capabilities.essential:
            await capability_state(r.bot, name, "enabled")
        paid = asyncio.Event()
        publish = r.bot.bus.publish

        def heard(event: object) -> None:  # the bus runs its subscribers from the start only
            publish(event)
            if isinstance(event, OrderChanged) and event.new == 2:
                paid.set()

        r.bot.bus.publish = heard  # type: ignore[method-assign]
        m = await scrape(r.web.url)
        assert m[("p2pbot_ready", ())] == 1
        assert m[("p2pbot_banned", ())] == 0 and m[("p2pbot_paused", ())] == 0
        assert m[("p2pbot_store_bytes", ())] > 0
        assert m[("p2pbot_ad_target_rank", (("ad", "sell-usdt"),))] == 1  # undercut's default
        assert m[("p2pbot_ad_best_price", (("ad", "sell-usdt"),))] > 0
        assert ("p2pbot_chat_connected", ()) in m
        assert m[("p2pbot_order_paid_oldest_seconds", ())] == 0

        before = r.bot.clock.time()
        order = await sim_post(fast_sim, "/_sim/world/orders",
                               {"side": "SELL", "asset": "USDT", "fiat": "RUB"})
        number = order["order"]["orderNumber"]
        await sim_post(fast_sim, f"/_sim/world/orders/{number}/status", {"status": 2})
        await asyncio.wait_for(paid.wait(), 20)
        fast_sim.advance(120)  # two simulated minutes waiting for the release
        m = await scrape(r.web.url)
        waited = m[("p2pbot_order_paid_oldest_seconds", ())]
        assert 120 <= waited <= r.bot.clock.time() - before

        fast_sim.set_registration("search", "unregistered")
        await capability_state(r.bot, "market", "disabled")
        m = await scrape(r.web.url)
        assert m[("p2pbot_ready", ())] == 0
