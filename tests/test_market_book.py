"""The lean parse of search replies and the market book built once per snapshot: the same
competitors, filters and ranks as the strict models and the per-ad path, and a malformed
reply is still a classified error."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest

from bot.binance.errors import BadResponse, ShapeChanged
from bot.binance.models import SearchItem, parse
from bot.binance.search import SearchRow, from_item, parse_search
from bot.pricing.engine import AdRuntime, to_competitor
from bot.pricing.market_book import MarketBook, competitor
from strategies.base import OwnAd, Side
from strategies.filters import RULES, CompetitorFilters
from tests.support import search_item


def wire(rows: list[dict[str, Any]]) -> Any:
    """The rows as the client decodes a reply: JSON numbers as Decimal."""
    return json.loads(json.dumps(rows), parse_float=Decimal)


def market(seed: int, n: int = 20) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        row = search_item(advNo=f"{k:020d}", price=f"{rng.uniform(90, 95):.2f}",
                          minSingleTransAmount=str(rng.choice((100, 500, 2000))),
                          maxSingleTransAmount=str(rng.choice((800, 20000))),
                          dynamicMaxSingleTransAmount=rng.choice((None, "15000.00")),
                          tradableQuantity=rng.choice(("0", "12.5", None)),
                          tradeMethods=[{"identifier": rng.choice(("A", "B", "")), "payId": 7}])
        row["advertiser"].update(userNo=f"s{k:032x}", userType=rng.choice(("merchant", "user")),
                                 monthOrderCount=rng.choice((None, 3, 700)),
                                 monthFinishRate=rng.choice(("0.85", 0.99, None)))
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_the_lean_parse_makes_the_competitors_the_strict_models_make(seed: int) -> None:
    data = wire(market(seed))
    lean = parse_search(data, "search")
    strict = parse(list[SearchItem], data, "search")
    assert [competitor(r) for r in lean] == [to_competitor(i) for i in strict]
    assert [(r.adv.adv_no, r.adv.price, r.adv.price_floating_ratio, r.advertiser.user_no)
            for r in lean] == [(i.adv.adv_no, i.adv.price, i.adv.price_floating_ratio,
                                i.advertiser.user_no) for i in strict]


def test_a_competitor_built_fast_equals_one_built_with_its_checks() -> None:
    row = parse_search(wire(market(1, 1)))[0]
    fast = competitor(row)
    assert fast == to_competitor(parse(list[SearchItem], wire(market(1, 1)), "search")[0])
    assert vars(fast).keys() == {f for f in type(fast).__dataclass_fields__}  # every field set


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[1]["adv"].pop("price"), "data[1].adv.price: field required"),
        (lambda r: r[0]["adv"].update(price="abc"), "data[0].adv.price: expected a decimal number"),
        (lambda r: r[2]["adv"].update(price="NaN"), "data[2].adv.price: expected a finite"),
        (lambda r: r[0].pop("advertiser"), "data[0].advertiser: field required"),
        (lambda r: r[3]["advertiser"].update(nickName=None), "data[3].advertiser.nickName"),
        (lambda r: r[0]["adv"].update(advNo=1.5), "data[0].adv.advNo: an id must be"),
        (lambda r: r[0]["adv"].update(tradeMethods=None), "data[0].adv.tradeMethods"),
        (lambda r: r.append("row"), "data[4]"),
    ],
)
def test_a_malformed_reply_is_a_bad_response_naming_the_field(change: Any, message: str) -> None:
    rows = market(2, 4)
    change(rows)
    with pytest.raises(BadResponse) as raised:
        parse_search(wire(rows), "search")
    assert raised.value.endpoint == "search" and raised.value.msg.startswith(message)


def test_a_null_page_is_a_shape_change_not_a_crash() -> None:
    with pytest.raises(BadResponse, match="data: input should be a valid list"):
        parse_search(None, "search")
    assert issubclass(ShapeChanged, BadResponse)


def test_what_looks_odd_but_the_models_accept_is_taken_from_them() -> None:
    rows = market(3, 3)
    rows[1]["advertiser"]["monthOrderCount"] = "42"  # a number as text: the models take it
    rows[2]["adv"]["price"] = 92.5  # a float from other code: read through its shortest repr
    lean = parse_search(rows, "search")
    assert lean[1].advertiser.month_orders == 42 and lean[2].adv.price == Decimal("92.5")
    assert all(isinstance(r, SearchRow) for r in lean)


# --- the book: filters screened once per snapshot give what each ad's own pass gives ------------


def own(side: Side, adv_no: str = "00000000000000000003") -> OwnAd:
    return OwnAd(adv_no=adv_no, side=side, asset="USDT", fiat="RUB", price=Decimal("92.50"),
                 min_amount=Decimal(500), max_amount=Decimal(10000), available=Decimal(100),
                 pay_methods=frozenset({"A"}))


FILTERS = [
    CompetitorFilters(),
    CompetitorFilters(min_month_orders=10, decoy_max_amount=Decimal(1000), merchants_only=True),
    CompetitorFilters(pay_methods="any", overlap_amount=False, min_completion_rate=Decimal("0.9")),
    CompetitorFilters(block_users=frozenset({f"s{1:032x}"}), min_available=Decimal(1)),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("side", [Side.SELL, Side.BUY])
def test_the_book_filters_as_each_ad_filtering_the_rows_alone(seed: int, side: Side) -> None:
    data = wire(market(seed))
    items = parse(list[SearchItem], data, "search")
    mine = frozenset({"00000000000000000003", "00000000000000000011"})
    book = MarketBook(parse_search(data), mine)
    ours = {i.advertiser.user_no for i in items if i.adv.adv_no in mine} | mine
    for filters in FILTERS:
        for ad in (own(side), own(side, "00000000000000000011"), own(side, "not-indexed")):
            alone = filters.apply([to_competitor(i) for i in items], ad, ours)
            assert book.filtered(filters, ad) == alone  # the second shares the first's result


def test_the_per_ad_rules_are_first_and_last_in_the_table() -> None:
    """`apply` checks `own` first, the screened rules, then the per-ad ones: the table's order."""
    flags = [rule.per_ad for rule in RULES]
    assert flags[0] and RULES[0].reason == "own"
    first_late = flags.index(True, 1)
    assert not any(flags[1:first_late]) and all(flags[first_late:])


def test_the_book_takes_strict_items_too() -> None:
    items = parse(list[SearchItem], wire(market(4, 3)), "search")
    book = MarketBook(items, frozenset())
    assert [r.adv.adv_no for r in book.rows] == [i.adv.adv_no for i in items]
    assert from_item(items[0]).adv.price == items[0].adv.price


def test_an_ads_market_follows_its_own_ad() -> None:
    before = AdRuntime.moves
    ad = AdRuntime(loaded=None, own=own(Side.SELL))  # type: ignore[arg-type]
    assert ad.market == ("USDT", "RUB", "BUY") and AdRuntime.moves == before + 1
    ad.own = own(Side.SELL)  # the same market and ad: nothing to index again
    assert AdRuntime.moves == before + 1
    ad.own = own(Side.BUY)
    assert ad.market == ("USDT", "RUB", "SELL") and AdRuntime.moves == before + 2
    ad.own = None
    assert ad.market is None
