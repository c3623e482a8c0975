"""Small pieces of running for weeks: sd_notify, log files, Bot.reload, metric labels."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from loguru import logger

from bot.logs import MASK, REDACTOR, setup_logging, wants_json
from bot.ops import sdnotify
from bot.ops.metrics import skip_reason
from config.loader import load_config
from simulator.app import Simulator
from simulator.scenario import generate_credential
from state.db import Store
from state.decisions import DecisionRow
from tests.support import bot_on_sim, decided, write_config

# --- sd_notify ------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a short path (AF_UNIX paths are limited to 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="p2pu", dir="/tmp")
    path = os.path.join(folder, "n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def test_notify_sends_datagrams(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert sdnotify.notify("READY=1", "STATUS=ok", environ={"NOTIFY_SOCKET": path})
    assert sock.recv(100) == b"READY=1\nSTATUS=ok"


def test_notify_abstract_socket() -> None:
    name = f"p2pbot-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert sdnotify.notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"WATCHDOG=1"


def test_notify_outside_systemd_is_a_no_op() -> None:
    assert sdnotify.notify("READY=1", environ={}) is False
    assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": "/nonexistent/socket"}) is False


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHDOG_USEC": "10000000"}, 5.0),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({}, None),
])
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert sdnotify.watchdog_interval(env) == expected


async def test_watchdog_returns_at_once_when_not_asked() -> None:
    await asyncio.wait_for(sdnotify.watchdog(environ={}), 1)


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh_logger() -> Iterator[None]:
    """Leave loguru as the other tests expect it."""
    yield
    logger.remove()
    logger.configure(patcher=lambda record: None)
    REDACTOR.clear()
    logger.add(sys.stderr)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_format_is_plain_text_off_a_terminal() -> None:
    # issue 16 item 7: under systemd (stderr not a terminal) the journal reads plain text;
    # JSON only when asked (this test said JSON before)
    assert wants_json("auto", stream=io.StringIO()) is False
    assert wants_json("auto", stream=Tty()) is False
    assert wants_json("human", stream=io.StringIO()) is False
    assert wants_json("human", json=True, stream=Tty()) is True
    assert wants_json("json", stream=Tty()) is True


def test_the_log_file_rotates_and_old_files_go(tmp_path: Path, fresh_logger: None) -> None:
    path = tmp_path / "logs" / "bot.log"
    setup = setup_logging("INFO", json=True, file=path, stream=io.StringIO(), rotation="2 KB",
                          retention=2)
    for i in range(200):
        logger.info("line {} with some padding to fill the file quickly", i)
    setup.remove()
    files = sorted((tmp_path / "logs").iterdir())
    assert 2 <= len(files) <= 3  # the live file and at most two rotated ones
    for f in files:
        for line in f.read_text().splitlines():
            json.loads(line)  # whole JSON lines, also across rotations


def test_an_exception_is_logged_redacted_in_every_sink(tmp_path: Path, fresh_logger: None) -> None:
    secret = generate_credential()
    out = io.StringIO()
    path = tmp_path / "bot.log"
    setup = setup_logging("DEBUG", file=path, stream=out, secrets=[secret])
    raw: list[str] = []
    logger.add(lambda m: raw.append(str(m)), format="{message}")
    try:
        raise RuntimeError(f"boom with {secret} in it")
    except RuntimeError:
        logger.exception("it failed")
    setup.remove()
    for text in (out.getvalue(), path.read_text(), "\n".join(raw)):
        assert "it failed" in text and "RuntimeError: boom with " + MASK in text
        assert secret not in text


# --- metrics labels ---------------------------------------------------------------------------


def _row(result: str, reason: str = "", guards: tuple[str, ...] = ()) -> DecisionRow:
    return DecisionRow(0.0, "ad", "1", "undercut", Decimal("1"), None, result, reason, guards)


@pytest.mark.parametrize(("row", "label"), [
    (_row("held", "already at 92.50"), "unchanged"),
    (_row("held", "change 0.01 below min_change 0.05"), "min_change"),
    (_row("held", "min_interval: next update allowed in 3 s", ("min_interval",)), "min_interval"),
    (_row("held", "kill switch: global kill_switch is on", ("kill_switch",)), "kill_switch"),
    (_row("held", "edit budget spent", ("edit_budget",)), "edit_budget"),
    (_row("held", "repricing unavailable: update_ad is unregistered"), "repricing_unavailable"),
    (_row("held", "no competitor above the floor"), "strategy"),
    (_row("dry_run", "1st by 0.01"), "dry_run"),
    (_row("failed", "exchange refused"), "failed"),
])
def test_skip_reasons_are_a_small_set(row: DecisionRow, label: str) -> None:
    assert skip_reason(row) == label


# --- Bot.reload -------------------------------------------------------------------------------



BUY_AD = """
[[ads]]
name = "buy-usdt"
asset = "USDT"
fiat = "RUB"
side = "BUY"
strategy = "fixed"
[ads.params]
price = "91.00"
[ads.guards]
floor = "80"
ceiling = "95"
min_interval = 0
"""


@pytest.mark.slow
async def test_reload_keeps_each_ads_state_and_takes_the_new_rules(fast_sim: Simulator,
                                                                   tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", web=False) as r:
        await asyncio.wait_for(decided(r.bot, lambda ad, row: row.result == "applied").wait(), 10)
        sell = r.bot.ads[0]
        own, updates = sell.own, list(sell.updates)
        market_pollers = len(r.bot.pollers)

        write_config(config, strategy="fixed", params='price = "93.30"', market_interval=7,
                     bot="kill_switch = true")
        config.write_text(config.read_text() + BUY_AD, encoding="utf-8")
        changes = await r.bot.reload(load_config(config))
        assert changes[0] == "2 ad(s)" and "added buy-usdt" in changes and "kill_switch True" in changes
        assert r.bot.ads[0] is sell and sell.own == own and sell.updates == updates  # state kept
        assert sell.loaded.strategy.name == "fixed" and r.bot.engine.kill_switch is True
        buy = r.bot.ads[1]
        assert buy.own is not None and buy.own.side.value == "BUY"  # resolved from the last read
        assert r.bot.engine.ads is r.bot.ads
        assert all(p.interval == 7 for p in r.bot.pollers if type(p).__name__ == "MarketPoller")
        assert len(r.bot.pollers) >= market_pollers + 1  # the BUY ad's market is searched too

        held = decided(r.bot, lambda ad, row: ad is sell and "kill_switch" in row.guards)
        await asyncio.wait_for(held.wait(), 10)  # the new rules decide the same ad

        write_config(config)  # back to one ad, undercut, no kill switch
        changes = await r.bot.reload(load_config(config))
        assert "removed buy-usdt" in changes and r.bot.ads == [sell]
        assert r.bot.engine.kill_switch is False


# --- the store under cancellation ---------------------------------------------------------------


async def test_a_write_cancelled_at_begin_leaves_the_store_usable(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        writer = asyncio.create_task(store.execute("INSERT INTO meta (key, value) VALUES ('a', '1')"))
        await asyncio.sleep(0)  # the writer now waits on its BEGIN, queued on aiosqlite's thread
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        await store.execute("INSERT INTO meta (key, value) VALUES ('b', '2')")  # stop's own write
        keys = await store.fetchall("SELECT key FROM meta WHERE key IN ('a', 'b')")  # not the
        assert [r[0] for r in keys] == ["b"]  # store's own mark (store_created_at)
    finally:
        await store.close()
