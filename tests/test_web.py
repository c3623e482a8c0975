"""The health, readiness, metrics and status routes against a bot on the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.app import Bot
from bot.ops.web import host_allowed, listen_web, web_problems
from config.loader import load_config
from config.models import WebConfig
from simulator.app import Simulator
from simulator.clock import ScaledClock
from simulator.scenario import generate_credential
from state.db import Store
from tests.e2e.support import sim_client
from tests.support import (
    Running,
    bot_on_sim,
    capability_state,
    daemon_env,
    decided,
    run_command,
    start_daemon,
    write_config,
)

TOKEN = "web-token-" + generate_credential()[:20]



async def _get(url: str, token: str | None = None, *,
               headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
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
        assert m[("p2pbot_requests_max_in_flight", ())] == 3
        assert ("p2pbot_requests_in_flight", ()) in m
        for cls in ("write", "chat", "orders", "read"):  # the request scheduler, by priority
            assert (("p2pbot_requests_queued", (("priority", cls),))) in m
            assert m[("p2pbot_requests_shed_total", (("priority", cls),))] == 0
            assert ("p2pbot_requests_expired_total", (("priority", cls),)) in m
        assert ("p2pbot_orders", (("status", "trading"),)) in m

        status, doc = await _json(base + "/api/status")
        assert status == 200 and doc["ready"] is True
        ad = doc["ads"][0]
        assert ad["label"] == "sell-usdt" and ad["price"] == format(r.bot.ads[0].own.price, "f")
        assert ad["history"] and ad["rank"] is not None and ad["best"]["nickname"]
        names = {e["name"] for e in doc["endpoints"]}
        assert {"search", "update_ad", "my_ads"} <= names
        assert doc["decisions"] and doc["decisions"][0]["reason"]
        market = doc["markets"]["market USDT/RUB SELL ads"]  # the adaptive cadence: how often, why
        assert 1 <= market["interval"] <= 10 and market["why"]
        assert any(name == "p2pbot_market_interval_seconds" and ("market", "market USDT/RUB SELL ads")
                   in labels for name, labels in m)
        assert {c["name"] for c in doc["capabilities"]} >= {"market", "repricing"}


@pytest.mark.slow
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


async def test_readyz_is_503_during_a_429_pause_with_every_capability_paused(
        fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        await _seen_working(r)
        status, _ = await _json(r.web.url + "/readyz")
        assert status == 200
        r.client.paused_until = r.bot.clock.time() + 600  # a 429's Retry-After runs
        status, ready = await _json(r.web.url + "/readyz")
        assert status == 503 and ready["paused_until"] == r.client.paused_until
        assert {d["capability"] for d in ready["down"]} == set(r.bot.cfg.capabilities.essential)
        _, doc = await _json(r.web.url + "/api/status")
        assert doc["ready"] is False and doc["paused_until"] == r.client.paused_until
        assert {c["state"] for c in doc["capabilities"]} == {"paused"}
        assert all(c["says"].startswith("paused by the exchange until ") for c in doc["capabilities"])
        r.client.paused_until = 0.0
        status, _ = await _json(r.web.url + "/readyz")
        assert status == 200


async def _seen_working(r: Running) -> None:
    """Wait until both essential capabilities have answered (the first ad update applied)."""
    for name in r.bot.cfg.capabilities.essential:
        await capability_state(r.bot, name, "enabled")


async def _token_checks(r: Running) -> None:
    assert r.web is not None
    base = r.web.url
    assert (await _get(base + "/healthz"))[0] == 200  # liveness never needs the token
    for path in ("/readyz", "/metrics", "/api/status"):
        status, _, headers = await _get(base + path)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
        assert (await _get(base + path, token="wrong"))[0] == 401, path
        assert (await _get(base + path, token=TOKEN))[0] == 200, path
        assert (await _get(f"{base}{path}?token={TOKEN}"))[0] == 401, path  # never in a URL
    # the page holds no data (it asks for the token and fetches /api/status with the header):
    # a browser cannot send a header when it opens a page, so the page itself is open
    status, html, _ = await _get(base + "/")
    assert status == 200 and 'id="login"' in html and TOKEN not in html


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


# --- who may talk to the server --------------------------------------------------------------


async def _raw(port: int, head: bytes) -> tuple[int, bytes]:
    """Send one request as raw bytes (headers aiohttp's client would not send); (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _request(path: str, *headers: bytes) -> bytes:
    return b"\r\n".join([f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1",
                         b"Connection: close", *headers, b""])


async def test_only_a_bearer_header_carries_the_token(fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        assert r.web is not None
        port = r.web.port
        assert (await _raw(port, _request("/api/status", f"Authorization: Bearer {TOKEN}".encode())))[0] == 200
        for header in (b"Authorization: \xff\xfe", b"Authorization: Bearer \xff\xfe",
                       f"Authorization: Basic {TOKEN}".encode(), f"Authorization: {TOKEN}".encode(),
                       f"Authorization: bearer{TOKEN}".encode()):
            status, body = await _raw(port, _request("/api/status", header))
            assert status == 401 and b"Traceback" not in body, header


async def test_without_a_token_only_loopback_host_names_are_answered(fast_sim: Simulator,
                                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db") as r:
        assert r.web is not None
        port = r.web.port
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.",
                     f"[::1]:{port}", "app.localhost"):
            for path in ("/", "/api/status", "/healthz"):
                status, _, _ = await _get(r.web.url + path, headers={"Host": host})
                assert status == 200, (host, path)
        # DNS rebinding: a page on evil.example whose name now points at 127.0.0.1
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "0.0.0.0",
                     "localhost.evil.example", "[::ffff:7f00:1]x"):
            for path in ("/", "/api/status", "/readyz", "/metrics", "/healthz"):
                status, text, _ = await _get(r.web.url + path, headers={"Host": host})
                assert status == 403 and "Host" in text, (host, path)
        assert (await _raw(port, b"GET /api/status HTTP/1.0\r\n"))[0] == 403  # no Host at all


async def test_with_a_token_any_host_name_is_answered_with_the_token(fast_sim: Simulator,
                                                                     tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        assert r.web is not None
        url = r.web.url + "/api/status"
        assert (await _get(url, TOKEN, headers={"Host": "bot.example.com"}))[0] == 200
        assert (await _get(url, headers={"Host": "bot.example.com"}))[0] == 401


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1", True), ("127.0.0.1:8080", True), ("127.1.2.3", True), ("localhost", True),
    ("localhost.", True), ("Localhost:80", True), ("a.b.localhost", True), ("[::1]", True),
    ("[::1]:8080", True), ("bot.lan", True), ("bot.lan:8080", True),
    ("", False), ("evil.example", False), ("localhost.evil.example", False), ("0.0.0.0", False),
    ("10.0.0.1", False), ("[::]", False), ("::1", False), ("[::1", False),
    ("127.0.0.1.nip.io", False), ("localhost:80:80", False),
])
def test_host_allowed_without_a_token(host: str, allowed: bool) -> None:
    assert host_allowed(host, configured="bot.lan") is allowed


@pytest.mark.parametrize(("host", "token", "problem"), [
    ("127.0.0.1", None, None), ("localhost", None, None), ("::1", None, None),
    ("0.0.0.0", None, "[web] → host: 0.0.0.0 is reachable from the network"),
    ("::", None, "[web] → host: :: is reachable from the network"),
    ("192.0.2.7", None, "P2PBOT_WEB_TOKEN"),
    ("0.0.0.0", TOKEN, None),
    ("no-such-host.invalid", TOKEN, "[web] → host: no-such-host.invalid is not an IP address"),
    ("not a host", None, "[web] → host: not a host is not an IP address"),
], ids=lambda value: "a-token" if value == TOKEN else None)  # the same ids in every process
def test_web_problems(host: str, token: str | None, problem: str | None) -> None:
    cfg = WebConfig(host=host)
    said = web_problems(cfg, SecretStr(token) if token else None, Path("bot.toml"))
    if problem is None:
        assert said == []
    else:
        assert len(said) == 1 and said[0].startswith("bot.toml: [web] → host: ") and problem in said[0]
    assert web_problems(cfg.model_copy(update={"enabled": False}), None, Path("bot.toml")) == []


# --- refused at start ---------------------------------------------------------------------------


def _with_web(config: Path, **keys: object) -> Path:
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    text = re.sub(r"\[web\]\nenabled = false\nport = \d+\n", "[web]\n" + lines,
                  config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")
    return config


async def test_run_listens_before_the_bot_starts_and_is_not_ready_yet(fast_sim: Simulator,
                                                                      tmp_path: Path) -> None:
    config = _with_web(write_config(tmp_path / "bot.toml"), port=_free_port())
    store = await Store.open(tmp_path / "bot.db")
    client = sim_client(fast_sim, ScaledClock(fast_sim.clock))
    try:
        bot = Bot(load_config(config), client, store, clock=ScaledClock(fast_sim.clock))
        settings = type("S", (), {"web_token": None})()
        server = await listen_web(bot, settings, config)  # type: ignore[arg-type]
        assert (await _get(server.url + "/healthz"))[0] == 200
        status, ready = await _json(server.url + "/readyz")
        assert status == 503 and ready["ready"] is False and ready["starting"] is True
        assert fast_sim.requests() == []
        assert server.closing is not None
        server.closing.cancel()  # as asyncio.run does on its way out: the socket is closed
        with contextlib.suppress(asyncio.CancelledError):
            await server.closing
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(server.url + "/healthz")
    finally:
        await client.close()
        await store.close()


@pytest.mark.slow
async def test_a_network_host_without_a_token_exits_2(fast_sim: Simulator, tmp_path: Path) -> None:
    config = _with_web(write_config(tmp_path / "bot.toml"), host="0.0.0.0", port=_free_port())
    env = daemon_env(fast_sim, tmp_path, config)
    for run in (lambda: run_command(env, tmp_path, "check-config"), lambda: _run(env, tmp_path)):
        status, _, err = await run()
        assert status == 2, err
        assert f"{config}: [web] → host: 0.0.0.0 is reachable from the network" in err
        assert "P2PBOT_WEB_TOKEN" in err
    assert fast_sim.requests() == []  # refused before anything was sent
    status, out, err = await run_command({**env, "P2PBOT_WEB_TOKEN": TOKEN}, tmp_path, "check-config")
    assert status == 0, err
    assert "P2PBOT_WEB_TOKEN: set" in out and "[web] host = 0.0.0.0: the server is reachable" in out


@pytest.mark.slow
async def test_check_config_refuses_a_host_that_does_not_resolve(tmp_path: Path) -> None:
    config = _with_web(write_config(tmp_path / "bot.toml"), host="no-such-host.invalid")
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    status, _, err = await run_command({**env, "P2PBOT_WEB_TOKEN": TOKEN}, tmp_path,
                                       "check-config", "--config", str(config))
    assert status == 2
    assert f"{config}: [web] → host: no-such-host.invalid is not an IP address" in err


@pytest.mark.slow
async def test_an_unbindable_address_exits_2_before_any_request(fast_sim: Simulator,
                                                               tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _with_web(write_config(tmp_path / "bot.toml"), port=port)
        status, _, err = await _run(daemon_env(fast_sim, tmp_path, config), tmp_path)
    assert status == 2, err
    assert f"{config}: [web] → port: cannot listen on 127.0.0.1:{port}" in err
    # an address of no interface of this machine (TEST-NET-1): the host is at fault
    config = _with_web(write_config(tmp_path / "bot.toml"), host="192.0.2.7", port=_free_port())
    env = daemon_env(fast_sim, tmp_path, config, P2PBOT_WEB_TOKEN=TOKEN)
    status, _, err = await _run(env, tmp_path)
    assert status == 2, err
    assert f"{config}: [web] → host: cannot listen on 192.0.2.7:" in err
    assert fast_sim.requests() == []  # bound first: nothing was sent


async def _run(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`run` to its exit (killed if it is still running after 20 s): (status, "", stderr)."""
    daemon = await start_daemon(env, cwd)
    try:
        return await daemon.wait(20), "", "".join(daemon.raw)
    finally:
        await daemon.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the token in no log ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_aiohttp_logs_go_through_the_redaction(fast_sim: Simulator, tmp_path: Path) -> None:
    port = _free_port()
    config = _with_web(write_config(tmp_path / "bot.toml"), port=port)
    daemon = await start_daemon(daemon_env(fast_sim, tmp_path, config, P2PBOT_WEB_TOKEN=TOKEN),
                                tmp_path)
    try:
        await asyncio.wait_for(daemon.saw("status page").wait(), 20)
        # a URL too long for aiohttp's parser: aiohttp logs the error with the start of the URL
        status, _ = await _raw(port, _request(f"/?token={TOKEN}&x={'a' * 9000}"))
        assert status == 400
        await asyncio.wait_for(daemon.saw("Error handling request").wait(), 10)
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    finally:
        await daemon.close()
    assert TOKEN not in "".join(daemon.raw)
    assert any("token=***" in m for m in daemon.messages())
