"""The desk overview: `p2pbot desk status URL...` and the desk page (/desk, /api/desk).

Real bots on the simulator for the good rows; fake /api/status servers for the bad ones:
one that never answers (slow), one that answers garbage, one that refuses the token, and
a port nobody listens on. Each bad one is a row that says so within the timeout, and the
good rows are there all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.accounts.overview import Peer, read_all, render_table, summarise
from bot.app import Bot
from bot.ops.status_api import readiness
from config.loader import ConfigFileError, load_config
from p2pbot.cli import main
from simulator.app import Simulator, run_simulator
from simulator.scenario import generate_credential
from tests.support import bot_on_sim, free_port, world_factory, write_config

TIMEOUT = 1.0  # seconds each instance gets in these tests
TOKEN = "desk-token-" + generate_credential()[:24]


@contextlib.asynccontextmanager
async def fake(handler: web.RequestHandler) -> AsyncIterator[str]:  # type: ignore[type-arg]
    """A server answering /api/status with `handler`; yields its base URL."""
    app = web.Application()
    app.router.add_get("/api/status", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def bad_peers() -> AsyncIterator[dict[str, str]]:
    """The slow, garbage, refusing and unreachable instances by name -> URL."""
    never = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await never.wait()  # answers only when the test is over
        return web.json_response({})

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")

    async def wrong_shape(request: web.Request) -> web.Response:
        return web.json_response({"ready": True, "capabilities": "all of them"})

    async def refusing(request: web.Request) -> web.Response:
        return web.json_response({"error": "unauthorised"}, status=401)

    async with fake(slow) as s, fake(garbage) as g, fake(wrong_shape) as w, fake(refusing) as r:
        try:
            yield {"slow": s, "garbage": g, "shape": w, "refusing": r,
                   "gone": f"http://127.0.0.1:{free_port()}"}
        finally:
            never.set()


@contextlib.asynccontextmanager
async def second_sim() -> AsyncIterator[Simulator]:
    """Another account's exchange (the calm scenario at 20x, its own key)."""
    async with run_simulator("calm", speed=20, api_key=generate_credential(),
                             api_secret=generate_credential(), world_factory=world_factory()) as s:
        yield s


def private(path: Path, text: str) -> Path:
    """A secret file, mode 600."""
    path.write_text(text)
    path.chmod(0o600)
    return path


async def ready(bot: Bot, within: float = 10.0) -> None:
    """Wait (on the registry's change event) until the bot is ready, as /readyz says."""
    async def reached() -> None:
        while not readiness(bot)[0]:
            await bot.registry.wait_for_change()

    await asyncio.wait_for(reached(), within)


@pytest.mark.slow
async def test_read_all_shows_every_bad_instance_within_its_timeout(fast_sim: Simulator,
                                                                    tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()  # the account is named after its config's folder
    config = write_config(tmp_path / "alice" / "bot.toml", market_interval=2)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r, \
            bad_peers() as bad:
        assert r.web is not None
        await ready(r.bot)  # every essential capability seen working: alice says "ok"
        peers = [Peer(r.web.url, SecretStr(TOKEN)), *(Peer(url, None, name) for name, url in bad.items())]
        # the bound below only stops a hung test: every row is due within TIMEOUT
        rows = await asyncio.wait_for(read_all(peers, TIMEOUT), TIMEOUT * 10)
    by = {row.account: row for row in rows}
    assert by["alice"].health == "ok" and by["alice"].ads[0].startswith("sell-usdt: ")
    assert " up" in by["alice"].capabilities and by["alice"].last
    assert by["slow"].health == f"slow: no answer within {TIMEOUT:g} s"
    assert by["garbage"].health == "garbage: an answer that is not JSON"
    assert by["shape"].health.startswith("garbage: not a status document")
    assert by["refusing"].health == "HTTP 401 (the token was refused)"
    assert by["gone"].health.startswith("unreachable")
    table = render_table(rows)
    assert len(table.splitlines()) == 1 + len(peers)
    assert all(name in table for name in ("alice", "slow", "garbage", "gone"))


def test_summarise_says_what_a_merchant_needs() -> None:
    doc = {"ready": False, "essential_down": ["market"], "banned_until": None,
           "paused_until": None, "dry_run": True, "kill_switch": False,
           "config": "/etc/p2pbot/bob/p2pbot.toml",
           "capabilities": [{"name": "market", "state": "disabled", "essential": True},
                            {"name": "repricing", "state": "enabled", "essential": True}],
           "ads": [{"label": "sell-usdt", "price": "92.50", "rank": 2, "problem": None}],
           "orders": [{"status": 2}, {"status": 1}], "orders_known": True,
           "decisions": [{"ad": "sell-usdt", "result": "held", "reason": "market data unavailable"}]}
    row = summarise(doc, Peer("http://127.0.0.1:8081"))
    assert row.account == "bob" and row.health == "not ready"
    assert row.capabilities == "1/2 up; market disabled"
    assert row.ads == ["sell-usdt: 92.50 #2"] and row.orders == "2 open (1 paid)"
    assert row.alerts == ["not ready: market", "dry run", "market lost"]
    assert row.last == "sell-usdt: held, market data unavailable"


@pytest.mark.slow
async def test_desk_page_shows_this_instance_and_its_peers(fast_sim: Simulator,
                                                           tmp_path: Path) -> None:
    bob_token = private(tmp_path / "bob_token", "bob-" + generate_credential()[:30])
    loose = tmp_path / "loose_token"
    loose.write_text("x")
    loose.chmod(0o644)
    async with second_sim() as bob_sim, bad_peers() as bad:
        bob_config = write_config(tmp_path / "bob.toml", market_interval=2)
        async with bot_on_sim(bob_sim, bob_config, tmp_path / "bob.db",
                              token=bob_token.read_text()) as bob:
            assert bob.web is not None
            tail = f"""
[desk]
name = "alice"
timeout = {TIMEOUT}
peers = [
  {{ url = "{bob.web.url}", token_file = "{bob_token}", name = "bob" }},
  {{ url = "{bad['slow']}", name = "slow" }},
  {{ url = "{bad['garbage']}", name = "garbage" }},
  {{ url = "{bad['gone']}", name = "gone" }},
  {{ url = "{bob.web.url}", token_file = "{loose}", name = "loose" }},
]
"""
            config = write_config(tmp_path / "alice.toml", market_interval=2, tail=tail)
            async with bot_on_sim(fast_sim, config, tmp_path / "alice.db", token=TOKEN) as alice:
                assert alice.web is not None
                for r in (alice, bob):
                    await ready(r.bot)  # both say "ok"
                async with aiohttp.ClientSession() as s:
                    async with s.get(alice.web.url + "/api/desk") as resp:
                        assert resp.status == 401  # the same bearer rule as /api/status
                    async with s.get(alice.web.url + "/desk") as resp:
                        page = await resp.text()
                        assert resp.status == 200 and "/api/desk" in page
                        assert "nonce-" in resp.headers["Content-Security-Policy"]
                    headers = {"Authorization": f"Bearer {TOKEN}"}
                    got = s.get(alice.web.url + "/api/desk", headers=headers)
                    async with got as resp:
                        assert resp.status == 200
                        rows = (await resp.json())["rows"]
    health = {r["account"]: r["health"] for r in rows}
    assert list(health) == ["alice", "bob", "slow", "garbage", "gone", "loose"]
    assert health["alice"] == "ok" and health["bob"] == "ok"
    assert health["slow"].startswith("slow") and health["garbage"].startswith("garbage")
    assert health["gone"].startswith("unreachable")
    assert health["loose"].startswith("token file:") and "chmod 600" in health["loose"]
    assert all(r["ads"] for r in rows[:2]) and all(not r["reachable"] for r in rows[2:])


def test_a_bad_peer_in_the_config_names_the_table_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", tail='\n[desk]\npeers = [{ url = "ftp://x" }]\n')
    with pytest.raises(ConfigFileError) as err:
        load_config(config)
    assert "desk" in str(err.value) and "url" in str(err.value)


def test_desk_status_command_exit_status_and_bad_arguments(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    assert main(["desk", "status", f"gone={gone}", "--timeout", "2"]) == 3
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("gone") and "unreachable" in out
    assert main(["desk", "status", "not-a-url"]) == 2
    assert main(["desk", "status", gone, gone, "--token-file", "a", "--token-file", "b",
                 "--token-file", "c"]) == 2
    loose = tmp_path / "t"
    loose.write_text("x")
    loose.chmod(0o644)
    assert main(["desk", "status", gone, "--token-file", str(loose)]) == 2
    assert "chmod 600" in capsys.readouterr().err
