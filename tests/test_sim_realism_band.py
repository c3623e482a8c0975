"""Issue 13: the simulator's exchange realism switches (price band, hidden ads, `visible`)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from simulator.errors import SimError
from simulator.world.config import RulesConfig
from simulator.world.core import World
from tests.test_sim_account import FIXED, FLOATING, TWO_ADS, make_world, move

SEARCH = {"asset": "USDT", "fiat": "RUB", "page": 1, "rows": 20}


def with_rules(**rules: Any) -> dict[str, Any]:
    return TWO_ADS | {"rules": rules}


def refusal(world: World, body: dict[str, Any]) -> SimError:
    with pytest.raises(SimError) as err:
        world.handle("update_ad", {}, body)
    return err.value


def searched(world: World, taker: str = "BUY") -> set[str]:
    found, _ = world.handle("search", {}, SEARCH | {"tradeType": taker})
    return {item["adv"]["advNo"] for item in found}


def test_the_refusal_names_the_allowed_bounds_or_not() -> None:
    world, _ = make_world(with_rules())
    err = refusal(world, {"advNo": FIXED, "price": "73.99"})
    assert err.code == 187055 and "minimum 74.00, maximum 111.00" in err.msg
    world, _ = make_world(with_rules(band_in_message=False))
    err = refusal(world, {"advNo": FIXED, "price": "73.99"})
    assert err.code == 187055 and not re.search(r"\d", err.msg)


def test_the_moving_band_is_not_80_to_120_and_moves() -> None:
    world, clock = make_world(with_rules(price_band_mode="moving", moving_band=["3", "8"]))
    err = refusal(world, {"advNo": FIXED, "price": "100.00"})  # inside 80-120%, outside +-8%
    assert err.code == 187055
    low, high = world.account.band(world.markets[("USDT", "RUB")])
    assert Decimal("85") < low < Decimal("90") and Decimal("95") < high < Decimal("100")
    seen = {world.account.band(world.markets[("USDT", "RUB")])}
    for _ in range(30):
        move(world, clock, 60)
        seen.add(world.account.band(world.markets[("USDT", "RUB")]))
    assert len(seen) > 5  # width and reference both move it
    assert world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.60"})[0] is True


def test_rules_are_validated() -> None:
    with pytest.raises(ValidationError):
        RulesConfig.model_validate({"price_band_mode": "sliding"})
    with pytest.raises(ValidationError):
        RulesConfig.model_validate({"moving_band": ["0", "5"]})
    with pytest.raises(ValidationError):
        RulesConfig.model_validate({"hide_on_open_orders": "yes please"})


def _open(world: World, clock: Any, adv_no: str, n: int) -> list[str]:
    ad = world.account.ads[adv_no]
    scales = world.account.market_of(ad).scales
    out = []
    for _ in range(n):
        (event,) = world.orders.create(ad, scales, clock.now_ms(), total=ad.min_amount)
        out.append(event.order.order_no)
    return out


def test_a_buy_ad_is_hidden_at_8_open_orders_and_shown_again_at_4_rank_kept() -> None:
    cfg = with_rules(hide_on_open_orders=True)
    cfg["orders"] = {"rate_per_hour": 0}
    world, clock = make_world(cfg)
    assert FLOATING in searched(world, "SELL")
    rank = world.account.ads[FLOATING].rank
    orders = _open(world, clock, FLOATING, 8)
    assert FLOATING not in searched(world, "SELL")
    assert world.account.to_control()[1]["hidden"] == "8 open orders"
    move(world, clock, 1)
    assert world.account.ads[FLOATING].rank is None
    for no in orders[:3]:  # 5 open: still hidden
        world.orders.force(no, 6, clock.now_ms())
    assert FLOATING not in searched(world, "SELL")
    world.orders.force(orders[3], 6, clock.now_ms())  # 4 open: shown again, same place
    assert FLOATING in searched(world, "SELL")
    move(world, clock, 1)
    assert world.account.ads[FLOATING].rank == rank


def test_without_the_switch_open_orders_do_not_hide() -> None:
    cfg = TWO_ADS | {"orders": {"rate_per_hour": 0}}
    world, clock = make_world(cfg)
    _open(world, clock, FLOATING, 9)
    assert FLOATING in searched(world, "SELL")


def test_an_ad_below_its_minimum_is_hidden_and_loses_its_rank_when_refilled() -> None:
    cfg = with_rules(hide_below_min=True)
    cfg["orders"] = {"rate_per_hour": 0, "restock": False}
    world, clock = make_world(cfg)
    ad = world.account.ads[FIXED]
    before = ad.update_ms
    ad.surplus = Decimal("5")  # 5 x 93.40 < 1000 minimum
    assert FIXED not in searched(world)
    move(world, clock, 10)
    ad.surplus = Decimal("100000")
    assert FIXED in searched(world)
    assert ad.update_ms == clock.now_ms() > before  # behind every ad at its price


def test_visible_hides_an_ad_from_search_and_shows_it_again() -> None:
    world, clock = make_world(TWO_ADS)
    assert world.handle("update_ad", {}, {"advNo": FIXED, "visible": 0})[0] is True
    assert FIXED not in searched(world)
    assert world.account.ads[FIXED].status == 1  # still online
    move(world, clock, 1)
    assert world.account.ads[FIXED].rank is None
    world.handle("update_ad", {}, {"advNo": FIXED, "visible": "1"})
    assert FIXED in searched(world)
    assert refusal(world, {"advNo": FIXED, "visible": 2}).code == -1100
