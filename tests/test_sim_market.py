"""The simulated market: search the exchange's way, repricing bots, churn, reference price, determinism."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from simulator.clock import VirtualClock
from simulator.errors import SimError
from simulator.world.core import World

START_MS = 1_700_000_000_000


def make_world(cfg: dict[str, Any] | None = None, seed: int = 7) -> tuple[World, VirtualClock]:
    clock = VirtualClock(start_ms=START_MS, speed=0)
    return World.from_config(cfg or {}, seed=seed, clock=clock), clock


def search(world: World, trade_type: str, page: int = 1, rows: int = 20, **extra: Any
           ) -> tuple[list[dict[str, Any]], int]:
    body = {"asset": "USDT", "fiat": "RUB", "tradeType": trade_type, "page": page, "rows": rows}
    data, total = world.handle("search", {}, body | extra)
    assert total is not None
    return data, total


def all_pages(world: World, trade_type: str, **extra: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        data, total = search(world, trade_type, page=page, **extra)
        found += data
        if not data or len(found) >= total:
            return found
        page += 1


def move(world: World, clock: VirtualClock, seconds: float) -> None:
    clock.advance(seconds)
    world.advance()


def bot_rows(world: World, side: str = "SELL") -> list[dict[str, Any]]:
    market = world.markets[("USDT", "RUB")].to_control(side)
    return [row for row in market["sides"][side] if row["role"] == "bot"]


def test_default_world_is_a_populated_usdt_rub_market_with_two_own_ads() -> None:
    world, clock = make_world()
    move(world, clock, 60)
    sells, sell_total = search(world, "BUY")
    buys, buy_total = search(world, "SELL")
    assert sell_total == buy_total == 21  # 20 competitors + one own ad on each side
    assert sells and buys
    own = {(ad["side"], ad["priceType"]) for ad in world.account.to_control()}
    assert own == {("SELL", "fixed"), ("BUY", "floating")}
    (ref,), _ = world.handle("reference_price", {}, {"assets": ["USDT"], "fiatCurrency": "RUB",
                                                    "tradeType": "BUY"})
    assert abs(Decimal(ref["referencePrice"]) - Decimal("92.50")) < Decimal("1")


@pytest.mark.parametrize("taker, advertiser, descending", [("BUY", "SELL", False),
                                                           ("SELL", "BUY", True)])
def test_search_takes_the_takers_side_and_sorts_the_exchange_way(
        taker: str, advertiser: str, descending: bool) -> None:
    world, clock = make_world()
    move(world, clock, 120)
    found = all_pages(world, taker)
    assert {item["adv"]["tradeType"] for item in found} == {advertiser}
    prices = [Decimal(item["adv"]["price"]) for item in found]
    assert prices == sorted(prices, reverse=descending)
    own = {ad["advNo"] for ad in world.account.to_control() if ad["side"] == advertiser}
    assert own <= {item["adv"]["advNo"] for item in found}


def test_search_caps_rows_at_20_and_paginates_without_overlap() -> None:
    world, _ = make_world({"markets": [{"competitors": 30}]})
    first, total = search(world, "BUY", page=1, rows=50)
    second, _ = search(world, "BUY", page=2, rows=50)
    assert total == 31
    assert len(first) == 20 and len(second) == 11
    assert not {a["adv"]["advNo"] for a in first} & {a["adv"]["advNo"] for a in second}
    third, _ = search(world, "BUY", page=3, rows=50)
    assert third == []


def test_search_objects_follow_the_api_page() -> None:
    world, _ = make_world()
    item = search(world, "BUY")[0][0]
    adv, who = item["adv"], item["advertiser"]
    assert 19 <= len(adv["advNo"]) <= 20 and adv["advNo"].isdigit()
    assert who["userNo"].startswith("s") and len(who["userNo"]) == 33
    assert who["userType"] in ("merchant", "user")
    assert 0 <= who["monthFinishRate"] <= 1
    for key in ("price", "surplusAmount", "tradableQuantity", "minSingleTransAmount",
                "maxSingleTransAmount"):
        assert isinstance(adv[key], str)
    assert len(adv["surplusAmount"].split(".")[1]) == 8
    assert len(adv["price"].split(".")[1]) == adv["priceScale"] == 2
    assert {"identifier", "tradeMethodName"} <= set(adv["tradeMethods"][0])


def test_search_filters() -> None:
    world, _ = make_world()
    merchants = all_pages(world, "BUY", publisherType="merchant")
    assert merchants and all(i["advertiser"]["userType"] == "merchant" for i in merchants)
    sbp = all_pages(world, "BUY", payTypes=["SBP"])
    assert sbp and all(any(m["identifier"] == "SBP" for m in i["adv"]["tradeMethods"])
                       for i in sbp)
    amount = Decimal("20000")
    sized = all_pages(world, "BUY", transAmount="20000")
    for item in sized:
        adv = item["adv"]
        assert Decimal(adv["minSingleTransAmount"]) <= amount
        assert amount <= Decimal(adv["dynamicMaxSingleTransAmount"])
    assert len(sized) < len(all_pages(world, "BUY"))  # the decoys' tiny limits drop out


@pytest.mark.parametrize("body, code", [
    ({"fiat": "RUB", "tradeType": "BUY", "page": 1, "rows": 10}, -1102),
    ({"asset": "USDT", "fiat": "RUB", "page": 1, "rows": 10}, -1102),
    ({"asset": "USDT", "fiat": "RUB", "tradeType": "HOLD", "page": 1, "rows": 10}, -1100),
    ({"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "rows": 10}, -1102),
    ({"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": "x", "rows": 10}, -1100),
])
def test_search_parameter_errors(body: dict[str, Any], code: int) -> None:
    world, _ = make_world()
    with pytest.raises(SimError) as err:
        world.handle("search", {}, body)
    assert err.value.code == code


def test_reference_price_answers_per_asset_and_takes_at_most_three() -> None:
    world, _ = make_world()
    data, total = world.handle("reference_price", {}, {"assets": ["USDT"], "fiatCurrency": "RUB",
                                                       "tradeType": "SELL"})
    assert total is None
    assert set(data[0]) == {"asset", "assetScale", "currency", "currencyScale", "currencySymbol",
                            "priceScale", "referencePrice"}
    with pytest.raises(SimError) as err:
        world.handle("reference_price", {}, {"assets": ["USDT", "BTC", "ETH", "BNB"],
                                             "fiatCurrency": "RUB", "tradeType": "SELL"})
    assert err.value.code == -1100


def test_reference_walks_and_floating_ads_follow_it() -> None:
    world, clock = make_world({"markets": [{"volatility": "0.01"}]})
    market = world.markets[("USDT", "RUB")]
    start = market.reference
    floating = next(ad for ad in world.account.ads.values() if ad.price_type == 2)
    move(world, clock, 600)
    assert market.reference != start
    expected = (market.reference * floating.ratio / 100).quantize(Decimal("0.01"))
    assert floating.price == expected
    detail, _ = world.handle("ad_detail", {"adsNo": floating.adv_no}, None)
    assert detail["price"] == f"{expected:f}"


QUIET_BOT = {"markets": [{"competitors": 6, "bots": 1, "decoys": 0, "volatility": "0",
                          "churn_per_hour": 0, "bot_reaction_seconds": 5}],
             "own_ads": [{"side": "SELL", "price": "94.50"}]}


def test_a_bot_undercuts_within_its_reaction_time_and_stops_at_its_floor() -> None:
    world, clock = make_world(QUIET_BOT)
    move(world, clock, 60)
    (bot,) = bot_rows(world)
    own = next(iter(world.account.ads))
    floor = Decimal(bot["floor"])
    target = Decimal(bot["price"]) - Decimal("0.05")
    assert target > floor
    world.handle("update_ad", {}, {"advNo": own, "price": f"{target:f}"})
    move(world, clock, 4)
    assert Decimal(bot_rows(world)[0]["price"]) == Decimal(bot["price"])  # not yet
    move(world, clock, 1)
    assert Decimal(bot_rows(world)[0]["price"]) == target - Decimal("0.01")
    best, _ = search(world, "BUY", rows=1)
    assert best[0]["adv"]["advNo"] == bot["advNo"]

    world.handle("update_ad", {}, {"advNo": own, "price": f"{floor - Decimal('0.20'):f}"})
    move(world, clock, 5)
    assert Decimal(bot_rows(world)[0]["price"]) == floor
    move(world, clock, 120)
    assert Decimal(bot_rows(world)[0]["price"]) == floor  # the war is over
    assert world.account.ads[own].rank == 1


def role_rows(world: World, role: str, side: str = "SELL") -> list[dict[str, Any]]:
    market = world.markets[("USDT", "RUB")].to_control(side)
    return [row for row in market["sides"][side] if row["role"] == role]


@pytest.mark.parametrize("role", ["rival", "mirror"])
def test_rival_and_mirror_bots_answer_our_move_within_one_to_three_seconds(role: str) -> None:
    kind = "rival_bots" if role == "rival" else "mirror_bots"
    cfg = {"markets": [{"competitors": 6, "bots": 0, kind: 1, "decoys": 0, "volatility": "0",
                        "churn_per_hour": 0, "bot_floor": ["0.0001", "0.0002"]}],
           "own_ads": [{"side": "SELL", "price": "94.50"}]}
    own = None
    answers = []
    for seed in range(6):  # the answer time is drawn per answer
        world, clock = make_world(cfg, seed=seed)
        move(world, clock, 60)
        (bot,) = role_rows(world, role)
        own = next(iter(world.account.ads))
        best = min(Decimal(r["price"]) for r in world.markets[("USDT", "RUB")].to_control(
            "SELL")["sides"]["SELL"])
        target = best - Decimal("0.05") if role == "rival" else Decimal(bot["price"]) + 1
        world.handle("update_ad", {}, {"advNo": own, "price": f"{target:f}"})
        for waited in range(1, 6):
            move(world, clock, 1)
            if Decimal(role_rows(world, role)[0]["price"]) == target - Decimal("0.01"):
                answers.append(waited)
                break
    assert answers and len(answers) == 6 and set(answers) <= {1, 2, 3}, answers


def test_a_mirror_bot_follows_our_ad_up_and_down_one_tick_below_until_its_floor() -> None:
    cfg = {"markets": [{"competitors": 6, "bots": 0, "mirror_bots": 1, "decoys": 0,
                        "volatility": "0", "churn_per_hour": 0, "rival_seconds": [1, 1]}],
           "own_ads": [{"side": "SELL", "price": "95.00"}]}
    world, clock = make_world(cfg)
    own = next(iter(world.account.ads))
    floor = Decimal(role_rows(world, "mirror")[0]["floor"])
    for price in (Decimal("95.00"), Decimal("96.20"), floor + Decimal("0.50"), floor):
        world.handle("update_ad", {}, {"advNo": own, "price": f"{price:f}"})
        move(world, clock, 2)
        want = max(price - Decimal("0.01"), floor)
        assert Decimal(role_rows(world, "mirror")[0]["price"]) == want


def test_rival_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="rival_seconds"):
        make_world({"markets": [{"rival_seconds": [3, 1]}]})
    with pytest.raises(ValidationError, match="mirror_bots must not exceed"):
        make_world({"markets": [{"rival_bots": 15, "mirror_bots": 6}]})


def test_rivals_are_added_without_changing_the_rest_of_the_market() -> None:
    base = {"competitors": 8, "bots": 2, "decoys": 1, "volatility": "0", "churn_per_hour": 0}
    plain, _ = make_world({"markets": [base], "own_ads": []})
    more, _ = make_world({"markets": [base | {"rival_bots": 1, "mirror_bots": 1}], "own_ads": []})
    rows = plain.markets[("USDT", "RUB")].to_control("SELL")["sides"]["SELL"]
    rows_more = more.markets[("USDT", "RUB")].to_control("SELL")["sides"]["SELL"]
    assert [r for r in rows_more if r["role"] not in ("rival", "mirror")] == rows
    assert sorted(r["role"] for r in rows_more if r["role"] in ("rival", "mirror")) == [
        "mirror", "rival"]


def test_a_price_war_between_bots_ends() -> None:
    cfg = {"markets": [{"competitors": 8, "bots": 3, "decoys": 0, "volatility": "0",
                        "churn_per_hour": 0, "bot_reaction_seconds": 2}], "own_ads": []}
    world, clock = make_world(cfg)
    move(world, clock, 1800)
    before = bot_rows(world)
    move(world, clock, 300)
    after = bot_rows(world)
    assert [b["price"] for b in before] == [b["price"] for b in after]
    for bot in after:
        assert Decimal(bot["price"]) >= Decimal(bot["floor"])
    assert any(b["price"] == b["floor"] for b in after)  # someone was pushed to its floor


def test_bots_never_go_past_their_floor_while_the_reference_moves() -> None:
    cfg = {"markets": [{"volatility": "0.005", "bot_reaction_seconds": 3}]}
    world, clock = make_world(cfg)
    for _ in range(120):
        move(world, clock, 5)
        for side in ("SELL", "BUY"):
            for bot in bot_rows(world, side):
                if side == "SELL":
                    assert Decimal(bot["price"]) >= Decimal(bot["floor"])
                else:
                    assert Decimal(bot["price"]) <= Decimal(bot["floor"])


def test_ads_churn() -> None:
    world, clock = make_world({"markets": [{"churn_per_hour": 600}]})
    before = {item["adv"]["advNo"] for item in all_pages(world, "BUY")}
    move(world, clock, 600)
    after = {item["adv"]["advNo"] for item in all_pages(world, "BUY")}
    assert len(after) == len(before)
    assert len(before - after) >= 10


@pytest.mark.parametrize("cfg, key", [
    ({"markets": [{"asset": "USDT", "fiat": "RUB", "colour": "red"}]}, "colour"),
    ({"surprise": 1}, "surprise"),
    ({"chat": {"ttl": 5}}, "ttl"),
])
def test_unknown_world_keys_are_errors_naming_the_key(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        make_world(cfg)


@pytest.mark.slow
def test_same_seed_and_same_moves_give_the_same_world() -> None:
    def run(seed: int) -> list[Any]:
        cfg = {"orders": {"rate_per_hour": 120}, "markets": [{"volatility": "0.002"}]}
        world, clock = make_world(cfg, seed=seed)
        seen: list[Any] = []
        for step in range(12):
            move(world, clock, 150 + step)
            seen.append(search(world, "BUY"))
            seen.append(world.handle("list_orders", {}, {"page": 1, "rows": 20}))
            seen.append(world.handle("chat_messages", {"page": "1", "rows": "50"}, None))
        seen.append(world.account.to_control())
        return seen

    assert run(11) == run(11)
    assert run(11) != run(12)
