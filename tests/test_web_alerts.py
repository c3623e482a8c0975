"""The status page's side of the console: /api/status lists the console's overrides and the
open alerts; POST /api/alerts/{id}/ack acknowledges one, only behind the bearer token."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from simulator.app import Simulator
from state.alerts import AlertStore
from state.overrides import Override, OverrideStore
from tests.support import bot_on_sim, write_config

TOKEN = "web-token-for-the-ack-test-0123456789"


async def _post(url: str, token: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.post(url, headers=headers) as r:
        return r.status, await r.json()


async def _status(url: str, token: str | None = None) -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url + "/api/status", headers=headers) as r:
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


async def test_the_page_acknowledges_an_alert_with_the_token(fast_sim: Simulator,
                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        assert r.web is not None
        alerts = AlertStore(r.store)
        row = await alerts.raise_("order:1234567890123456789:appeal", "appeal", "Appeal!", 1.0)
        selector = r.bot.ads[0].loaded.config.selector
        await OverrideStore(r.store).put(Override(selector, "floor", "81", "alice", 2.0))
        doc = await _status(r.web.url, TOKEN)
        assert [a["id"] for a in doc["alerts"]] == [row.id]
        assert doc["overrides"] == [{"ad": r.bot.ads[0].label, "key": "floor", "value": "81",
                                     "set_by": "alice", "set_at": 2.0}]
        url = f"{r.web.url}/api/alerts/{row.id}/ack"
        assert (await _post(url))[0] == 401  # no token, no acknowledgement
        status, body = await _post(url, TOKEN)
        assert status == 200 and body == {"acknowledged": [row.id]}
        assert (await _status(r.web.url, TOKEN))["alerts"] == []
        acked = await alerts.by_id(row.id)
        assert acked is not None and acked.acked_by == "web"
        assert (await _post(f"{r.web.url}/api/alerts/999/ack", TOKEN))[0] == 404


async def test_without_a_web_token_the_page_cannot_acknowledge(fast_sim: Simulator,
                                                               tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        row = await AlertStore(r.store).raise_("order:1:appeal", "appeal", "Appeal!", 1.0)
        status, body = await _post(f"{r.web.url}/api/alerts/{row.id}/ack")
        assert status == 403 and "P2PBOT_WEB_TOKEN" in body["error"]
        assert [a.id for a in await AlertStore(r.store).open()] == [row.id]
