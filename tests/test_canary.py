"""A whole demo session with a canary key, secret and web token at DEBUG: none of them may
appear in any log line (stream, file, raw records), exception, repr, web answer or the store."""

from __future__ import annotations

import asyncio
import io
import secrets
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loguru import logger

from bot.app import Bot
from bot.binance.client import SignedClient
from bot.commands.common import credentials, load_settings
from bot.logs import REDACTOR, setup_logging
from bot.ops.service import check_key
from bot.ops.web import attach_web
from config.loader import load_config
from simulator.app import run_simulator
from simulator.clock import ScaledClock
from state.db import Store
from tests.support import decided, world_factory, write_config


def canary(prefix: str) -> str:
    """A 64-character credential that is easy to grep for."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(64 - len(prefix)))


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave loguru as the other tests expect it."""
    yield
    logger.remove()
    logger.configure(patcher=lambda record: None)
    REDACTOR.clear()
    logger.add(sys.stderr)


async def _scrape(url: str, token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        out = []
        for path in ("/healthz", "/readyz", "/metrics", "/api/status", "/"):
            async with s.get(url + path, headers=headers) as r:
                assert r.status in (200, 503), path
                out.append(await r.text())
        return out


@pytest.mark.slow
async def test_no_canary_anywhere_after_a_demo_session(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret, token = canary("CANARYKEY"), canary("CANARYSECRET"), canary("CANARYTOKEN")
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for name, value in {"API_KEY": key, "API_SECRET": secret, "WEB_TOKEN": token}.items():
        monkeypatch.setenv(f"P2PBOT_{name}", value)
    stream, raw = io.StringIO(), []
    log_file = tmp_path / "logs" / "bot.log"
    setup_logging("DEBUG", json=True, file=log_file, stream=stream, secrets=[key, secret, token])
    logger.add(lambda m: raw.append(str(m)), level="DEBUG", serialize=True)
    errors: list[BaseException] = []
    config = write_config(tmp_path / "bot.toml", market_interval=10)
    db = tmp_path / "bot.db"

    async with run_simulator("calm", speed=150, api_key=key, api_secret=secret,
                             world_factory=world_factory()) as sim:
        monkeypatch.setenv("P2PBOT_BASE_URL", sim.base_url)
        settings = load_settings()
        creds = credentials(settings)
        clock = ScaledClock(sim.clock)
        client = SignedClient(settings.base_url, api_key=settings.api_key, signer=creds.signer,
                              clock=clock)
        call = client.call

        async def spy(*args: Any, **kw: Any) -> Any:
            try:
                return await call(*args, **kw)
            except BaseException as exc:
                errors.append(exc)
                raise

        client.call = spy  # type: ignore[method-assign]
        store = await Store.open(db)
        bot = Bot(load_config(config), client, store, clock=clock)
        web = attach_web(bot, settings, port=0)
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        try:
            await bot.start()
            await check_key(bot.api)
            task = asyncio.create_task(bot.run(stop))
            await asyncio.wait_for(decided(bot, lambda ad, row: row.result == "applied").wait(), 10)
            sim.add_fault("http5xx", endpoint="search", rate=0.5)
            sim.set_registration("categories", "unregistered")
            await bot.registry.probe("categories")
            until = clock.time() + 180  # three simulated minutes more
            await asyncio.wait_for(decided(bot, lambda ad, row: row.at > until).wait(), 20)
            pages = await _scrape(web.url, token)
            reprs = [repr(o) for o in (client, settings, creds, bot, bot.registry, bot.api,
                                       settings.api_key, settings.web_token, creds.signer)]
            reprs += [str(o) for o in (settings, creds)]
        finally:
            stop.set()
            if task is not None:
                await asyncio.wait_for(task, 15)
            await client.close()
            await store.close()

    logger.remove()  # flush and close the file sink
    assert errors, "the session should have seen some errors (5xx, -2008)"
    texts = {"stream": stream.getvalue(), "file": log_file.read_text(), "raw": "\n".join(raw),
             "exceptions": "\n".join(f"{e!s}\n{e!r}\n{e.args!r}" for e in errors),
             "reprs": "\n".join(reprs), "web": "\n".join(pages)}
    assert "repriced sell-usdt" in texts["file"] and "-> 200" in texts["raw"]  # a real session
    for where, text in texts.items():
        for value in (key, secret, token):
            assert value not in text, f"a canary in {where}"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("bot.db*"))  # noqa: ASYNC240
    assert b"sell-usdt" in stored
    for value in (key, secret, token):
        assert value.encode() not in stored, "a canary in the store"
