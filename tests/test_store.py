"""The store: WAL, migrations by user_version, serialised writes, TEXT ids."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from state.db import Store, StoreError, StoreReplaced
from state.endpoints import EndpointLog, Transition
from state.meta import Meta
from state.migrations import MIGRATIONS


async def test_fresh_store_is_migrated_in_wal(tmp_path) -> None:
    store = await Store.open(tmp_path / "a.db")
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        row = await store.fetchone("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"
    finally:
        await store.close()
    again = await Store.open(tmp_path / "a.db")  # re-opening runs no migration twice
    try:
        assert await again.schema_version() == len(MIGRATIONS)
    finally:
        await again.close()


async def test_a_store_this_open_creates_is_marked_and_keeps_when_it_began_to_follow_orders(
        tmp_path) -> None:
    store = await Store.open(tmp_path / "new.db")
    try:
        assert await Meta(store).get("store_created_at") is not None
        assert await Meta(store).orders_since(1_751_796_000.1234) == 1_751_796_000.123
    finally:
        await store.close()
    again = await Store.open(tmp_path / "new.db")  # a restart: the first start's time stays
    try:
        assert await Meta(again).orders_since(1_751_799_999.0) == 1_751_796_000.123
    finally:
        await again.close()


@pytest.mark.parametrize("version", [1, len(MIGRATIONS)])
async def test_a_store_created_by_an_older_version_is_not_taken_for_a_new_one(
        tmp_path, version: int) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what an older version left: no mark
        for script in MIGRATIONS[:version]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version={version}")
    store = await Store.open(path)  # upgraded (or not) by this version
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await Meta(store).orders_since(1_751_796_000.0) is None
        assert await Meta(store).get("orders_since") is None
    finally:
        await store.close()


async def test_newer_schema_is_refused(tmp_path) -> None:
    store = await Store.open(tmp_path / "b.db")
    await store.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    await store.close()
    with pytest.raises(StoreError, match="newer than this bot"):
        await Store.open(tmp_path / "b.db")


async def test_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await Store.open(tmp_path / "nope" / "c.db")


async def test_concurrent_writers_are_serialised(tmp_path) -> None:
    store = await Store.open(tmp_path / "d.db")
    try:
        log = EndpointLog(store)
        await asyncio.gather(*(
            log.record_transition(Transition(float(i), "search", "unknown", "available", None, ""))
            for i in range(50)
        ))
        assert len(await log.transitions()) == 50
        assert (await log.last_states())["search"].state == "available"
    finally:
        await store.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_write_to_a_store_deleted_or_replaced_is_refused_and_said_once(
        tmp_path, how: str) -> None:
    """A write after the file changed would land in a file nobody reads: refused, from the
    first one, and the listener (the bot stops) told once with why."""
    path = tmp_path / "f.db"
    store = await Store.open(path)
    told: list[str] = []
    store.on_replaced.append(told.append)
    try:
        await Meta(store).set("before", "1")
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"f.db{suffix}").unlink(missing_ok=True)
        if how == "replaced":
            other = await Store.open(tmp_path / "other.db")
            await other.close()
            (tmp_path / "other.db").replace(path)
        for _ in range(2):
            with pytest.raises(StoreReplaced, match=f"was {how}"):
                await Meta(store).set("after", "1")
            with pytest.raises(StoreReplaced):
                await store.statement("INSERT INTO meta (key, value) VALUES ('x', '1')")
        assert len(told) == 1 and told[0].startswith(f"the store {path} was {how}"), told
    finally:
        await store.close()


async def test_failed_transaction_rolls_back(tmp_path) -> None:
    store = await Store.open(tmp_path / "e.db")
    try:
        with pytest.raises(RuntimeError):
            async with store.transaction() as db:
                await db.execute("INSERT INTO meta (key, value) VALUES ('x', '1')")
                raise RuntimeError("boom")
        assert await Meta(store).get("x") is None
    finally:
        await store.close()


async def test_transitions_filter_by_endpoint_and_time(tmp_path) -> None:
    store = await Store.open(tmp_path / "f.db")
    try:
        log = EndpointLog(store)
        for at, ep in [(10.0, "search"), (20.0, "my_ads"), (30.0, "search")]:
            await log.record_transition(Transition(at, ep, "unknown", "unregistered", -2008, "x"))
        assert [t.at for t in await log.transitions("search")] == [10.0, 30.0]
        assert [t.at for t in await log.transitions(since=15, until=25)] == [20.0]
    finally:
        await store.close()


async def test_meta_reads_every_key_of_a_prefix_in_one_call(tmp_path) -> None:
    """The schedule keeper reads what it took out of every ad at once: only its keys, even
    with a prefix holding LIKE's wildcards."""
    from state.meta import Meta

    store = await Store.open(tmp_path / "m.db")
    try:
        meta = Meta(store)
        await meta.set("schedule_put_away:1", "offline")
        await meta.set("schedule_put_away:2", "")
        await meta.set("scheduleXput_away:3", "hide")  # `_` would match X in a LIKE
        await meta.set("ip_ban_until", "0")
        assert await meta.prefixed("schedule_put_away:") == {
            "schedule_put_away:1": "offline", "schedule_put_away:2": ""}
    finally:
        await store.close()
