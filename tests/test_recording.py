"""The recording in the store: what a decision keeps, retention by age and by size; export."""

from __future__ import annotations

import gzip
import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.binance.models import Ad, SearchItem
from bot.events import MarketSnapshot, OwnAdsUpdate, ReferenceUpdate
from bot.recording import data
from bot.recording.recorder import ROW_FIELDS, Recorder
from p2pbot.cli import main
from state.db import Store
from state.decisions import DecisionRow
from state.recording import RecordingLog, pack
from strategies.base import OwnAd, Reference, Side
from tests.support import FakeClock

NOW = 1_767_225_600.0


def item(adv_no: str, user: str, nick: str, price: str) -> SearchItem:
    return SearchItem.model_validate({
        "adv": {"advNo": adv_no, "price": price, "minSingleTransAmount": "500",
                "maxSingleTransAmount": "50000", "tradableQuantity": "1000",
                "tradeMethods": [{"identifier": "SBP"}]},
        "advertiser": {"nickName": nick, "userNo": user, "userType": "merchant",
                       "monthOrderCount": 900, "monthFinishRate": "0.98"}})


def snapshot(at: float) -> MarketSnapshot:
    items = (item("9001", "u-alpha-1", "AlphaTrader", "92.40"),
             item("777", "me-42", "MyDesk", "92.45"),
             item("9002", "u-beta-2", "BetaBot", "92.46"))
    return MarketSnapshot("USDT", "RUB", "BUY", items, 3, at)


def decide(rec: Recorder, snap: MarketSnapshot, at: float, reason: str) -> None:
    own = OwnAd(adv_no="777", side=Side.SELL, asset="USDT", fiat="RUB", price=Decimal("92.45"),
                min_amount=Decimal(500), max_amount=Decimal(50000), available=Decimal(1000))
    engine = SimpleNamespace(open_orders=lambda adv_no: 2,
                             registry=SimpleNamespace(enabled=lambda: frozenset({"market"})))
    ad = SimpleNamespace(own=own, label="sell", online=True, rank=2, standing=2,
                         reference=Reference(Decimal("92.5"), "exchange", age=3.0))
    row = DecisionRow(at, "sell", "777", "undercut", own.price, Decimal("92.39"), "applied", reason)
    rec.decided(engine, ad, snap, row)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = await Store.open(tmp_path / "bot.db")
    yield s
    await s.close()


async def test_a_snapshot_is_kept_once_before_the_decisions_made_on_it(store: Store) -> None:
    log = RecordingLog(store)
    rec = Recorder(log, FakeClock(NOW))
    snap = snapshot(NOW)
    decide(rec, snap, NOW, "1st: 92.39, 0.01 below 'AlphaTrader' (92.40)")
    decide(rec, snap, NOW, "again")  # a second ad of the same market: the snapshot once
    decide(rec, snapshot(NOW + 10), NOW + 10, "next")
    await rec.flush()
    got = [(e.kind, e.at) async for e in log.read()]
    assert got == [("market", NOW), ("decision", NOW), ("decision", NOW), ("market", NOW + 10),
                   ("decision", NOW + 10)]
    first = [e async for e in log.read()][0].body
    assert first["rows"][0] == ["9001", "u-alpha-1", "AlphaTrader", "92.40", "500", "50000",
                                "1000", ["SBP"], 1, 900, "0.98", None]
    assert len(first["rows"][0]) == len(ROW_FIELDS)
    decision = [e async for e in log.read()][1].body
    assert decision["reference"] == {"price": "92.5", "source": "exchange", "age": 3.0,
                                     "stale": False}
    assert (decision["open"], decision["rank"], decision["caps"]) == (2, 2, ["market"])


async def test_retention_drops_old_rows_then_the_oldest_while_over_the_size(store: Store) -> None:
    log = RecordingLog(store, retention_days=14, max_mb=1)
    rec = Recorder(log, FakeClock(NOW))
    for i in range(40):  # 40 days, one snapshot a day
        decide(rec, snapshot(NOW - (39 - i) * 86400), NOW - (39 - i) * 86400, f"day {i}")
    await rec.flush()
    assert await log.prune(NOW) == 25  # older than 14 days: 25 days, a row of 2 entries each
    assert [e.at async for e in log.read()][0] == NOW - 14 * 86400
    small = RecordingLog(store, retention_days=14, max_mb=1)
    small.max_bytes = await small.size() // 2  # a bound half the size: the oldest half goes
    await small.prune(NOW)
    left = [e async for e in log.read()]
    assert await small.size() <= small.max_bytes
    assert left and left[-1].at == NOW and left[0].at > NOW - 14 * 86400


async def _rows(store: Store) -> list[tuple[float, str, int]]:
    """The stored rows: (at, kind, size)."""
    return [(float(r[0]), str(r[1]), int(r[2])) for r in await store.fetchall(
        "SELECT at, kind, size FROM recording ORDER BY id")]


async def test_a_flush_stores_a_minute_of_entries_compressed_together(store: Store) -> None:
    log = RecordingLog(store)
    rec = Recorder(log, FakeClock(NOW))
    for i in range(30):  # two minutes of a snapshot and a decision every 4 s
        decide(rec, snapshot(NOW + 4 * i), NOW + 4 * i, f"step {i}")
    await rec.flush()
    rows = await _rows(store)
    # a row per 60 s of entries, its `at` its newest entry's: 0..60, 64..116
    assert [(at - NOW, kind) for at, kind, _ in rows] == [(60.0, "batch"), (116.0, "batch")]
    got = [e async for e in log.read()]
    assert [(e.kind, e.at - NOW) for e in got] == [
        (kind, 4.0 * i) for i in range(30) for kind in ("market", "decision")]
    assert got[-1].body["reason"] == "step 29" and got[-2].body["rows"][0][0] == "9001"
    alone = sum(len(pack(e.body)) for e in got)  # each entry compressed on its own
    assert sum(size for _, _, size in rows) * 4 < alone
    # a span inside a row: its entries alone
    inside = [(e.kind, e.at - NOW) async for e in log.read(NOW + 8, NOW + 12)]
    assert inside == [("market", 8.0), ("decision", 8.0), ("market", 12.0), ("decision", 12.0)]
    assert await log.prune(NOW + 14 * 86400 + 61) == 1  # the first row (16 steps of 2 entries)
    assert [e.at - NOW async for e in log.read()][0] == 64.0


OLD = [(NOW - 100, "market", {"asset": "USDT", "fiat": "RUB", "side": "BUY",
                              "rows": [["9001", "u-alpha-1", "AlphaTrader", "92.40", "500",
                                        "50000", "1000", ["SBP"], 1, 900, "0.98", None]]}),
       (NOW - 100, "decision", {"ad": "sell", "reason": "old"}),
       (NOW - 50, "reference", {"price": "92.5"})]


async def _old_and_new(db: Path) -> list[tuple[float, str, Any]]:
    """A recording from before the batches (a row per entry, as `pack` stored them), newer
    rows after it; what reading it gives."""
    store = await Store.open(db)
    try:
        async with store.transaction() as conn:
            await conn.executemany(
                "INSERT INTO recording (at, kind, body, size) VALUES (?, ?, ?, ?)",
                [(at, kind, pack(body), len(pack(body))) for at, kind, body in OLD])
        log = RecordingLog(store, retention_days=1)
        log.stage(NOW, "reference", {"price": "92.6"})
        log.stage(NOW + 1, "decision", {"ad": "sell", "reason": "new"})
        await log.flush()
        got = [(e.at, e.kind, e.body) async for e in log.read()]
        assert [(e.at, e.kind) async for e in log.read(NOW - 60, NOW)] == [
            (NOW - 50, "reference"), (NOW, "reference")]
        return got
    finally:
        await store.close()


def test_rows_written_one_entry_each_are_still_read_and_exported(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "bot.db"
    assert asyncio.run(_old_and_new(db)) == [
        *OLD, (NOW, "reference", {"price": "92.6"}),
        (NOW + 1, "decision", {"ad": "sell", "reason": "new"})]
    out = tmp_path / "r.jsonl.gz"
    assert main(["export", "--db", str(db), "--from", "2025-12-01", "--raw-ids",
                 "--out", str(out)]) == 0
    kinds = [json.loads(line)["kind"] for line in _text(out).splitlines()[1:]]  # after the header
    assert kinds == ["ad", "market", "decision", "reference", "reference", "decision", "end"]


async def test_rows_of_one_entry_and_of_several_are_pruned_together(store: Store) -> None:
    async with store.transaction() as conn:
        await conn.executemany(
            "INSERT INTO recording (at, kind, body, size) VALUES (?, ?, ?, ?)",
            [(at, kind, pack(body), len(pack(body))) for at, kind, body in OLD])
    log = RecordingLog(store, retention_days=1)
    log.stage(NOW - 40, "reference", {"price": "92.6"})
    log.stage(NOW, "decision", {"ad": "sell", "reason": "new"})
    await log.flush()  # one row of two entries, its `at` NOW
    assert await log.prune(NOW - 60 + 86400) == 2  # the two old rows before NOW - 60
    assert await log.prune(NOW - 1 + 86400) == 1  # the last old one; the new row holds NOW
    assert [e.at async for e in log.read()] == [NOW - 40, NOW]
    assert await log.prune(NOW + 1 + 86400) == 1 and [e async for e in log.read()] == []


async def _filled(tmp_path: Path) -> Path:
    db = tmp_path / "bot.db"
    s = await Store.open(db)
    try:
        rec = Recorder(RecordingLog(s), FakeClock(NOW))
        decide(rec, snapshot(NOW), NOW, "1st: 92.39, 0.01 below 'AlphaTrader' (92.40)")
        await rec.on_reference(ReferenceUpdate("USDT", "RUB", "SELL", Decimal("92.5"), NOW + 1))
        await rec.on_own_ads(OwnAdsUpdate((Ad.model_validate(
            {"advNo": "777", "price": "92.45", "tradeType": "SELL", "asset": "USDT",
             "fiatUnit": "RUB", "advStatus": 1, "remarks": "call me on +7 900"}),), NOW + 2))
        await rec.on_order(SimpleNamespace(old=None, new=1, at=NOW + 5, order=SimpleNamespace(
            order_number="2200000001", adv_no="777", side="SELL", asset="USDT", fiat="RUB",
            amount=Decimal("10"), total=Decimal("924.5"), price=Decimal("92.45"),
            counterparty="Jane Doe")))
        await rec.flush()
    finally:
        await s.close()
    return db


def _text(path: Path) -> str:
    with gzip.open(path, "rt") as f:
        return f.read()


def test_export_pseudonymises_ids_and_names_with_a_fresh_salt_each_time(tmp_path: Path) -> None:
    import asyncio

    db = asyncio.run(_filled(tmp_path))
    one, two, raw = tmp_path / "1.jsonl.gz", tmp_path / "2.jsonl.gz", tmp_path / "raw.jsonl.gz"
    for out, extra in ((one, []), (two, []), (raw, ["--raw-ids"])):
        assert main(["export", "--db", str(db), "--from", "2025-12-01", "--out", str(out),
                     *extra]) == 0
    text = _text(one)
    # a pseudonym is 12 hex digits of a salted hash: it may spell "9001" by chance, so the
    # secrets are looked for in everything else
    outside_pseudonyms = re.sub(r"\b[aun]-[0-9a-f]{12}\b", "<pseudonym>", text)
    for secret in ("u-alpha-1", "AlphaTrader", "me-42", "MyDesk", "9001", "Jane Doe",
                   "2200000001"):
        assert secret not in outside_pseudonyms, secret
    header, *body, end = (json.loads(line) for line in text.splitlines())
    assert header["format"] == "p2pbot-recording" and header["version"] == 1
    assert header["columns"] == list(ROW_FIELDS) and header["pseudonymised"] is True
    assert header["moving"] == ["adv_no", "price", "max", "available"]
    assert [line["kind"] for line in body] == ["ad", "ad", "ad", "market", "decision",
                                               "reference", "own", "order"]
    assert end == {"kind": "end", "lines": 8}
    alpha, mine, _, market, decision, reference, own, order = body
    assert (reference["price"], reference["side"]) == ("92.5", "SELL")
    assert own["ads"][0]["adv_no"] == mine["adv_no"] and "+7 900" not in text  # no remarks
    assert market["rows"][0] == [alpha["ref"], "92.40", "50000", "1000"]  # what moves, by ref
    nick = alpha["nickname"]
    assert nick.startswith("n-") and f"'{nick}'" in decision["reason"]  # the reason agrees
    assert alpha["user_no"].startswith("u-") and alpha["adv_no"].startswith("a-")
    assert decision["adv_no"] == mine["adv_no"] == order["adv_no"]  # our ad, one pseudonym
    assert set(order) == {"at", "kind", "adv_no", "side", "asset", "fiat", "amount", "total",
                          "price", "status"}
    other = json.loads(_text(two).splitlines()[1])
    assert other["user_no"] != alpha["user_no"]  # a new salt per export
    raw_ad = json.loads(_text(raw).splitlines()[1])
    assert (raw_ad["adv_no"], raw_ad["user_no"], raw_ad["nickname"]) == \
        ("9001", "u-alpha-1", "AlphaTrader")
    rows = data.read(one).entries[0][2]["rows"]
    assert rows[0][1:] == [alpha["user_no"], nick, "92.40", "500", "50000", "1000", ["SBP"], 1,
                           900, "0.98", None]
    assert data.read(one).entries[0][1] == "market"


def test_export_without_a_store_or_data_exits_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl.gz"
    assert main(["export", "--db", str(tmp_path / "none.db"), "--out", str(out)]) == 2
    assert "no store at" in capsys.readouterr().err and not out.exists()
    import asyncio

    db = asyncio.run(_filled(tmp_path))
    assert main(["export", "--db", str(db), "--from", "2020-01-01", "--to", "2020-01-02",
                 "--out", str(out)]) == 2
    assert "nothing recorded" in capsys.readouterr().err and not out.exists()
    assert main(["export", "--db", str(db), "--from", "yesterday-ish", "--out", str(out)]) == 2
    assert not out.exists()
