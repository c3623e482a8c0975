"""A stored IP ban (418): bounded on restore, shown and cleared by `p2pbot ban` (issue 11, item 4)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import pytest

from bot.commands import ban as ban_command
from bot.ops.lock import InstanceLock
from p2pbot.cli import build_parser
from state.db import Store
from state.meta import Meta


async def _store_ban(db: Path, until: float) -> None:
    store = await Store.open(db)
    try:
        await Meta(store).set_ban_until(until)
    finally:
        await store.close()


async def _stored(db: Path) -> float:
    store = await Store.open(db)
    try:
        return await Meta(store).ban_until()
    finally:
        await store.close()


def _ban(db: Path, *, clear: bool = False) -> int:
    return ban_command.run(argparse.Namespace(db=db, clear=clear))


def test_ban_is_a_command() -> None:
    args = build_parser().parse_args(["ban", "--clear", "--db", "x.db"])
    assert (args.command, args.clear, args.db) == ("ban", True, Path("x.db"))


async def test_ban_shows_the_stored_ban_and_clear_forgets_it(tmp_path: Path, capsys) -> None:
    db = tmp_path / "bot.db"
    await _store_ban(db, time.time() + 2 * 3600)
    assert await asyncio.to_thread(_ban, db) == 0
    out = capsys.readouterr().out
    assert "IP banned by the exchange until" in out and "ban --clear" in out
    assert await asyncio.to_thread(_ban, db, clear=True) == 0
    assert "cleared the stored IP ban" in capsys.readouterr().out
    assert await _stored(db) == 0.0
    assert await asyncio.to_thread(_ban, db) == 0
    assert capsys.readouterr().out.strip() == "no IP ban in force"


async def test_a_ban_until_2058_is_shown_as_longer_than_binance_gives(tmp_path: Path, capsys) -> None:
    db = tmp_path / "bot.db"
    await _store_ban(db, 2_800_000_000.0)  # what a Retry-After of 1e9 used to store
    assert await asyncio.to_thread(_ban, db) == 0
    out = capsys.readouterr().out
    assert "2058" in out and "longer than Binance's longest ban" in out and "3 days" in out


async def test_clear_is_refused_while_a_bot_runs_on_the_store(tmp_path: Path, capsys) -> None:
    db = tmp_path / "bot.db"
    until = time.time() + 3600
    await _store_ban(db, until)
    with InstanceLock(db):  # the running daemon holds it
        assert await asyncio.to_thread(_ban, db, clear=True) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "another p2pbot is already running" in err
    assert await _stored(db) == pytest.approx(until)


async def test_ban_without_a_store_says_so(tmp_path: Path, capsys) -> None:
    assert await asyncio.to_thread(_ban, tmp_path / "absent.db") == 0
    assert "no IP ban recorded" in capsys.readouterr().out
    assert not (tmp_path / "absent.db").exists()


async def test_a_stored_ban_beyond_three_days_is_waited_three_days_at_most(tmp_path: Path) -> None:
    from bot.capabilities.registry import CapabilityRegistry
    from tests.support import FakeClock, make_client

    db = tmp_path / "bot.db"
    clock = FakeClock()
    await _store_ban(db, clock.now + 10**9)
    store = await Store.open(db)
    client = make_client(clock)
    try:
        await CapabilityRegistry(client, meta=Meta(store)).restore()
    finally:
        await client.close()
        await store.close()
    assert client.banned_until == pytest.approx(clock.now + 3 * 86400)
