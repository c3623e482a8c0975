"""Messages a merchant can act on: transport errors name the address (never just an exception
class), a ban names its end in local time and how long it lasts, an error that ends `run` is
written once, `backup` names its paths; and the repository ignores the lock file and builds
without setuptools warnings."""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import tomllib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loguru import logger
from websockets.exceptions import ConnectionClosedError, InvalidHandshake

from bot.binance.client import SignedClient
from bot.binance.errors import ExchangeUnavailable, IpBanned
from bot.capabilities.registry import CapabilityRegistry
from bot.chat.session import ws_reason
from bot.clock import describe_until
from bot.notify import Note, NotifyError, WebhookNotifier
from p2pbot.cli import main
from simulator.scenario import generate_credential
from state.db import Store
from tests.support import (
    BASE,
    NOW_MS,
    FakeClock,
    make_client,
    mocked,
    path_re,
    run_command,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
ORDER_SUMMARY = "/sapi/v1/c2c/orderMatch/getUserOrderSummary"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS / 1000)


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[SignedClient]:
    c = make_client(clock)
    c.time_synced = True  # no server-time request first
    yield c
    await c.close()


@pytest.fixture
def said() -> list[str]:
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="DEBUG")
    yield messages
    logger.remove(sink)


# --- transport errors name the address and what happened --------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_connection_names_the_url_not_the_exception_class() -> None:
    port = _closed_port()
    base = f"http://127.0.0.1:{port}"
    async with SignedClient(base, api_key=None, signer=None, timeout=5) as c:
        with pytest.raises(ExchangeUnavailable) as raised:
            await c.call("server_time")
    text = str(raised.value)
    assert f"GET {base}/api/v3/time" in text and "connection refused" in text.lower()
    assert "ClientConnectorError" not in text and "OSError" not in text


@pytest.mark.parametrize(("exc", "words"), [
    (TimeoutError(), "no answer within 10 s"),
    (aiohttp.ServerDisconnectedError(), "the server closed the connection"),
    (aiohttp.ClientPayloadError("x"), "the reply was cut off"),
])
async def test_transport_failures_say_what_happened_where(client: SignedClient, exc: Exception,
                                                          words: str) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), exception=exc)
        with pytest.raises(ExchangeUnavailable) as raised:
            await client.call("order_summary")
    text = str(raised.value)
    assert words in text and f"GET {BASE}{ORDER_SUMMARY}" in text
    assert "signature" not in text and "?" not in text.replace("'", "")  # never the query
    assert type(exc).__name__ not in text


async def test_a_notification_channel_that_cannot_connect_names_its_host() -> None:
    port = _closed_port()
    hook = WebhookNotifier(f"http://127.0.0.1:{port}/hook/SECRETPATHTOKEN")
    try:
        with pytest.raises(NotifyError) as raised:
            await hook.send(Note("k", "key", "text", 0.0))
    finally:
        await hook.close()
    text = str(raised.value)
    assert text == f"cannot connect to 127.0.0.1:{port}: connection refused (sending to 127.0.0.1)"
    assert "SECRETPATHTOKEN" not in text


@pytest.mark.parametrize(("exc", "words"), [
    (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"),
     "network error: connection refused"),
    (TimeoutError(), "no answer in time"),
    (ConnectionClosedError(None, None), "the connection was closed"),
    (InvalidHandshake(), "the websocket handshake failed"),
])
def test_the_chat_websocket_says_why_in_words(exc: BaseException, words: str) -> None:
    assert ws_reason(exc) == words


# --- a ban's end: local time and how long ------------------------------------------------------


def test_describe_until_says_local_time_and_how_long() -> None:
    now = 1_700_000_000.0
    local = datetime.fromtimestamp(now + 7200).strftime("%Y-%m-%d %H:%M:%S")
    assert describe_until(now + 7200, now) == f"{local} local time (in 2 h)"
    assert describe_until(now + 90, now).endswith("(in 1 min 30 s)")
    assert describe_until(now + 3 * 86400 + 3600, now).endswith("(in 3 days 1 h)")
    assert describe_until(now + 0.4, now).endswith("(in 1 s)")


async def test_a_418_logs_the_ban_end_in_local_time(client: SignedClient, clock: FakeClock,
                                                    said: list[str]) -> None:
    with mocked() as m:
        m.get(path_re(ORDER_SUMMARY), status=418, headers={"Retry-After": "7200"})
        with pytest.raises(IpBanned):
            await client.call("order_summary")
        with pytest.raises(IpBanned) as blocked:
            await client.call("order_summary")
    until = clock.now + 7200
    local = datetime.fromtimestamp(until).strftime("%Y-%m-%d %H:%M:%S")
    (line,) = [m for m in said if "banned" in m]
    assert f"until {local} local time (in 2 h)" in line
    assert str(int(until)) not in line  # no epoch number
    assert local in str(blocked.value)  # a request not sent says until when


class _Meta:
    def __init__(self, until: float) -> None:
        self.until = until

    async def ban_until(self) -> float:
        return self.until


async def test_a_persisted_ban_is_reported_in_local_time(client: SignedClient, clock: FakeClock,
                                                         said: list[str]) -> None:
    until = clock.now + 600
    reg = CapabilityRegistry(client, meta=_Meta(until))  # type: ignore[arg-type]
    await reg.restore()
    (line,) = [m for m in said if "ban" in m]
    local = datetime.fromtimestamp(until).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{local} local time (in 10 min)" in line and str(int(until)) not in line


# --- an error that ends run: once on stderr, whatever the format -------------------------------


async def _damaged_store(tmp_path: Path) -> Path:
    db = tmp_path / "bot.db"
    store = await Store.open(db)
    await store.close()
    data = bytearray(db.read_bytes())
    data[:16] = b"not a database!!"
    db.write_bytes(bytes(data))
    return db


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["auto", "human", "json"])
async def test_an_error_that_ends_run_is_written_once(tmp_path: Path, fmt: str) -> None:
    db = await _damaged_store(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    env.update(P2PBOT_API_KEY=generate_credential(), P2PBOT_API_SECRET=generate_credential(),
               P2PBOT_CONFIG=str(write_config(tmp_path / "bot.toml")), P2PBOT_DB=str(db),
               P2PBOT_BASE_URL="http://127.0.0.1:9")
    status, _, err = await run_command(env, tmp_path, "--log-format", fmt, "run")
    assert status == 2
    assert err.count(f"the store {db} is damaged") == 1, err


# --- backup names the paths ---------------------------------------------------------------------


async def test_backup_errors_name_the_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "bot.db"
    store = await Store.open(db)
    await store.close()
    target = tmp_path / "no such folder" / "copy.db"
    assert main(["backup", str(target), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and str(db) in err and "does not exist" in err

    (tmp_path / "d").mkdir()
    damaged = await _damaged_store(tmp_path / "d")
    assert main(["backup", str(tmp_path / "copy.db"), "--db", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert str(damaged) in err and str(tmp_path / "copy.db") in err


# --- the repository --------------------------------------------------------------------------


def _ignored(name: str) -> bool:
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(Path(name).name, p) for p in patterns)


@pytest.mark.parametrize("name", ["p2pbot.db.lock", "state/p2pbot.db.lock", "/var/x/bot.db.lock"])
def test_the_lock_file_is_ignored_by_git(name: str) -> None:
    assert _ignored(name)


def test_the_license_is_an_spdx_string_setuptools_takes_without_warning() -> None:
    doc: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert doc["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in doc["project"].get("classifiers", []))
    (setuptools,) = [r for r in doc["build-system"]["requires"] if r.startswith("setuptools")]
    assert re.fullmatch(r"setuptools>=(\d+)", setuptools)
    assert int(setuptools.split(">=")[1]) >= 77  # the first to take the SPDX string form
