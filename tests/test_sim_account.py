"""The merchant's account in the simulator: own ads, ad updates as the exchange validates them, orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from simulator.app import Simulator
from simulator.clock import VirtualClock
from simulator.errors import SimError
from simulator.world.core import World
from tests.support import SimHttp

START_MS = 1_700_000_000_000
FIXED, FLOATING, THIRD = "11000000000000000001", "11000000000000000002", "11000000000000000003"
TWO_ADS = {
    "markets": [{"volatility": "0", "bots": 0, "decoys": 0, "churn_per_hour": 0}],
    "own_ads": [
        {"side": "SELL", "price": "93.40", "adv_no": FIXED, "surplus": "100000"},
        {"side": "BUY", "price_type": "floating", "ratio": "99.20", "adv_no": FLOATING},
    ],
}


def make_world(cfg: dict[str, Any], seed: int = 5) -> tuple[World, VirtualClock]:
    clock = VirtualClock(start_ms=START_MS, speed=0)
    return World.from_config(cfg, seed=seed, clock=clock), clock


def move(world: World, clock: VirtualClock, seconds: float) -> None:
    clock.advance(seconds)
    world.advance()


def code_of(world: World, endpoint: str, query: dict[str, str], body: Any) -> int:
    with pytest.raises(SimError) as err:
        world.handle(endpoint, query, body)
    return err.value.code


def orders_of(world: World, **body: Any) -> tuple[list[dict[str, Any]], int]:
    rows, total = world.handle("list_orders", {}, {"page": 1, "rows": 20} | body)
    assert total is not None
    return rows, total


# ----- own ads ---------------------------------------------------------------------------------

def test_my_ads_lists_and_filters_own_ads() -> None:
    world, _ = make_world(TWO_ADS)
    ads, total = world.handle("my_ads", {}, {"page": 1, "rows": 10})
    assert total == 2 and {ad["advNo"] for ad in ads} == {FIXED, FLOATING}
    sells, total = world.handle("my_ads", {}, {"page": 1, "rows": 10, "tradeType": "SELL"})
    assert total == 1 and sells[0]["priceType"] == 1 and sells[0]["price"] == "93.40"
    (floating,), _ = world.handle("my_ads", {}, {"page": 1, "rows": 10, "advNo": FLOATING})
    assert floating["priceType"] == 2 and floating["priceFloatingRatio"] == "99.20000000"
    assert floating["price"] == "91.76"  # 92.50 x 99.20 / 100
    page2, total = world.handle("my_ads", {}, {"page": 2, "rows": 1})
    assert total == 2 and len(page2) == 1
    assert code_of(world, "my_ads", {}, {"rows": 10}) == -1102


def test_ad_detail_reads_one_ad_by_the_query_parameter() -> None:
    world, _ = make_world(TWO_ADS)
    detail, total = world.handle("ad_detail", {"adsNo": FIXED}, None)
    assert total is None and detail["advNo"] == FIXED and detail["advStatus"] == 1
    assert code_of(world, "ad_detail", {}, None) == -1102
    assert code_of(world, "ad_detail", {"adsNo": "12345678901234567890"}, None) == 187022


def test_categories() -> None:
    world, _ = make_world({})
    assert world.handle("categories", {}, None) == ({"advClassifies": ["mass", "profession"]}, None)


@pytest.mark.parametrize("body, code", [
    ({"price": "93.00"}, -1102),  # no advNo
    ({"advNo": "12345678901234567890", "price": "93.00"}, 187022),  # unknown ad
    ({"advNo": FIXED, "price": "93.00", "surplusAmount": "10"}, 187049),  # a field not allowed
    ({"advNo": FIXED, "priceFloatingRatio": "101"}, 187049),  # ratio on a fixed ad
    ({"advNo": FLOATING, "price": "92.00"}, 187049),  # price on a floating ad
    ({"advNo": FIXED, "price": "93.00", "updateMode": "full"}, 187049),
    ({"advNo": FIXED}, -1102),  # no price
    ({"advNo": FIXED, "price": "93.123"}, -1100),  # more decimals than priceScale
    ({"advNo": FIXED, "price": "abc"}, -1100),
    ({"advNo": FIXED, "price": "-93"}, -1100),
    ({"advNo": FLOATING, "priceFloatingRatio": "99.12345"}, -1100),
    ({"advNo": FIXED, "price": "73.99"}, 187055),  # below 80% of 92.50
    ({"advNo": FIXED, "price": "111.01"}, 187055),  # above 120%
    ({"advNo": FLOATING, "priceFloatingRatio": "125"}, 187055),
])
def test_update_ad_validation(body: dict[str, Any], code: int) -> None:
    world, _ = make_world(TWO_ADS)
    assert code_of(world, "update_ad", {}, body) == code
    assert world.account.ads[FIXED].price == Decimal("93.40")


def test_update_ad_refuses_an_offline_ad() -> None:
    world, _ = make_world(TWO_ADS)
    data, _ = world.handle("update_ad_status", {}, {"advNos": [FIXED], "advStatus": 3})
    assert data == {"status": True, "failList": []}
    assert code_of(world, "update_ad", {}, {"advNo": FIXED, "price": "93.00"}) == 187022
    found, _ = world.handle("search", {}, {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY",
                                           "page": 1, "rows": 20})
    assert FIXED not in {item["adv"]["advNo"] for item in found}


def test_update_ad_status_reports_failures_per_ad() -> None:
    world, _ = make_world(TWO_ADS)
    data, _ = world.handle("update_ad_status", {}, {"advNos": [FIXED, "99999999999999999999"],
                                                    "advStatus": 4})
    assert data["status"] is False
    assert [f["advNo"] for f in data["failList"]] == ["99999999999999999999"]
    assert data["failList"][0]["errorCode"] == 187022
    data, _ = world.handle("update_ad_status", {}, {"advNos": [FIXED], "advStatus": 1})
    assert data["failList"][0]["advNo"] == FIXED  # a closed ad stays closed
    assert code_of(world, "update_ad_status", {}, {"advNos": [FIXED], "advStatus": 2}) == -1100
    assert code_of(world, "update_ad_status", {}, {"advStatus": 1}) == -1102


def test_a_valid_update_moves_the_price_seen_by_search_and_ad_detail() -> None:
    world, clock = make_world(TWO_ADS)
    assert world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.01"}) == (True, None)
    detail, _ = world.handle("ad_detail", {"adsNo": FIXED}, None)
    assert detail["price"] == "92.01"
    found, _ = world.handle("search", {}, {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY",
                                           "page": 1, "rows": 5})
    assert found[0]["adv"]["advNo"] == FIXED and found[0]["adv"]["price"] == "92.01"
    assert found[0]["advertiser"]["nickName"] == "SimMerchant"
    move(world, clock, 2)
    (ad,) = [a for a in world.account.to_control() if a["advNo"] == FIXED]
    assert ad["rank"] == 1 and ad["rankHistory"][-1]["rank"] == 1
    assert [p["price"] for p in ad["priceHistory"]] == ["93.40", "92.01"]

    assert world.handle("update_ad", {}, {"advNo": FLOATING, "priceFloatingRatio": "99.5"})[0]
    detail, _ = world.handle("ad_detail", {"adsNo": FLOATING}, None)
    assert detail["price"] == "92.04" and detail["priceFloatingRatio"] == "99.50000000"


# ----- orders ----------------------------------------------------------------------------------

def test_a_better_ranked_ad_receives_more_orders() -> None:
    cfg = {
        "markets": [{"volatility": "0", "bots": 0, "decoys": 0, "churn_per_hour": 0}],
        "own_ads": [
            {"side": "SELL", "price": "92.00", "adv_no": FIXED, "surplus": "100000"},
            {"side": "SELL", "price": "93.20", "adv_no": THIRD,
             "surplus": "100000"},
        ],
        "orders": {"rate_per_hour": 30},
    }
    world, clock = make_world(cfg, seed=21)
    for _ in range(60):
        move(world, clock, 60)
    ranks = {a["advNo"]: a["rank"] for a in world.account.to_control()}
    assert ranks[FIXED] == 1 and ranks[THIRD] > 3
    _, best = orders_of(world, advNo=FIXED)
    _, worse = orders_of(world, advNo=THIRD)
    assert best >= 15
    assert best > 4 * max(worse, 1)


TIMED = {
    "markets": [{"volatility": "0", "bots": 0, "decoys": 0, "churn_per_hour": 0}],
    "own_ads": [{"side": "SELL", "price": "92.00", "adv_no": FIXED, "surplus": "100000"}],
    "orders": {"rate_per_hour": 0, "pay_seconds": [10, 10], "release_seconds": [20, 20],
               "appeal_seconds": [30, 30], "cancel_probability": 0, "timeout_probability": 0,
               "appeal_probability": 0},
}


def with_orders(**orders: Any) -> dict[str, Any]:
    return TIMED | {"orders": TIMED["orders"] | orders}


def open_order(world: World, clock: VirtualClock) -> str:
    ad = world.account.ads[FIXED]
    events = world.orders.create(ad, world.account.market_of(ad).scales, clock.now_ms(),
                                 Decimal("9200"))
    world.emit(events, clock.now_ms())
    return events[0].order.order_no


def statuses(world: World, order_no: str) -> list[int]:
    return [s for _, s in world.orders.orders[order_no].history]


def test_orders_walk_their_statuses_and_the_summary_follows() -> None:
    world, clock = make_world(TIMED)
    order_no = open_order(world, clock)
    summary, _ = world.handle("order_summary", {}, None)
    assert summary == {"buyerPayedCount": 0, "inAppealCount": 0, "inProcessCount": 1,
                       "tradingCount": 1}
    (row,), total = orders_of(world)
    assert total == 1 and row["orderStatus"] == 1 and "price" not in row
    assert row["amount"] == "100.00000000" and row["totalPrice"] == "9200.00000000"
    assert len(row["orderNumber"]) == 20 and row["sellerNickname"] == "SimMerchant"
    assert world.account.ads[FIXED].surplus == Decimal("99900")

    move(world, clock, 10)
    assert world.handle("order_summary", {}, None)[0]["buyerPayedCount"] == 1
    paid, total = orders_of(world, orderStatusList=[2])
    assert total == 1 and paid[0]["confirmPayEndTime"] is not None
    assert orders_of(world, orderStatusList=[1])[1] == 0

    move(world, clock, 20)
    assert world.handle("order_summary", {}, None)[0]["inProcessCount"] == 0
    assert statuses(world, order_no) == [1, 2, 4]
    history, total = world.handle("order_history", {"tradeType": "SELL"}, None)
    assert total == 1 and history[0]["orderStatus"] == "COMPLETED"
    assert history[0]["unitPrice"] == "92.00" and history[0]["counterPartNickName"]


@pytest.mark.parametrize("orders, walk, surplus_back", [
    ({"cancel_probability": 1}, [1, 6], True),
    ({"timeout_probability": 1}, [1, 7], True),
    ({"appeal_probability": 1}, [1, 2, 3, 4], False),
    ({"odd_status_probability": 1, "odd_statuses": [5]}, [1, 2, 5, 4], False),
])
def test_other_order_paths(orders: dict[str, Any], walk: list[int], surplus_back: bool) -> None:
    world, clock = make_world(with_orders(**orders))
    order_no = open_order(world, clock)
    move(world, clock, 3600)
    assert statuses(world, order_no) == walk
    assert (world.account.ads[FIXED].surplus == Decimal("100000")) is surplus_back
    if walk[-1] == 7:
        order = world.orders.orders[order_no]
        assert order.close_ms == order.notify_pay_end_ms


def test_list_orders_is_newest_first_filtered_and_paged() -> None:
    world, clock = make_world(TIMED)
    numbers = []
    for _ in range(25):
        numbers.append(open_order(world, clock))
        move(world, clock, 1)
    rows, total = orders_of(world, rows=100)
    assert total == 25 and len(rows) == 20  # a page holds at most 20 rows
    assert [r["orderNumber"] for r in rows] == numbers[::-1][:20]
    later, _ = orders_of(world, page=2)
    assert [r["orderNumber"] for r in later] == numbers[::-1][20:]
    assert orders_of(world, tradeType="BUY")[1] == 0
    assert orders_of(world, startDate=START_MS + 20_000)[1] == 5
    assert orders_of(world, endDate=START_MS + 4_000)[1] == 5


def test_order_detail_by_either_parameter_name() -> None:
    world, clock = make_world(TIMED)
    order_no = open_order(world, clock)
    detail, _ = world.handle("order_detail", {}, {"adOrderNo": order_no})
    assert detail["price"] == "92.00" and detail["sellerName"] and detail["buyerName"]
    assert detail["orderStatus"] == 1 and detail["payType"] in ("Tinkoff", "SBP")
    same, _ = world.handle("order_detail", {}, {"orderNumber": order_no})
    assert same == detail
    assert code_of(world, "order_detail", {}, {"adOrderNo": "20000000000000000000"}) == 83998
    assert code_of(world, "order_detail", {}, {}) == -1102


def test_forced_status_moves_follow_the_legal_table() -> None:
    world, clock = make_world(TIMED)
    order_no = open_order(world, clock)
    world.orders.force(order_no, 2, clock.now_ms())
    with pytest.raises(ValueError):
        world.orders.force(order_no, 1, clock.now_ms())
    world.orders.force(order_no, 3, clock.now_ms())
    move(world, clock, 30)
    assert statuses(world, order_no) == [1, 2, 3, 4]


def test_an_odd_status_is_listed_as_is_and_has_no_system_message() -> None:
    world, clock = make_world(with_orders(odd_status_probability=1, odd_statuses=[5]))
    order_no = open_order(world, clock)
    move(world, clock, 10)
    move(world, clock, 10)  # paid, then in the odd status before completing
    assert world.orders.orders[order_no].status == 5
    detail, _ = world.handle("order_detail", {}, {"adOrderNo": order_no})
    assert detail["orderStatus"] == 5
    history, _ = world.handle("order_history", {"tradeType": "SELL"}, None)
    assert history[0]["orderStatus"] == "STATUS_5"
    events = [m.content for m in world.chatlog.by_order[order_no] if m.type == "system"]
    assert len(events) == 2  # created and paid; nothing names status 5


@pytest.mark.parametrize("odd", [[3], [4], [-1]])
def test_odd_statuses_must_be_unlisted_ones(odd: list[int]) -> None:
    with pytest.raises(ValueError, match="odd_statuses"):
        make_world(with_orders(odd_status_probability=1, odd_statuses=odd))


def test_order_history_can_require_a_fixed_window() -> None:
    world, clock = make_world(with_orders(history_window_required=True))
    open_order(world, clock)
    assert code_of(world, "order_history", {"tradeType": "SELL"}, None) == -1102
    assert code_of(world, "order_history", {"startTimestamp": "1"}, None) == -1102
    window = {"startTimestamp": str(START_MS - 1000), "endTimestamp": str(START_MS + 1000)}
    assert world.handle("order_history", window, None)[1] == 1


def test_order_history_rejects_a_span_over_30_days() -> None:
    world, _ = make_world(TIMED)
    query = {"tradeType": "SELL", "startTimestamp": "1", "endTimestamp": str(31 * 86_400_000)}
    assert code_of(world, "order_history", query, None) == -1100


async def test_ad_endpoints_through_the_gateway(
        sim: Simulator, http_session: aiohttp.ClientSession) -> None:
    http = SimHttp(http_session, sim)
    ads = await http.call("my_ads", body={"page": 1, "rows": 10, "tradeType": "SELL"})
    assert ads.code == "000000" and ads.json["total"] == 1
    adv_no = ads.json["data"][0]["advNo"]
    refused = await http.call("update_ad", body={"advNo": adv_no, "price": "93.00",
                                                 "surplusAmount": "1"})
    assert refused.status == 200 and "187049" in refused.text
    bad = await http.call("update_ad", body={"advNo": adv_no, "price": "93.001"})
    assert bad.status == 400 and bad.json["code"] == -1100
    done = await http.call("update_ad", body={"advNo": adv_no, "price": "93.00"})
    assert done.json["data"] is True
    detail = await http.call("ad_detail", {"adsNo": adv_no})
    assert detail.json["data"]["price"] == "93.00"


def test_reference_price_with_a_pay_type_can_fail_where_the_plain_call_works() -> None:
    market = TWO_ADS["markets"][0] | {"reference_pay_type_fails": True}
    world, _ = make_world(TWO_ADS | {"markets": [market]})
    body = {"assets": ["USDT"], "fiatCurrency": "RUB", "tradeType": "BUY"}
    assert code_of(world, "reference_price", {}, body | {"payType": "Tinkoff"}) == 20001
    (price,), _ = world.handle("reference_price", {}, body)
    assert price["referencePrice"]
    plain, _ = make_world(TWO_ADS)
    assert plain.handle("reference_price", {}, body | {"payType": "Tinkoff"})[0]
