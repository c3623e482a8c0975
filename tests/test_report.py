"""The report core (bot/report.py): buckets by day, ad and side; prices, spread, rates,
release times; the history merged into the store; text and CSV."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.report import ReportOrder, build, merge, render, render_csv

TZ = ZoneInfo("America/Sao_Paulo")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()  # type: ignore[misc]


def order(no: str, side: str, amount: str, total: str, when: float, status: int = 4,
          adv: str = "111", paid: float | None = None, released: float | None = None,
          source: str = "store") -> ReportOrder:
    return ReportOrder(no, status, side, "USDT", "BRL", Decimal(amount), Decimal(total), when,
                       adv, paid, released, source)


ORDERS = [
    order("1", "SELL", "100", "560.00", at(2026, 11, 23, 9, 0), paid=at(2026, 11, 23, 9, 5),
          released=at(2026, 11, 23, 9, 8)),
    order("2", "SELL", "50", "281.00", at(2026, 11, 23, 23, 59), paid=at(2026, 11, 24, 0, 1),
          released=at(2026, 11, 24, 0, 11)),
    order("3", "SELL", "10", "56.00", at(2026, 11, 24, 10, 0), status=6),
    order("4", "BUY", "120", "660.00", at(2026, 11, 24, 0, 0), adv="222"),
    order("5", "BUY", "30", "165.00", at(2026, 11, 24, 12, 0), adv="222", status=2),
    order("6", "BUY", "1", "5.50", at(2026, 11, 25, 0, 0), adv="222"),  # after the span
]


def test_buckets_by_the_merchants_day_ad_and_side() -> None:
    r = build(ORDERS, first=date(2026, 11, 23), last=date(2026, 11, 24), tz=TZ,
              labels={"111": "sell", "222": "buy"}, edits={"sell": 7})
    table = [(row.day.isoformat(), row.ad, row.side, row.bucket.orders, row.bucket.completed,
              row.bucket.cancelled, row.bucket.open, str(row.bucket.volume), str(row.bucket.fiat))
             for row in r.rows]
    assert table == [
        ("2026-11-23", "sell", "SELL", 2, 2, 0, 0, "150", "841.00"),  # 23:59 is still the 23rd
        ("2026-11-24", "buy", "BUY", 2, 1, 0, 1, "120", "660.00"),
        ("2026-11-24", "sell", "SELL", 1, 0, 1, 0, "0", "0"),
    ]
    assert r.total.orders == 5 and r.finished == 4
    assert r.rate(r.total.completed) == Decimal("0.75")
    assert r.rate(r.total.cancelled) == Decimal("0.25")
    (s,) = r.spreads
    assert s.sell.average == Decimal("841.00") / 150 and s.buy.average == Decimal("5.5")
    assert s.matched == 120
    assert s.earned == (Decimal("841.00") / 150 - Decimal("5.5")) * 120
    sell, buy = r.releases
    assert sell.seconds == (180.0, 600.0) and buy.seconds == ()
    assert sell.median() == 390.0 and sell.p90() == 600.0
    assert r.daily() == [
        {"day": "2026-11-23", "orders": 2, "buy_fiat": "0", "sell_fiat": "841.00"},
        {"day": "2026-11-24", "orders": 3, "buy_fiat": "660.00", "sell_fiat": "0"}]


def test_text_names_every_figure() -> None:
    r = build(ORDERS, first=date(2026, 11, 23), last=date(2026, 11, 24), tz=TZ,
              labels={"111": "sell", "222": "buy"}, edits={"sell": 7})
    text = render(r, "America/Sao_Paulo")
    assert text.splitlines()[0] == ("report 2026-11-23 .. 2026-11-24 (America/Sao_Paulo); "
                                    "5 orders (5 from the store)")
    assert "USDT/BRL: buy 5.50 (120 USDT), sell 5.61 (150 USDT); spread 0.11 (1.9%), " \
           "earned 12.80 BRL on 120 USDT bought and sold" in text
    assert "completion 75.0% (3 of 4 finished), cancellation 25.0% (1); 1 still open" in text
    assert "paid -> released, you released (SELL), 2 orders: median 6 min 30 s, " \
           "90% within 10 min, slowest 10 min" in text
    assert "price edits applied: sell 7" in text


def test_csv_has_one_row_per_day_ad_and_side() -> None:
    r = build(ORDERS, first=date(2026, 11, 23), last=date(2026, 11, 24), tz=TZ)
    lines = render_csv(r).splitlines()
    assert lines[0] == ("day,ad,adv_no,side,asset,fiat,orders,completed,cancelled,open,volume,"
                        "fiat_total,avg_price")
    assert lines[1] == "2026-11-23,111,111,SELL,USDT,BRL,2,2,0,0,150,841.00,5.61"
    assert len(lines) == 4


def test_the_history_adds_missed_orders_and_final_statuses() -> None:
    stored = [order("1", "SELL", "100", "560", at(2026, 11, 23, 9, 0), status=2)]
    history = [order("1", "SELL", "100", "560", at(2026, 11, 23, 9, 0), source="history"),
               order("9", "BUY", "5", "27", at(2026, 11, 23, 10, 0), source="history")]
    merged = {o.order_number: o for o in merge(stored, history)}
    assert merged["1"].status == 4 and merged["1"].source == "store"
    assert merged["9"].source == "history"
    r = build(merged.values(), first=date(2026, 11, 23), last=date(2026, 11, 23), tz=TZ)
    assert r.sources == {"store": 1, "history": 1}
    assert "2 orders (1 from the store, 1 from the order history)" in render(r, "x")


def test_an_empty_span_says_so() -> None:
    r = build([], first=date(2026, 11, 1), last=date(2026, 11, 2), tz=TZ)
    text = render(r, "UTC")
    assert "no orders in this span" in text and "completion - (0 of 0 finished)" in text
    assert [d["orders"] for d in r.daily()] == [0, 0]


async def test_the_command_reads_the_store_in_the_merchants_days(
        tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from p2pbot.cli import main
    from state.db import Store

    db = tmp_path / "bot.db"
    store = await Store.open(db)
    for no, side, total, when in (("1", "SELL", "560.00", at(2026, 11, 23, 23, 30)),
                                  ("2", "BUY", "540.00", at(2026, 11, 24, 0, 30))):
        await store.execute(
            "INSERT INTO orders (order_number, adv_no, side, asset, fiat, amount, total, price,"
            " status, created_at, updated_at, source) VALUES (?, '111', ?, 'USDT', 'BRL', '100',"
            " ?, NULL, 4, ?, ?, 'test')", (no, side, total, when, when))
    await store.close()
    config = tmp_path / "bot.toml"
    config.write_text('[bot]\ntimezone = "America/Sao_Paulo"\n')
    monkeypatch.setenv("P2PBOT_DB", str(db))
    monkeypatch.setenv("P2PBOT_CONFIG", str(config))
    args = ["report", "--no-exchange", "--from", "2026-11-23", "--to", "2026-11-24"]
    assert await asyncio.to_thread(main, args) == 0
    text = capsys.readouterr().out
    assert "(America/Sao_Paulo); 2 orders (2 from the store)" in text
    assert re.search(r"2026-11-23\s+111\s+SELL .* 560.00\s+5.60", text)  # 23:30 local: the 23rd
    assert await asyncio.to_thread(main, [*args, "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("2026-11-23,111,111,SELL")
    assert await asyncio.to_thread(main, ["report", "--from", "2026-11-25", "--to", "2026-11-24"]) == 2
    assert "--from 2026-11-25 is after --to 2026-11-24" in capsys.readouterr().err
    monkeypatch.setenv("P2PBOT_DB", str(tmp_path / "none.db"))
    assert await asyncio.to_thread(main, ["report"]) == 2
    assert "no store at" in capsys.readouterr().err
