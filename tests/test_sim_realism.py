"""The simulator's [realism] switches: each habit of the real exchange, on and off."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from simulator.app import Simulator, run_simulator
from simulator.scenario import RealismSpec, ScenarioError, load_scenario, parse_scenario
from tests.support import SimHttp
from tests.test_sim_account import FIXED, FLOATING, TWO_ADS, code_of, make_world, move


def lagging(seconds: float = 10, endpoints: tuple[str, ...] = ("search", "ad_detail", "my_ads"),
            **more: Any) -> Any:
    world, clock = make_world(TWO_ADS)
    world.use_realism(RealismSpec(read_lag_seconds=seconds, read_lag_endpoints=list(endpoints),
                                  **more))
    return world, clock


def reads(world: Any) -> dict[str, str]:
    """The fixed ad's price as search, getDetailByNo and the ads list show it."""
    found, _ = world.handle("search", {}, {"asset": "USDT", "fiat": "RUB", "tradeType": "BUY",
                                           "page": 1, "rows": 20})
    search = next(i["adv"]["price"] for i in found if i["adv"]["advNo"] == FIXED)
    detail = world.handle("ad_detail", {"adsNo": FIXED}, None)[0]["price"]
    (listed,), _ = world.handle("my_ads", {}, {"page": 1, "rows": 10, "advNo": FIXED})
    return {"search": search, "ad_detail": detail, "my_ads": listed["price"]}


# ----- read-your-write lag -------------------------------------------------------------------

def test_reads_show_the_old_price_for_the_lag_then_the_new_one() -> None:
    world, clock = lagging(10)
    world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.00"})
    assert reads(world) == dict.fromkeys(("search", "ad_detail", "my_ads"), "93.40")
    assert str(world.account.ads[FIXED].price) == "92.00"  # the exchange itself has the new price
    move(world, clock, 9)
    assert set(reads(world).values()) == {"93.40"}
    move(world, clock, 1)
    assert set(reads(world).values()) == {"92.00"}


def test_the_lag_applies_to_the_reads_named_only() -> None:
    world, _ = lagging(10, ("search",))
    world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.00"})
    assert reads(world) == {"search": "93.40", "ad_detail": "92.00", "my_ads": "92.00"}


def test_two_updates_inside_the_lag_show_each_state_as_it_was_lag_ago() -> None:
    world, clock = lagging(10)
    world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.00"})
    move(world, clock, 5)
    world.handle("update_ad", {}, {"advNo": FIXED, "price": "91.50"})
    assert reads(world)["search"] == "93.40"
    move(world, clock, 5)
    assert reads(world)["search"] == "92.00"
    move(world, clock, 5)
    assert reads(world)["search"] == "91.50"


def test_a_floating_ad_shows_its_old_ratio_during_the_lag() -> None:
    world, _ = lagging(10)
    world.handle("update_ad", {}, {"advNo": FLOATING, "priceFloatingRatio": "98.00"})
    shown = world.handle("ad_detail", {"adsNo": FLOATING}, None)[0]
    assert shown["priceFloatingRatio"] == "99.20000000" and shown["price"] == "91.76"


def test_without_the_switch_reads_show_the_update_at_once() -> None:
    world, _ = make_world(TWO_ADS)
    world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.00"})
    assert set(reads(world).values()) == {"92.00"}


# ----- quantity state --------------------------------------------------------------------------

def test_quantity_conflicts_come_at_the_rate_and_clear_on_a_read() -> None:
    world, _ = make_world(TWO_ADS)
    world.account.use_realism(RealismSpec(quantity_conflict_rate=1.0,
                                          quantity_conflict_codes=[187040]), random.Random(1))
    body = {"advNo": FIXED, "price": "92.00"}
    assert code_of(world, "update_ad", {}, body) == 187040
    assert code_of(world, "update_ad", {}, body) == 187040  # until the ad is read back
    assert str(world.account.ads[FIXED].price) == "93.40"
    world.handle("ad_detail", {"adsNo": FIXED}, None)
    world.account.realism = RealismSpec()  # no new disagreement drawn
    assert world.handle("update_ad", {}, body)[0] is True


def test_a_sticky_quantity_conflict_survives_reads() -> None:
    world, _ = make_world(TWO_ADS)
    world.account.use_realism(RealismSpec(quantity_conflict_clears=False), random.Random(1))
    world.account.ads[FIXED].conflict = 187031
    world.handle("ad_detail", {"adsNo": FIXED}, None)
    world.handle("my_ads", {}, {"page": 1, "rows": 10})
    assert code_of(world, "update_ad", {}, {"advNo": FIXED, "price": "92.00"}) == 187031


def test_quantity_conflicts_are_drawn_from_the_seed() -> None:
    def draws(seed: int) -> list[int]:
        world, _ = make_world(TWO_ADS, seed=seed)
        world.use_realism(RealismSpec(quantity_conflict_rate=0.5))
        got = []
        for _ in range(20):
            try:
                world.handle("update_ad", {}, {"advNo": FIXED, "price": "92.00"})
                got.append(0)
            except Exception as exc:  # noqa: BLE001 - a SimError
                got.append(exc.code)  # type: ignore[attr-defined]
                world.handle("ad_detail", {"adsNo": FIXED}, None)
        return got

    assert draws(3) == draws(3)
    assert {0, 187049, 187040, 187031} >= set(draws(3)) and len(set(draws(3))) > 1


# ----- the gateway: -9000, clientType, weight headers ----------------------------------------

def _scenario(**realism: Any) -> Any:
    base = load_scenario("calm")
    return base.model_copy(update={"realism": base.realism.model_copy(update=realism)})


async def _on(http_session: aiohttp.ClientSession, **realism: Any) -> AsyncIterator[SimHttp]:
    async with run_simulator(_scenario(**realism), speed=0, seed=3) as sim:
        yield SimHttp(http_session, sim)


async def _sell_ad(http: SimHttp) -> str:
    ads = await http.call("my_ads", body={"page": 1, "rows": 10, "tradeType": "SELL"})
    return str(ads.json["data"][0]["advNo"])


@pytest.mark.parametrize("wrap_http", [200, 400])
async def test_business_errors_come_wrapped_in_minus_9000(
        http_session: aiohttp.ClientSession, wrap_http: int) -> None:
    async for http in _on(http_session, wrap_business_errors=True, wrap_http=wrap_http):
        refused = await http.call("update_ad", body={"advNo": "1" * 19, "price": "93.00"})
        assert refused.status == wrap_http
        assert refused.json["code"] == -9000 and refused.json["msg"].startswith("187022: ")
        # gateway errors (negative codes) are not wrapped
        bad = await http.call("update_ad", body={"advNo": await _sell_ad(http), "price": "9.001"})
        assert bad.json["code"] == -1100


async def test_without_client_type_the_credential_is_31002_and_an_update_9000_187049(
        http_session: aiohttp.ClientSession) -> None:
    async for http in _on(http_session, require_client_type=True):
        adv_no = await _sell_ad(http)  # reads are served without it
        no_type = {"clientType": None}
        cred = await http.call("chat_credential", headers=no_type)
        assert cred.status == 400 and cred.json == {"code": -31002, "msg": "illegal parameter"}
        upd = await http.call("update_ad", body={"advNo": adv_no, "price": "93.00"}, headers=no_type)
        assert upd.json["code"] == -9000 and "187049" in upd.json["msg"]
        ok = await http.call("chat_credential")
        assert ok.json["code"] == "000000"
        done = await http.call("update_ad", body={"advNo": adv_no, "price": "93.00"})
        assert done.json["data"] is True


@pytest.mark.parametrize(("choice", "present", "absent"), [
    ("sapi", "x-sapi-used-ip-weight-1m", "x-mbx-used-weight-1m"),
    ("mbx", "x-mbx-used-weight-1m", "x-sapi-used-ip-weight-1m"),
    ("both", "x-mbx-used-weight-1m", None),
])
async def test_c2c_answers_carry_the_weight_header_the_scenario_names(
        http_session: aiohttp.ClientSession, choice: str, present: str, absent: str | None) -> None:
    async for http in _on(http_session, c2c_weight_header=choice):
        reply = await http.call("my_ads", body={"page": 1, "rows": 10})
        names = {k.lower(): v for k, v in reply.headers.items()}
        assert names[present] == "1"
        if absent:
            assert absent not in names
        if choice == "both":
            assert names["x-sapi-used-ip-weight-1m"] == "1"
        time = await http.call("server_time")  # /api/ keeps its own header
        assert "x-mbx-used-weight-1m" in {k.lower() for k in time.headers}


# ----- the scenario ----------------------------------------------------------------------------

def test_realistic_switches_every_habit_on() -> None:
    spec = load_scenario("realistic").realism
    assert spec.read_lag_seconds > 0 and set(spec.read_lag_endpoints) == {
        "search", "ad_detail", "my_ads"}
    assert spec.wrap_business_errors and spec.quantity_conflict_rate > 0
    assert spec.require_client_type and spec.c2c_weight_header == "mbx"
    assert load_scenario("calm").realism == RealismSpec()  # off everywhere else


@pytest.mark.parametrize(("realism", "said"), [
    ({"quantity_conflict_codes": [187022]}, "not quantity-state codes"),
    ({"read_lag_endpoints": ["list_orders"]}, "realism.read_lag_endpoints"),
    ({"read_lag_seconds": -1}, "realism.read_lag_seconds"),
    ({"quantity_conflict_rate": 2}, "realism.quantity_conflict_rate"),
    ({"c2c_weight_header": "x"}, "realism.c2c_weight_header"),
    ({"wrap_http": 500}, "realism.wrap_http"),
    ({"lag": 3}, "realism.lag"),
])
def test_bad_realism_switches_are_named(realism: dict[str, Any], said: str) -> None:
    with pytest.raises(ScenarioError, match=said):
        parse_scenario({"keys": [{"label": "main"}], "realism": realism}, source="x.toml")


async def test_the_realistic_scenario_runs(http_session: aiohttp.ClientSession) -> None:
    async with run_simulator("realistic", speed=0) as sim:
        assert isinstance(sim, Simulator) and sim.scenario.realism.require_client_type
        reply = await SimHttp(http_session, sim).call("chat_credential")
        assert reply.json["code"] == "000000"
