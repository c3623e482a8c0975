"""The health, readiness, metrics and status routes against a bot on the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from simulator.app import Simulator
from simulator.scenario import generate_credential
from tests.ops import Running, bot_on_sim, capability_state, decided, write_config

TOKEN = "web-token-" + generate_credential()[:20]



async def _get(url: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, await r.text(), dict(r.headers)


async def _json(url: str, token: str | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, await r.json()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_health_ready_metrics_and_status(fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        await asyncio.wait_for(decided(r.bot, lambda ad, row: row.result == "applied").wait(), 10)
        assert r.web is not None
        base = r.web.url

        status, health = await _json(base + "/healthz")
        assert status == 200 and health["status"] == "ok" and "loop_lag_seconds" in health

        status, ready = await _json(base + "/readyz")
        assert status == 200 and ready["ready"] is True and ready["down"] == []

        status, text, headers = await _get(base + "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        m = _samples(text)
        assert m[("p2pbot_requests_total", (("endpoint", "search"), ("outcome", "ok")))] >= 1
        assert m[("p2pbot_endpoint_state", (("endpoint", "search"), ("state", "available")))] == 1
        assert m[("p2pbot_capability_state", (("capability", "market"), ("state", "enabled")))] == 1
        assert m[("p2pbot_price_updates_applied_total", (("ad", "sell-usdt"),))] >= 1
        labels = (("ad", "sell-usdt"), ("asset", "USDT"), ("fiat", "RUB"), ("side", "SELL"))
        own = r.bot.ads[0].own
        assert own is not None and m[("p2pbot_ad_price", labels)] > 0
        assert ("p2pbot_ad_rank", (("ad", "sell-usdt"),)) in m
        assert ("p2pbot_ad_reference_spread", (("ad", "sell-usdt"),)) in m
        assert ("p2pbot_event_loop_lag_last_seconds", ()) in m
        assert m[("p2pbot_rate_limit_weight_budget", ())] == r.bot.governor.budget
        assert ("p2pbot_orders", (("status", "trading"),)) in m

        status, doc = await _json(base + "/api/status")
        assert status == 200 and doc["ready"] is True
        ad = doc["ads"][0]
        assert ad["label"] == "sell-usdt" and ad["price"] == format(r.bot.ads[0].own.price, "f")
        assert ad["history"] and ad["rank"] is not None and ad["best"]["nickname"]
        names = {e["name"] for e in doc["endpoints"]}
        assert {"search", "update_ad", "my_ads"} <= names
        assert doc["decisions"] and doc["decisions"][0]["reason"]
        assert {c["name"] for c in doc["capabilities"]} >= {"market", "repricing"}


async def test_readyz_names_the_essential_capability_that_is_down(fast_sim: Simulator,
                                                                   tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        await _seen_working(r)  # a capability not checked yet would be named too
        fast_sim.set_registration("search", "unregistered")
        await capability_state(r.bot, "market", "disabled")
        status, ready = await _json(r.web.url + "/readyz")
        assert status == 503 and ready["ready"] is False
        assert [d["capability"] for d in ready["down"]] == ["market"]
        assert ready["down"][0]["cause"]["code"] == -2008
        status, doc = await _json(r.web.url + "/api/status")
        search = next(e for e in doc["endpoints"] if e["name"] == "search")
        assert search["state"] == "unregistered" and search["timeline"][-1]["new"] == "unregistered"
        _, text, _ = await _get(r.web.url + "/metrics")
        m = _samples(text)
        assert m[("p2pbot_endpoint_state", (("endpoint", "search"), ("state", "unregistered")))] == 1
        assert m[("p2pbot_requests_total", (("endpoint", "search"), ("outcome", "-2008")))] >= 1


async def _seen_working(r: Running) -> None:
    """Wait until both essential capabilities have answered (the first ad update applied)."""
    for name in r.bot.cfg.capabilities.essential:
        await capability_state(r.bot, name, "enabled")


async def _token_checks(r: Running) -> None:
    assert r.web is not None
    base = r.web.url
    assert (await _get(base + "/healthz"))[0] == 200  # liveness never needs the token
    for path in ("/readyz", "/metrics", "/api/status", "/"):
        status, _, headers = await _get(base + path)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
        assert (await _get(base + path, token="wrong"))[0] == 401, path
        assert (await _get(base + path, token=TOKEN))[0] == 200, path
    assert (await _get(f"{base}/?token={TOKEN}"))[0] == 200  # the page, opened from a phone
    assert (await _get(f"{base}/api/status?token={TOKEN}"))[0] == 401  # the API wants the header


async def test_the_token_when_set_is_required_everywhere_but_healthz(fast_sim: Simulator,
                                                                     tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        await _seen_working(r)  # ready (200) once the essentials have answered
        await _token_checks(r)


async def test_the_page_is_self_contained(fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        status, html, headers = await _get(r.web.url + "/")
        assert status == 200 and "<script nonce=" in html and "/*{{" not in html
        outside = html.replace('"http://www.w3.org/2000/svg"', "")  # a namespace, not a fetch
        assert "http://" not in outside and "https://" not in outside and "//" + "cdn" not in outside
        assert "default-src 'none'" in headers["Content-Security-Policy"]
