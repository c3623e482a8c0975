"""The store over weeks: one daemon per store, an integrity check at start, backups while running."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.commands import backup as backup_command
from bot.ops.lock import AlreadyRunning, InstanceLock, KeyLock, key_lock_path, lock_path
from simulator.app import Simulator, run_simulator
from simulator.scenario import generate_credential
from state.db import Store, StoreFull, is_full
from state.maintenance import StoreDamaged, backup, integrity_check
from tests.support import bot_on_sim, daemon_env, decided, run_command, start_daemon, write_config


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    env.update(P2PBOT_API_KEY=generate_credential(), P2PBOT_API_SECRET=generate_credential(),
               P2PBOT_CONFIG=str(write_config(tmp_path / "bot.toml")),
               P2PBOT_DB=str(tmp_path / "bot.db"), P2PBOT_BASE_URL="http://127.0.0.1:9")
    return env


def test_the_lock_admits_one_holder(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    with InstanceLock(db) as first:
        assert first.held and lock_path(db).read_text().strip() == str(os.getpid())
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            InstanceLock(db).acquire()
    with InstanceLock(db):  # released: the next one gets it
        pass


async def test_a_second_daemon_exits_2(tmp_path: Path) -> None:
    with InstanceLock(tmp_path / "bot.db"):
        status, _, err = await run_command(_env(tmp_path), tmp_path, "run")
    assert status == 2
    assert "another p2pbot is already running" in err and str(tmp_path / "bot.db.lock") in err


def test_a_symlink_to_the_store_finds_the_same_lock(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "other").mkdir()
    db = tmp_path / "real" / "bot.db"
    db.touch()
    (tmp_path / "other" / "bot.db").symlink_to(db)
    with InstanceLock(db), pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
        InstanceLock(tmp_path / "other" / "bot.db").acquire()


def test_the_key_lock_is_named_by_a_hash_of_the_key(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    key = SecretStr(generate_credential())
    with KeyLock(key, tmp_path / "a" / "bot.db") as first:
        path = key_lock_path(key)
        assert first.held and path.parent == tmp_path
        assert re.fullmatch(r"p2pbot-[0-9a-f]{16}\.lock", path.name)
        assert key.get_secret_value() not in path.read_text()
        with pytest.raises(AlreadyRunning) as info:
            KeyLock(key, tmp_path / "b" / "bot.db").acquire()  # another store, the same key
        assert f"pid {os.getpid()}, store {tmp_path / 'a' / 'bot.db'}" in str(info.value)
        assert key.get_secret_value() not in str(info.value)
        KeyLock(SecretStr(generate_credential()), tmp_path / "b" / "bot.db").acquire().release()


async def test_a_second_bot_on_the_same_key_exits_2_naming_the_other(tmp_path: Path) -> None:
    """Two `run`s on one key with two stores: the second is refused before it sends anything."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    async with run_simulator("calm", speed=1, api_key=generate_credential(),
                             api_secret=generate_credential()) as sim:
        config = write_config(tmp_path / "bot.toml")
        first = await start_daemon(daemon_env(sim, first_dir, config,
                                              XDG_RUNTIME_DIR=str(runtime)), first_dir)
        try:
            await asyncio.wait_for(first.saw("running 1 ad(s)").wait(), 30)
            status, _, err = await run_command(
                daemon_env(sim, second_dir, config, XDG_RUNTIME_DIR=str(runtime)), second_dir, "run")
        finally:
            first.signal(signal.SIGTERM)
            assert await first.wait() == 0
    assert status == 2
    assert f"another p2pbot (pid {first.proc.pid}, store {first_dir / 'bot.db'})" in err
    assert "with this API key" in err
    names = [p.name for p in runtime.iterdir()]
    assert len(names) == 1 and re.fullmatch(r"p2pbot-[0-9a-f]{16}\.lock", names[0])
    assert sim.api_key not in names[0] and sim.api_key not in err
    assert not (second_dir / "bot.db").exists()  # refused before the store was even opened


async def test_a_damaged_store_exits_2_saying_how_to_restore(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    store = await Store.open(db)
    await store.close()
    data = bytearray(db.read_bytes())
    data[:16] = b"not a database!!"
    db.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged):
        integrity_check(db)
    status, _, err = await run_command(_env(tmp_path), tmp_path, "run")
    assert status == 2
    assert f"the store {db} is damaged" in err and "backup" in err and f"cp BACKUP {db}" in err


def test_integrity_check_finds_a_damaged_page(tmp_path: Path) -> None:
    db = tmp_path / "pages.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE INDEX t_v ON t (v)")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"value {i:05}",) for i in range(3000)])
        conn.commit()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 't_v'").fetchone()[0]
    data = bytearray(db.read_bytes())
    start = (root - 1) * page_size
    data[start + 8: start + 200] = b"\xff" * 192  # scribble over the index's root page
    db.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged, match="integrity_check"):
        integrity_check(db)



async def test_backup_while_the_daemon_runs(fast_sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, db, web=False) as r:
        with InstanceLock(db):  # the running daemon holds it; backup must not need it
            await asyncio.wait_for(decided(r.bot, lambda ad, row: row.result == "applied").wait(), 10)
            args = argparse.Namespace(path=tmp_path / "backups", db=db)
            (tmp_path / "backups").mkdir()
            assert await asyncio.to_thread(backup_command.run, args) == 0
            more = decided(r.bot)
            await asyncio.wait_for(more.wait(), 10)  # still deciding and writing
            status, out, err = await run_command({**os.environ, "P2PBOT_DB": str(db)}, tmp_path,
                                                 "backup", str(tmp_path / "copy.db"))
            assert status == 0, err
            assert "written to" in out
    copies = [*(tmp_path / "backups").glob("p2pbot-*.db"), tmp_path / "copy.db"]
    assert len(copies) == 2
    for copy in copies:
        assert oct(copy.stat().st_mode & 0o777) == "0o600"
        integrity_check(copy)
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            applied = conn.execute(
                "SELECT COUNT(*) FROM price_decisions WHERE result = 'applied'").fetchone()[0]
            assert applied >= 1
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_backup_refuses_to_overwrite_the_store(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="overwrite the store"):
        backup(db, db)
    with pytest.raises(FileNotFoundError):
        backup(tmp_path / "absent.db", tmp_path / "x.db")


# --- file modes: the store holds counterparties' chat text -----------------------------------------


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """The umask of a shell outside systemd (022: files readable by everyone) for this block."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def _modes(folder: Path, prefix: str) -> dict[str, str]:
    return {p.name: _mode(p) for p in folder.iterdir() if p.name.startswith(prefix)}


async def test_the_store_and_its_wal_are_private_whatever_the_umask(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    with _umask(0o022):
        store = await Store.open(db)
        try:
            await store.execute("CREATE TABLE IF NOT EXISTS t (x)")
            files = [db, tmp_path / "bot.db-wal", tmp_path / "bot.db-shm"]
            assert {p.name: _mode(p) for p in files} == {p.name: "0o600" for p in files}
        finally:
            await store.close()


async def test_the_daemon_creates_every_file_private(fast_sim: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    env = daemon_env(fast_sim, tmp_path, config)
    with _umask(0o022):
        daemon = await start_daemon(env, tmp_path)
    try:
        await asyncio.wait_for(daemon.saw("running 1 ad").wait(), 20)
        made = _modes(tmp_path, "bot.db")
        assert set(made) >= {"bot.db", "bot.db-wal", "bot.db-shm", "bot.db.lock"}
        assert made == {name: "0o600" for name in made}
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    finally:
        await daemon.close()
    log = tmp_path / "logs" / "p2pbot.log"
    with _umask(0o022):
        status, _, err = await run_command(env, tmp_path, "--log-file", str(log), "check-config")
    assert status == 0, err
    assert _mode(log) == "0o600" and _mode(log.parent) == "0o700"
async def _fill_up(store: Store) -> None:
    """Make the store's disk 'full': no page may be added on this connection (SQLITE_FULL)."""
    row = await store.fetchone("PRAGMA page_count")
    await store.db.execute(f"PRAGMA max_page_count = {int(row[0])}")


async def _make_room(store: Store) -> None:
    await store.db.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_disk_is_named_rolled_back_and_reported_once(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    store = await Store.open(db)
    seen: list[bool] = []
    store.on_full.append(seen.append)
    try:
        await store.execute("CREATE TABLE t (v TEXT)")
        await _fill_up(store)
        for _ in range(3):
            with pytest.raises(StoreFull, match=f"the disk holding the store {db} is full"):
                async with store.transaction() as conn:
                    await conn.execute("INSERT INTO t VALUES ('first')")
                    await conn.executemany("INSERT INTO t VALUES (?)", [("x" * 2000,)] * 50)
        assert (await store.fetchone("SELECT COUNT(*) FROM t"))[0] == 0  # nothing half-written
        assert seen == [True]  # said once, not at every write
        await _make_room(store)
        await store.execute("INSERT INTO t VALUES ('back')")
        assert seen == [True, False] and store.full_since is None
    finally:
        await store.close()


async def test_pricing_goes_on_when_the_disk_fills_up(fast_sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, db, web=False) as r:
        await asyncio.wait_for(decided(r.bot).wait(), 10)
        await _fill_up(r.store)
        full = decided(r.bot, lambda ad, row: r.store.full_since is not None)
        await asyncio.wait_for(full.wait(), 10)
        more = decided(r.bot, lambda ad, row: row.result == "applied")
        await asyncio.wait_for(more.wait(), 10)  # still repricing after the disk filled up
        assert r.bot.fatal is None and not r.stop.is_set()


def test_a_full_disk_at_start_is_not_called_damage(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "bot.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
    # SQLite cannot create the -shm file on a full disk and says "disk I/O error"
    monkeypatch.setattr("state.db.shutil.disk_usage", lambda p: type("U", (), {"free": 0})())
    err = sqlite3.OperationalError("disk I/O error")
    assert is_full(err, db)
    monkeypatch.setattr("state.maintenance._read_only", lambda *_a: (_ for _ in ()).throw(err))
    with pytest.raises(StoreFull, match=f"the disk holding the store {db} is full") as caught:
        integrity_check(db)
    assert "cp BACKUP" not in str(caught.value) and "damaged" not in str(caught.value)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_store_deleted_or_replaced_under_the_bot_stops_it(
        fast_sim: Simulator, tmp_path: Path, how: str) -> None:
    db = tmp_path / "bot.db"
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, db, web=False) as r:
        await asyncio.wait_for(decided(r.bot).wait(), 10)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{db}{suffix}")
        if how == "replaced":
            fresh = await Store.open(tmp_path / "other.db")
            await fresh.close()
            os.replace(tmp_path / "other.db", db)
        await asyncio.wait_for(r.stop.wait(), 10)
        assert r.bot.fatal is not None and f"the store {db} was {how}" in r.bot.fatal
