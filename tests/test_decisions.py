"""The decision log: repeated holds are counted on one row, a snapshot is one transaction,
old decisions are deleted a bounded batch at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.binance.models import SearchItem, parse
from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry
from bot.events import MarketSnapshot
from bot.ops import status_api as status
from bot.pricing.engine import AdRuntime, PricingEngine
from bot.pricing.retention import INTERVAL, PAUSE, DecisionRetention, next_delay
from config.loader import load_config
from p2pbot.cli import main
from state.db import Store
from state.decisions import DecisionLog, DecisionRow, same, same_as
from state.migrations import MIGRATIONS
from strategies.base import OwnAd, Side
from tests.support import FakeClient, FakeClock, search_item

DAY = 86400.0


def hold(at: float, reason: str = "kill switch", adv_no: str = "1", **kw: object) -> DecisionRow:
    return DecisionRow(at, "sell", adv_no, "fixed", D("92.50"), None, "held", reason,
                       trace={"rank": 1, "kept": 7}, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "d.db")
    yield s
    await s.close()


@contextlib.contextmanager
def counting(store: Store) -> Iterator[list[int]]:
    """Counts the write transactions opened on `store` inside the block (a single statement
    written by `Store.statement` is a transaction of its own)."""
    opened: list[int] = []
    real, one = store.transaction, store.statement

    def spy():  # type: ignore[no-untyped-def]
        opened.append(1)
        return real()

    def statement(*args):  # type: ignore[no-untyped-def]
        opened.append(1)
        return one(*args)

    store.transaction, store.statement = spy, statement  # type: ignore[method-assign]
    try:
        yield opened
    finally:
        store.transaction, store.statement = real, one  # type: ignore[method-assign]


async def count(store: Store) -> int:
    row = await store.fetchone("SELECT COUNT(*) FROM price_decisions")
    assert row is not None
    return int(row[0])


async def test_identical_holds_are_one_row_with_their_repeat_count(store: Store) -> None:
    log = DecisionLog(store)
    for i in range(5):
        staged = await log.record(hold(100.0 + i))
    assert staged.repeats == 5 and staged.since == 100.0 and staged.at == 104.0
    (row,) = await log.recent()
    assert (row.repeats, row.since, row.at, row.reason) == (5, 100.0, 104.0, "kill switch")
    assert await count(store) == 1


async def test_a_changed_reason_or_input_starts_a_new_row(store: Store) -> None:
    log = DecisionLog(store)
    await log.record(hold(1.0))
    await log.record(hold(2.0))
    await log.record(hold(3.0, "floor reached"))  # the reason changed
    await log.record(replace(hold(4.0, "floor reached"), trace={"rank": 2}))  # an input changed
    await log.record(replace(hold(5.0, "floor reached"), trace={"rank": 2, "kept": 9}))  # tail only
    rows = await log.recent()
    assert [(r.reason, r.repeats, r.trace.get("rank")) for r in rows] == [
        ("floor reached", 2, 2), ("floor reached", 1, 1), ("kill switch", 2, 1)]


def test_two_decisions_are_the_same_exactly_when_their_keys_are_equal() -> None:
    """`same` (what staging compares) says what comparing `same_as` keys says, for every pair of
    a set of decisions that differ one field at a time, the spellings of one value included."""
    base = replace(hold(1.0), trace={"rank": 1, "kept": 7, "best": [{"price": "92.40"}]})
    variants = [
        base, replace(base, at=9.0), replace(base, reason="floor reached"),
        replace(base, result="dry_run"), replace(base, ad="buy"), replace(base, strategy="undercut"),
        replace(base, code=187049), replace(base, price_before=D("92.5")),
        replace(base, price_before=D("92.50")), replace(base, target=D("92.40")),
        replace(base, target=D("92.4")), replace(base, target=D("0")),
        replace(base, target=D("0.00")), replace(base, guards=("tick",)),
        replace(base, guards=["tick"]),  # type: ignore[arg-type]
        replace(base, trace={"rank": 1, "kept": 9, "best": [{"price": "92.40"}]}),  # tail only
        replace(base, trace={"rank": 1, "kept": 7, "filtered_out": {"own": 2},
                             "best": [{"price": "92.40"}]}),
        replace(base, trace={"rank": 2, "kept": 7, "best": [{"price": "92.40"}]}),
        replace(base, trace={"rank": 1, "best": [{"price": "92.4"}]}),
        replace(base, trace={}),
    ]
    for a in variants:
        for b in variants:
            assert same(a, b) == (same_as(a) == same_as(b)), (a, b)


async def test_an_applied_update_is_never_folded_and_breaks_a_run(store: Store) -> None:
    log = DecisionLog(store)
    applied = replace(hold(2.0), result="applied", target=D("92.40"))
    for row in (hold(1.0), applied, replace(applied, at=3.0), hold(4.0), hold(5.0)):
        await log.record(row)
    assert [(r.result, r.repeats) for r in await log.recent()] == [
        ("held", 2), ("applied", 1), ("applied", 1), ("held", 1)]


async def test_each_ad_keeps_its_own_run(store: Store) -> None:
    log = DecisionLog(store)
    for i in range(3):
        log.stage(hold(float(i), adv_no="1"))
        log.stage(hold(float(i), adv_no="2"))
    await log.flush()
    assert sorted((r.adv_no, r.repeats) for r in await log.recent()) == [("1", 3), ("2", 3)]


async def test_staged_decisions_are_written_in_one_transaction(store: Store) -> None:
    log = DecisionLog(store)
    with counting(store) as opened:
        for i in range(10):
            log.stage(hold(float(i), adv_no=str(i)))
        await log.flush()
        await log.flush()  # nothing staged: no transaction
    assert len(opened) == 1 and await count(store) == 10


# --- the engine: one snapshot, one transaction ------------------------------------------------

TWO_ADS = """
[bot]
kill_switch = true
[[ads]]
name = "one"
adv_no = "11111111111111111111"
strategy = "fixed"
[ads.params]
price = "92.00"
[ads.guards]
floor = "80"
ceiling = "99"
[[ads]]
name = "two"
adv_no = "22222222222222222222"
strategy = "fixed"
[ads.params]
price = "92.00"
[ads.guards]
floor = "80"
ceiling = "99"
"""


def own(adv_no: str) -> OwnAd:
    return OwnAd(adv_no=adv_no, side=Side.SELL, asset="USDT", fiat="RUB", price=D("92.50"),
                 min_amount=D(500), max_amount=D(10000), available=D(100))


async def test_a_snapshot_of_two_ads_is_one_transaction(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(TWO_ADS, encoding="utf-8")
    loaded = load_config(path)
    clock = FakeClock()
    registry = CapabilityRegistry(FakeClient(clock))  # type: ignore[arg-type]
    ads = [AdRuntime(ad, own=own(ad.config.adv_no or "")) for ad in loaded.ads]
    log = DecisionLog(store)
    engine = PricingEngine(ads, api=P2PApi(registry), registry=registry, clock=clock, log=log,
                           kill_switch=True)
    items = tuple(parse(list[SearchItem], [search_item(advNo="33333333333333333333")], "search"))
    with counting(store) as opened:
        for _ in range(4):
            clock.advance(10)
            await engine.on_market(MarketSnapshot("USDT", "RUB", "BUY", items, 1, clock.time()))
    assert len(opened) == 4  # one per snapshot, not one per ad
    rows = await log.recent()
    assert sorted((r.ad, r.result, r.repeats) for r in rows) == [("one", "held", 4),
                                                                 ("two", "held", 4)]
    assert ads[0].last is not None and ads[0].last.repeats == 4
    assert engine.counts == {"held": 8}  # every decision is counted, stored or not


# --- retention ------------------------------------------------------------------------------


async def test_retention_deletes_old_rows_a_bounded_batch_per_pass(store: Store) -> None:
    clock = FakeClock(start=100 * DAY)
    log = DecisionLog(store)
    for i in range(25):  # 25 decisions from 40 days ago, each its own row
        log.stage(hold(60 * DAY + i, reason=f"r{i}"))
    log.stage(hold(95 * DAY, reason="recent"))
    await log.flush()
    retention = DecisionRetention(log, clock, days=30, batch=10)
    assert [await retention.prune_once() for _ in range(4)] == [10, 10, 5, 0]
    assert [r.reason for r in await log.recent()] == ["recent"]
    clock.advance(26 * DAY)  # now 31 days after the recent one
    assert await retention.prune_once() == 1 and await count(store) == 0


async def test_a_repeated_hold_is_kept_while_it_repeats(store: Store) -> None:
    clock = FakeClock(start=100 * DAY)
    log = DecisionLog(store)
    await log.record(hold(10 * DAY))  # first made 90 days ago ...
    await log.record(hold(99 * DAY))  # ... and still yesterday
    assert await DecisionRetention(log, clock, days=30).prune_once() == 0
    assert (await log.recent())[0].repeats == 2


async def test_retention_runs_on_the_clock_until_caught_up(store: Store) -> None:
    clock = FakeClock(start=100 * DAY)
    log = DecisionLog(store)
    for i in range(25):
        log.stage(hold(1 * DAY + i, reason=f"r{i}"))
    await log.flush()
    retention = DecisionRetention(log, clock, days=30, batch=10)

    async def stop_when_idle(seconds: float) -> None:
        await FakeClock.sleep(clock, seconds)
        if seconds == INTERVAL:
            raise LookupError("caught up")

    clock.sleep = stop_when_idle  # type: ignore[method-assign]
    with pytest.raises(LookupError):
        await retention.run()
    assert clock.sleeps == [PAUSE, PAUSE, INTERVAL] and retention.deleted == 25
    assert next_delay(10, 10) == PAUSE and next_delay(3, 10) == INTERVAL


def test_the_migration_keeps_rows_written_before_it(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # a store of the version before
        for script in MIGRATIONS[:3]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version=3")
        conn.execute("INSERT INTO price_decisions (at, ad, adv_no, strategy, price_before, result,"
                     " reason) VALUES (5, 'a', '1', 'fixed', '1', 'held', 'x')")
        conn.commit()

    async def read() -> list[DecisionRow]:
        store = await Store.open(db)
        try:
            return await DecisionLog(store).recent(since=4.0)
        finally:
            await store.close()

    (row,) = asyncio.run(read())
    assert (row.at, row.repeats, row.first_at, row.reason) == (5.0, 1, None, "x")


# --- read back: history and the status page ---------------------------------------------------


async def test_history_and_the_status_document_show_the_repeat_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.db"
    store = await Store.open(db)
    try:
        log = DecisionLog(store)
        for i in range(3):
            await log.record(hold(1_700_000_000.0 + i))
        (row,) = await log.recent()
        assert status.decision(row)["repeats"] == 3
        assert status.decision(row)["first_at"] == 1_700_000_000.0
    finally:
        await store.close()
    monkeypatch.setenv("P2PBOT_DB", str(db))
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["history", "--show", "decisions", "--json"]) == 0
    (got,) = json.loads(capsys.readouterr().out)["decisions"]
    assert (got["repeats"], got["first_at"], got["at"]) == (3, 1_700_000_000.0, 1_700_000_002.0)
    (tmp_path / "utc.toml").write_text('[bot]\ntimezone = "UTC"\n')
    assert await asyncio.to_thread(main, ["history", "--show", "decisions",
                                          "--config", "utc.toml"]) == 0
    out = capsys.readouterr().out
    assert "x3" in out and "kill switch" in out and "until 2023-11-14 22:13:22" in out


async def test_history_shows_the_merchants_time_and_reads_since_in_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The times are in `[bot] timezone` (they were UTC, unlike `report` and the status page),
    and a --since without a zone is the merchant's time too."""
    db = tmp_path / "h.db"
    store = await Store.open(db)
    try:
        log = DecisionLog(store)
        await log.record(hold(1_700_000_000.0))  # 2023-11-14 22:13:20 UTC, 19:13:20 in Sao Paulo
        await log.record(hold(1_700_010_000.0, reason="later"))  # 22:00:00 there
    finally:
        await store.close()
    monkeypatch.setenv("P2PBOT_DB", str(db))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bot.toml").write_text('[bot]\ntimezone = "America/Sao_Paulo"\n')
    monkeypatch.setenv("P2PBOT_CONFIG", str(tmp_path / "bot.toml"))
    assert await asyncio.to_thread(main, ["history", "--show", "decisions"]) == 0
    out = capsys.readouterr().out
    assert "time (America/Sao_Paulo)" in out and "2023-11-14 19:13:20" in out, out
    # 20:00 in Sao Paulo is 23:00 UTC: only the later decision is after it
    assert await asyncio.to_thread(main, ["history", "--show", "decisions",
                                          "--since", "2023-11-14T20:00"]) == 0
    out = capsys.readouterr().out
    assert "later" in out and "2023-11-14 19:13:20" not in out, out


async def test_the_status_chart_holds_a_repeated_price_from_its_first_time(store: Store) -> None:
    log = DecisionLog(store)
    for at in (100.0, 110.0, 120.0):
        await log.record(hold(at))
    clock = FakeClock(start=130.0)
    bot = SimpleNamespace(decisions=log, clock=clock)
    ad = SimpleNamespace(own=own("1"))
    points = await status.history(bot, ad, since=50.0)  # type: ignore[arg-type]
    assert [(p["at"], p["result"]) for p in points] == [(100.0, "held"), (120.0, "held"),
                                                        (130.0, "now")]


# --- a snapshot of many ads: a few statements, every row where it belongs -----------------------


async def test_a_flush_of_many_decisions_is_a_few_statements_and_keeps_each_rows_repeats(
        store: Store) -> None:
    log = DecisionLog(store)
    statements: list[str] = []
    real = store.db.execute

    def spy(sql, *args):  # type: ignore[no-untyped-def]
        statements.append(sql.split()[0])
        return real(sql, *args)

    async def flush() -> list[str]:
        statements.clear()
        await log.flush()
        return list(statements)

    store.db.execute = spy  # type: ignore[method-assign]
    try:
        for n in range(60):  # 60 ads, each its own first decision: 60 new rows
            log.stage(hold(1000.0, reason=f"r{n}", adv_no=str(n)))
        assert await flush() == ["INSERT"]  # one statement, no BEGIN/COMMIT round trips
        for n in range(60):  # the same again: 60 repeats, and one new decision
            log.stage(hold(1010.0, reason=f"r{n}", adv_no=str(n)))
        log.stage(hold(1010.0, reason="new", adv_no="60"))
        assert await flush() == ["INSERT"]  # an upsert: the repeats counted, the new row added
        for n in range(150):  # more than one statement takes: one transaction
            log.stage(hold(1020.0, reason=f"r{n}", adv_no=str(n)))
        assert await flush() == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]
    finally:
        store.db.execute = real  # type: ignore[method-assign]
    rows = await log.recent(limit=500)
    assert len(rows) == 61 + 90  # 0..59 repeated three times; "new", then 90 first decisions
    by_ad = {(r.adv_no, r.reason): r for r in rows}
    assert all(by_ad[(str(n), f"r{n}")].repeats == 3 for n in range(60))
    assert by_ad[("60", "new")].repeats == 1 and by_ad[("60", "r60")].repeats == 1
    assert all(by_ad[(str(n), f"r{n}")].at == 1020.0 for n in range(60, 150))
    assert (await log.recent(adv_no="7"))[0].since == 1000.0
