"""The status page's daily trade chart (/api/report), its clock in the merchant's zone and
the ads' hours: the JSON, and the page in headless Chromium when it is installed."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from simulator.app import Simulator
from simulator.scenario import generate_credential
from tests.support import CHROMIUM, bot_on_sim, render_dom, write_config

TOKEN = "page-token-" + generate_credential()[:16]

TZ = ZoneInfo("America/Sao_Paulo")
HOURS = '\n[ads.schedule]\nwindows = ["daily 00:00-23:59"]\n'


async def _orders(store, now: float) -> None:  # type: ignore[no-untyped-def]
    for no, side, total in (("91000000000000000001", "SELL", "9300.00"),
                            ("91000000000000000002", "BUY", "4600.00")):
        await store.execute(
            "INSERT INTO orders (order_number, adv_no, side, asset, fiat, amount, total, price,"
            " status, created_at, updated_at, source) VALUES (?, 'x', ?, 'USDT', 'RUB', '100', ?,"
            " NULL, 4, ?, ?, 'test')", (no, side, total, now - 60, now))


async def _get(url: str, path: str) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(
            url + path, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]


async def test_api_report_and_status_carry_the_days_the_zone_and_the_hours(
        fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", bot='timezone = "America/Sao_Paulo"', tail=HOURS)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        assert r.web is not None
        now = r.bot.clock.time()
        await _orders(r.store, now)
        report = await _get(r.web.url, "/api/report")
        week = await _get(r.web.url, "/api/report?days=7")
        status = await _get(r.web.url, "/api/status")
        async with aiohttp.ClientSession() as s, s.get(
                r.web.url + "/api/report?days=x",
                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            bad = resp.status
    today = datetime.fromtimestamp(now, TZ).date().isoformat()
    assert len(report["days"]) == 14 and len(week["days"]) == 7 and bad == 400
    assert report["to"] == today and report["days"][-1]["day"] == today
    assert report["timezone"]["name"] == "America/Sao_Paulo"
    assert report["timezone"]["offset_seconds"] == -3 * 3600
    last = report["days"][-1]
    assert float(last["sell_fiat"]) >= 9300 and float(last["buy_fiat"]) >= 4600
    assert report["totals"]["completed"] >= 2
    assert status["timezone"] == report["timezone"]
    (hours,) = status["schedule"]["ads"]
    assert hours["ad"] == "sell-usdt" and hours["hours"] == "daily 00:00-23:59"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_the_page_draws_the_trade_chart_and_its_clock_in_the_merchants_zone(
        fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", bot='timezone = "America/Sao_Paulo"', tail=HOURS)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        assert r.web is not None
        await _orders(r.store, r.bot.clock.time())
        html = await render_dom(f"{r.web.url}/#token={TOKEN}", tmp_path / "chromium")
    chart = re.search(r'<svg[^>]*class="trade".*?</svg>', html, re.S)
    assert chart, "the daily chart was drawn"
    assert len(re.findall(r'<rect class="sell"', chart.group(0))) == 14
    assert "9300.00" in chart.group(0)  # a day's tooltip names what was sold
    clock = re.search(r'<span id="clock"[^>]*>([^<]*)</span>', html)
    assert clock and clock.group(1).endswith(" America/Sao_Paulo"), clock
    assert re.search(r"data-field=\"schedule\">open( until [0-9:\- ]+)? · daily 00:00-23:59", html)
