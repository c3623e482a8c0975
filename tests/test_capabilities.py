"""The capability registry: health states, alternatives, probing, damping, logging once."""

from __future__ import annotations

import pytest
from loguru import logger

from bot.binance.errors import (
    BadResponse,
    BadSignature,
    BogusResponse,
    EndpointUnregistered,
    ExchangeUnavailable,
    IpBanned,
    PriceOutOfRange,
    RateLimited,
    TooLarge,
)
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.capabilities.table import ProbeConfig
from bot.events import CapabilityChanged, EndpointChanged, EventBus
from bot.health import CapState, EndpointState
from state.db import Store
from state.endpoints import EndpointLog
from state.meta import Meta
from tests.support import FakeClient, FakeClock


def unregistered(ep: str) -> EndpointUnregistered:
    return EndpointUnregistered("Invalid Api-Key ID.", endpoint=ep, status=400, code=-2008)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(FakeClock())


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def reg(client: FakeClient, bus: EventBus) -> CapabilityRegistry:
    import random

    return CapabilityRegistry(client, bus=bus, rng=random.Random(1),  # type: ignore[arg-type]
                              config=ProbeConfig(jitter=0.0))


def events(bus: EventBus, kind: type) -> list:
    got: list = []

    async def handler(e: object) -> None:
        got.append(e)

    bus.subscribe(kind, handler)
    return got


@pytest.mark.parametrize(
    ("exc", "state"),
    [
        (unregistered("search"), EndpointState.UNREGISTERED),
        (ExchangeUnavailable("timed out", endpoint="search"), EndpointState.FAILING),
        (RateLimited("", endpoint="search", status=429), EndpointState.FAILING),
        (BadSignature("", endpoint="search", status=400, code=-1022), EndpointState.REFUSED),
        (BogusResponse("empty body", endpoint="search", status=200), EndpointState.BOGUS),
        (BadResponse("the body is not JSON: [[[[", endpoint="search", status=200),
         EndpointState.FAILING),
        (TooLarge("more than 4194304 bytes arrived", endpoint="search", status=200),
         EndpointState.FAILING),
        (PriceOutOfRange("", endpoint="search", status=200, code=187055), EndpointState.AVAILABLE),
    ],
)
async def test_every_outcome_moves_the_endpoint(reg, client, exc, state) -> None:
    client.fail("search", exc)
    with pytest.raises(type(exc)):
        await reg.call("search", {})
    assert reg.state("search") is state


async def test_unregistered_disables_exactly_its_capabilities(reg, client, bus) -> None:
    changes = events(bus, CapabilityChanged)
    client.fail("update_ad", unregistered("update_ad"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad", {"advNo": "1", "price": "1"})
    await bus.drain()
    assert [(c.capability, c.new) for c in changes] == [("repricing", CapState.DISABLED)]
    caps = reg.capabilities()
    assert caps["repricing"].state is CapState.DISABLED
    # the others are not called yet: not disabled, and not counted as working either
    assert all(s.state is CapState.UNCHECKED for n, s in caps.items() if n != "repricing")
    assert changes[0].cause.code == -2008


async def test_blocked_endpoint_is_not_sent(reg, client) -> None:
    client.fail("search", unregistered("search"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("search", {})
    for _ in range(5):
        with pytest.raises(CapabilityUnavailable):
            await reg.call("search", {})
    assert client.sent("search") == 1


async def test_alternative_takes_over_and_primary_comes_back(reg, client, bus) -> None:
    client.ok("search", [])
    client.ok("chat_messages", [])
    await reg.call("search", {})  # the alternatives have been seen working
    await reg.call("chat_messages", {})
    await bus.drain()
    changes = events(bus, CapabilityChanged)
    client.fail("reference_price", unregistered("reference_price"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("reference_price", {})
    assert reg.status("reference_price").state is CapState.DEGRADED
    assert reg.route("reference_price") == "derived"
    client.fail("chat_credential", unregistered("chat_credential"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("chat_credential", {})
    assert reg.route("chat") == "rest"
    # Binance enables the endpoint: the next probe restores the primary source
    client.ok("reference_price", [])
    client.clock.advance(61)
    assert "reference_price" in reg.due()
    assert await reg.probe("reference_price") is EndpointState.AVAILABLE
    await bus.drain()
    assert reg.route("reference_price") == "exchange"
    assert [(c.capability, c.new, c.source) for c in changes] == [
        ("reference_price", CapState.DEGRADED, "derived"),
        ("chat", CapState.DEGRADED, "rest"),
        ("reference_price", CapState.ENABLED, "exchange"),
    ]


async def test_failing_endpoint_is_still_routed_to(reg, client) -> None:
    client.fail("search", ExchangeUnavailable("timed out", endpoint="search"))
    with pytest.raises(ExchangeUnavailable):
        await reg.call("search", {})
    assert reg.status("market").state is CapState.DISABLED
    assert reg.route("market") == "search"  # the next tick is the retry
    with pytest.raises(ExchangeUnavailable):
        await reg.call("search", {})
    assert client.sent("search") == 2


async def test_backoff_schedule(reg, client) -> None:
    client.fail("categories", unregistered("categories"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("categories", {})
    gaps = []
    for _ in range(7):
        wait = reg.next_probe_in()
        assert wait is not None
        gaps.append(round(wait))
        client.clock.advance(wait)
        await reg.probe("categories")
    assert gaps == [60, 120, 240, 480, 960, 1800, 1800]


async def test_flap_damping_needs_consecutive_successes(client) -> None:
    import random

    reg = CapabilityRegistry(client, rng=random.Random(1),  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0, flap_threshold=2, trust_after=3))
    for _ in range(3):  # three flaps in the hour
        client.ok("search", [])
        await reg.call("search", {}) if reg.state("search") is not EndpointState.UNREGISTERED \
            else await reg.probe("search")
        client.fail("search", unregistered("search"))
        with pytest.raises(EndpointUnregistered):
            await reg.call("search", {})
        client.clock.advance(60)
    assert reg.health["search"].flap_count(client.clock.now, 3600) == 3
    client.ok("search", [])
    assert await reg.probe("search") is EndpointState.UNREGISTERED  # 1st success: on probation
    assert reg.health["search"].probation
    assert await reg.probe("search") is EndpointState.UNREGISTERED  # 2nd
    assert await reg.probe("search") is EndpointState.AVAILABLE  # 3rd: trusted again


async def test_logged_once_down_and_once_recovered(reg, client) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO", format="{message}")
    try:
        client.fail("search", ExchangeUnavailable("timed out", endpoint="search"))
        for _ in range(10):
            with pytest.raises(ExchangeUnavailable):
                await reg.call("search", {})
        client.ok("search", [])
        await reg.call("search", {})
        await reg.call("search", {})
    finally:
        logger.remove(sink)
    market = [line for line in lines if "capability market" in line]
    assert len(market) == 2
    assert "disabled" in market[0] and "recovered" in market[1]


async def test_transitions_are_stored_and_ban_persists(client, tmp_path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        log, meta = EndpointLog(store), Meta(store)
        reg = CapabilityRegistry(client, log=log, meta=meta)  # type: ignore[arg-type]
        client.fail("search", unregistered("search"))
        with pytest.raises(EndpointUnregistered):
            await reg.call("search", {})
        client.ok("search", [])
        await reg.probe("search")
        rows = await log.transitions("search")
        assert [(t.old, t.new, t.code) for t in rows] == [
            ("unknown", "unregistered", -2008), ("unregistered", "available", None)]
        assert await log.probe_count() == 1
        client.banned_until = client.clock.now + 600
        client.fail("my_ads", IpBanned("", endpoint="my_ads", status=418, retry_after=600))
        with pytest.raises(IpBanned):
            await reg.call("my_ads", {})
    finally:
        await store.close()
    # a restart honours the ban
    store = await Store.open(tmp_path / "s.db")
    try:
        fresh = FakeClient(client.clock)
        reg2 = CapabilityRegistry(fresh, meta=Meta(store))  # type: ignore[arg-type]
        await reg2.restore()
        assert fresh.banned_until == pytest.approx(client.clock.now + 600)
    finally:
        await store.close()


async def test_endpoint_events_published(reg, client, bus) -> None:
    got = events(bus, EndpointChanged)
    client.fail("search", unregistered("search"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("search", {})
    await bus.drain()
    assert [(e.endpoint, e.old, e.new) for e in got] == [
        ("search", EndpointState.UNKNOWN, EndpointState.UNREGISTERED)]


async def test_refused_endpoint_is_re_probed_and_comes_back(reg, client) -> None:
    client.fail("search", BadSignature("", endpoint="search", status=400, code=-1022))
    with pytest.raises(BadSignature):
        await reg.call("search", {})
    assert reg.state("search") is EndpointState.REFUSED
    wait = reg.next_probe_in()
    assert wait is not None and wait <= 60
    client.ok("search", [])
    client.clock.advance(wait)
    assert reg.due() == ["search"]
    assert await reg.probe("search") is EndpointState.AVAILABLE


def test_the_capability_table_names_only_endpoints_the_endpoint_table_has() -> None:
    """Which feature needs which endpoint is written once, in the capability table."""
    from bot.binance.endpoints import ENDPOINTS
    from bot.capabilities.table import CAPABILITIES

    named = {e for cap in CAPABILITIES.values() for s in cap.sources for e in s.endpoints}
    assert named <= set(ENDPOINTS)
    assert not any(hasattr(ep, "capability") for ep in ENDPOINTS.values())


# --- issue 10: degraded mode recovers, for writes too ---------------------------------------


class InFlightClient(FakeClient):
    """Answers after a turn of the loop, so several calls can be in flight at once."""

    async def call(self, endpoint, params=None):  # type: ignore[no-untyped-def,override]
        import asyncio

        await asyncio.sleep(0)
        return await super().call(endpoint, params)


def log_lines() -> tuple[list[str], int]:
    lines: list[str] = []
    return lines, logger.add(lambda m: lines.append(str(m).rstrip("\n")), level="INFO",
                             format="{message}")


def fixed_ad(adv_no: str = "1", price: str = "93.40", status: int = 1) -> dict:
    return {"advNo": adv_no, "priceType": 1, "price": price, "advStatus": status}


async def test_ordinary_failures_do_not_push_the_probe_out(reg, client) -> None:
    client.fail("search", ExchangeUnavailable("timed out", endpoint="search"))
    for _ in range(5):  # a poller's ticks, 10 s apart: ordinary calls, not probes
        with pytest.raises(ExchangeUnavailable):
            await reg.call("search", {})
        client.clock.advance(10)
    assert reg.next_probe_in() == pytest.approx(10)  # still 60 s after the first failure


async def test_refusals_in_flight_together_schedule_the_first_probe_after_probe_first(bus) -> None:
    import asyncio
    import random

    client = InFlightClient(FakeClock())
    reg = CapabilityRegistry(client, bus=bus, rng=random.Random(1),  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0))
    client.fail("search", unregistered("search"))

    async def one() -> None:
        with pytest.raises(EndpointUnregistered):
            await reg.call("search", {})

    await asyncio.gather(*(one() for _ in range(5)))  # five markets polled at once
    assert client.sent("search") == 5
    assert reg.next_probe_in() == pytest.approx(60)


async def test_only_probes_advance_the_backoff_and_each_step_is_logged(reg, client) -> None:
    lines, sink = log_lines()
    try:
        client.fail("search", unregistered("search"))
        with pytest.raises(EndpointUnregistered):
            await reg.call("search", {})
        client.clock.advance(60)
        await reg.probe("search")
        client.clock.advance(120)
        await reg.probe("search")
    finally:
        logger.remove(sink)
    said = [line for line in lines if "next probe" in line]
    assert said == ["search: unregistered (-2008); next probe in 60 s",
                    "search: unregistered (-2008); next probe in 120 s",
                    "search: unregistered (-2008); next probe in 240 s"]


async def test_unregistered_write_is_re_probed_with_the_price_it_has(reg, client) -> None:
    client.fail("update_ad", unregistered("update_ad"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad", {"advNo": "1", "price": "93.50"})
    assert reg.status("repricing").state is CapState.DISABLED
    reg.hints["adv_no"] = "1"
    client.ok("ad_detail", fixed_ad(price="93.40"))
    client.ok("update_ad", True)
    wait = reg.next_probe_in()
    assert wait == pytest.approx(60)
    client.clock.advance(wait)
    assert reg.due() == ["update_ad"]
    client.calls.clear()
    assert await reg.probe("update_ad") is EndpointState.AVAILABLE
    # read just before, then the same value: nothing changes if it succeeds
    assert client.calls == [("ad_detail", {"adsNo": "1"}),
                            ("update_ad", {"advNo": "1", "price": "93.40"})]
    assert reg.status("repricing").state is CapState.ENABLED
    assert reg.route("repricing") == "update_ad"


async def test_floating_ad_write_probe_re_sends_its_ratio(reg, client) -> None:
    client.fail("update_ad", unregistered("update_ad"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad", {"advNo": "7", "priceFloatingRatio": "101.00"})
    reg.hints["adv_no"] = "7"
    client.fail("ad_detail", unregistered("ad_detail"))  # read through my_ads instead
    client.ok("my_ads", [{"advNo": "7", "priceType": 2, "price": "93.40",
                          "priceFloatingRatio": "100.25", "advStatus": 1}])
    client.ok("update_ad", True)
    client.clock.advance(60)
    client.calls.clear()
    assert await reg.probe("update_ad") is EndpointState.AVAILABLE
    assert client.calls[-1] == ("update_ad", {"advNo": "7", "priceFloatingRatio": "100.25"})
    assert ("my_ads", {"page": 1, "rows": 1, "advNo": "7"}) in client.calls


async def test_write_probe_without_a_known_ad_sends_nothing_and_reschedules(reg, client) -> None:
    client.fail("update_ad", unregistered("update_ad"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad", {"advNo": "1", "price": "93.50"})
    client.clock.advance(60)
    client.calls.clear()
    assert await reg.probe("update_ad") is EndpointState.UNREGISTERED
    assert client.calls == []
    assert reg.next_probe_in() == pytest.approx(60)


async def test_write_probe_is_not_sent_when_the_ad_cannot_be_read(reg, client) -> None:
    client.fail("update_ad", unregistered("update_ad"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad", {"advNo": "1", "price": "93.50"})
    reg.hints["adv_no"] = "1"
    client.fail("ad_detail", ExchangeUnavailable("timed out", endpoint="ad_detail"))
    client.fail("my_ads", ExchangeUnavailable("timed out", endpoint="my_ads"))
    client.clock.advance(60)
    await reg.probe("update_ad")
    assert client.sent("update_ad") == 1  # the ordinary call only: no price read, no write


async def test_dry_run_sends_no_write_probe(client) -> None:
    import random

    reg = CapabilityRegistry(client, rng=random.Random(1), dry_run=True,  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0))
    client.fail("update_ad", unregistered("update_ad"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad", {"advNo": "1", "price": "93.50"})
    reg.hints["adv_no"] = "1"
    client.ok("ad_detail", fixed_ad())
    client.ok("update_ad", True)
    client.clock.advance(60)
    client.calls.clear()
    assert "update_ad" not in reg.due()
    await reg.probe("update_ad")
    assert client.calls == []


async def test_status_write_probe_sets_the_status_the_ad_has(reg, client) -> None:
    client.fail("update_ad_status", unregistered("update_ad_status"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("update_ad_status", {"advNos": ["1"], "advStatus": 3})
    reg.hints["adv_no"] = "1"
    client.ok("ad_detail", fixed_ad(status=1))
    client.ok("update_ad_status", {"status": True, "failList": []})
    client.clock.advance(60)
    assert reg.due() == ["update_ad_status"]
    client.calls.clear()
    assert await reg.probe("update_ad_status") is EndpointState.AVAILABLE
    assert client.calls[-1] == ("update_ad_status", {"advNos": ["1"], "advStatus": 1})


async def test_a_write_that_may_have_landed_is_not_probed_while_reads_may_lag(reg, client) -> None:
    client.fail("update_ad", ExchangeUnavailable("timed out", endpoint="update_ad"))
    reg.hints["adv_no"] = "1"
    client.ok("ad_detail", fixed_ad())
    client.clock.advance(10)
    with pytest.raises(ExchangeUnavailable):  # may have changed the price: a read may lag
        await reg.call("update_ad", {"advNo": "1", "price": "93.50"})
    client.clock.advance(50)
    client.ok("update_ad", True)
    await reg.probe("update_ad")  # early (jitter): 50 s after a write that may have landed
    assert client.sent("update_ad") == 1
    client.clock.advance(reg.next_probe_in() or 0)
    assert await reg.probe("update_ad") is EndpointState.AVAILABLE


async def test_unknown_is_not_working_but_is_still_tried(reg, client) -> None:
    caps = reg.capabilities()
    assert {s.state for s in caps.values()} == {CapState.UNCHECKED}
    assert reg.enabled() == frozenset()
    assert reg.route("market") == "search"  # the first ordinary call is how it gets checked
    assert reg.route("repricing") == "update_ad"
    client.ok("search", [])
    await reg.call("search", {})
    assert reg.status("market").state is CapState.ENABLED
    assert reg.enabled() == {"market"}
    assert reg.status("reference_price").state is CapState.UNCHECKED  # its primary not tried yet
    assert reg.route("reference_price") == "exchange"


async def test_a_capability_down_on_every_source_names_every_endpoint(reg, client) -> None:
    lines, sink = log_lines()
    try:
        for ep in ("reference_price", "search"):
            client.fail(ep, unregistered(ep))
            with pytest.raises(EndpointUnregistered):
                await reg.call(ep, {})
    finally:
        logger.remove(sink)
    status = reg.status("reference_price")
    assert status.state is CapState.DISABLED
    assert [c.endpoint for c in status.causes] == ["reference_price", "search"]
    line = next(x for x in lines if "capability reference_price disabled" in x)
    assert "reference_price -2008" in line and "search -2008" in line
    snap = reg.snapshot()["capabilities"]["reference_price"]
    assert [c["endpoint"] for c in snap["causes"]] == ["reference_price", "search"]


def test_readiness_needs_the_essentials_seen_working_and_no_ban(reg, client) -> None:
    from types import SimpleNamespace

    from bot.ops.status_api import readiness

    bot = SimpleNamespace(registry=reg, client=client, clock=client.clock,
                          cfg=SimpleNamespace(capabilities=SimpleNamespace(
                              essential=("market", "repricing"))),
                          engine=SimpleNamespace(dry_run=False))
    assert readiness(bot) == (False, ["market", "repricing"])  # nothing checked yet
    for ep in ("search", "update_ad"):
        reg.assume(ep, EndpointState.AVAILABLE, None, "")
    assert readiness(bot) == (True, [])
    client.banned_until = client.clock.now + 600  # a 418, or one restored from the store
    assert readiness(bot)[0] is False
    client.banned_until = 0.0
    reg.assume("update_ad", EndpointState.UNKNOWN, None, "")
    bot.engine.dry_run = True  # a dry run never writes: repricing cannot be seen working
    assert readiness(bot) == (True, [])


async def test_the_bots_own_write_waits_for_a_write_probe_between_its_read_and_write(bus) -> None:
    import asyncio
    import random

    client = InFlightClient(FakeClock())
    reg = CapabilityRegistry(client, bus=bus, rng=random.Random(1),  # type: ignore[arg-type]
                             config=ProbeConfig(jitter=0.0))
    reg.hints["adv_no"] = "1"
    client.fail("update_ad", ExchangeUnavailable("timed out", endpoint="update_ad"))
    with pytest.raises(ExchangeUnavailable):
        await reg.call("update_ad", {"advNo": "1", "price": "93.50"})
    client.clock.advance(60)
    client.ok("ad_detail", fixed_ad(price="93.40"))
    client.ok("update_ad", True)
    client.calls.clear()
    probing = asyncio.ensure_future(reg.probe("update_ad"))
    await asyncio.sleep(0)  # the probe has read the price and not yet re-sent it
    await reg.call("update_ad", {"advNo": "1", "price": "93.60"})  # the engine reprices
    await probing
    # the probe's re-send of 93.40 must not land after the engine's 93.60 and undo it
    assert [c for c in client.calls if c[0] == "update_ad"] == [
        ("update_ad", {"advNo": "1", "price": "93.40"}),
        ("update_ad", {"advNo": "1", "price": "93.60"})]


def test_every_write_endpoint_has_a_probe_that_changes_nothing() -> None:
    from bot.binance.endpoints import ENDPOINTS
    from bot.capabilities.table import PROBES, WRITE_PROBES

    writes = {name for name, ep in ENDPOINTS.items() if ep.write}
    assert writes == set(WRITE_PROBES)
    assert not writes & set(PROBES)  # no write is ever probed with made-up parameters


async def test_a_probe_during_a_ban_waits_for_its_end(reg, client) -> None:
    client.fail("search", unregistered("search"))
    with pytest.raises(EndpointUnregistered):
        await reg.call("search", {})
    client.clock.advance(60)
    client.banned_until = client.clock.now + 600  # nothing is sent before it
    client.fail("search", IpBanned("banned", endpoint="search", retry_after=600))
    await reg.probe("search")
    assert reg.next_probe_in() == pytest.approx(600)  # not due again at once: no busy prober
# --- replies that do not fit, and empty answers (issue 11, items 6 and 9) ------------------------

ROW = {"orderNumber": "22812345678901234567", "amount": "100", "totalPrice": "9250",
       "orderStatus": 1}
RENAMED = {**{k: v for k, v in ROW.items() if k != "orderStatus"}, "status": 1}


async def test_a_reply_that_does_not_fit_its_model_fails_its_endpoint_and_its_capability(
    reg, client, bus
) -> None:
    from bot.binance.errors import ShapeChanged
    from bot.binance.p2p import P2PApi

    api = P2PApi(reg)
    changes = events(bus, CapabilityChanged)
    client.ok("order_summary", {"tradingCount": 1})
    client.ok("list_orders", [ROW])
    await api.order_summary()
    await api.list_orders()
    assert reg.status("orders").state is CapState.ENABLED
    client.ok("list_orders", [RENAMED])
    with pytest.raises(ShapeChanged):
        await api.list_orders()
    said = "the exchange's answer changed shape: data[0].orderStatus: field required"
    assert (reg.state("list_orders"), reg.health["list_orders"].message) == (EndpointState.FAILING, said)
    assert (reg.status("orders").state, reg.status("orders").source) == (CapState.DEGRADED, "summary")
    client.ok("order_summary", None)  # `data: null`
    with pytest.raises(ShapeChanged, match="data: input should be a valid dictionary"):
        await api.order_summary()
    assert reg.status("orders").state is CapState.DISABLED
    assert await reg.probe("list_orders") is EndpointState.FAILING  # probes read the shape too
    client.ok("list_orders", [ROW])
    client.ok("order_summary", {"tradingCount": 1})
    await reg.probe("list_orders")
    await reg.probe("order_summary")
    await bus.drain()
    assert reg.status("orders").state is CapState.ENABLED
    # the first change is the capability seen working (it starts unchecked)
    assert [c.new for c in changes] == [CapState.ENABLED, CapState.DEGRADED, CapState.DISABLED,
                                        CapState.DEGRADED, CapState.ENABLED]
    assert changes[1].cause.message == said


async def test_a_shape_change_is_never_recorded_as_a_success_first(reg, client, bus) -> None:
    from bot.binance.errors import ShapeChanged
    from bot.binance.p2p import P2PApi

    seen = events(bus, EndpointChanged)
    client.ok("list_orders", [ROW])
    await P2PApi(reg).list_orders()
    client.ok("list_orders", [RENAMED])
    for _ in range(5):  # five polls of the same wrong shape: one transition, no flapping
        with pytest.raises(ShapeChanged):
            await P2PApi(reg).list_orders()
    await bus.drain()
    assert [(str(e.old), str(e.new)) for e in seen] == [("unknown", "available"),
                                                         ("available", "failing")]


async def test_one_empty_answer_from_an_endpoint_that_answered_is_failing_not_bogus(reg, client) -> None:
    params = {"page": 1, "rows": 20}
    client.ok("list_orders", [ROW])
    await reg.call("list_orders", params)
    client.fail("list_orders", BogusResponse("empty body", endpoint="list_orders", status=200))
    with pytest.raises(BogusResponse):
        await reg.call("list_orders", params)
    assert reg.state("list_orders") is EndpointState.FAILING
    client.ok("list_orders", [ROW])
    await reg.call("list_orders", params)  # sent on the poller's next tick, not parked
    assert reg.state("list_orders") is EndpointState.AVAILABLE


async def test_an_endpoint_that_never_answered_properly_is_bogus_on_an_empty_answer(reg, client) -> None:
    client.fail("list_orders", BogusResponse("empty body", endpoint="list_orders", status=200))
    with pytest.raises(BogusResponse):
        await reg.call("list_orders", {"page": 1, "rows": 20})
    assert reg.state("list_orders") is EndpointState.BOGUS
    with pytest.raises(CapabilityUnavailable):
        await reg.call("list_orders", {"page": 1, "rows": 20})


def test_a_pause_or_a_ban_takes_every_capability_down_until_its_end(reg, client) -> None:
    from datetime import datetime
    from types import SimpleNamespace

    from bot.commands.probe import render, render_json
    from bot.ops.status_api import capabilities, readiness

    bot = SimpleNamespace(registry=reg, client=client, clock=client.clock,
                          cfg=SimpleNamespace(capabilities=SimpleNamespace(
                              essential=("market", "repricing"))),
                          engine=SimpleNamespace(dry_run=False))
    for ep in ("search", "update_ad"):
        reg.assume(ep, EndpointState.AVAILABLE, None, "")
    assert readiness(bot) == (True, [])
    client.paused_until = client.clock.now + 42  # a 429's Retry-After runs
    assert readiness(bot) == (False, ["market", "repricing"])
    local = datetime.fromtimestamp(client.paused_until).strftime("%H:%M:%S")
    caps = capabilities(bot)
    assert {c["state"] for c in caps} == {"paused"}
    assert all(c["says"].startswith("paused by the exchange until ") for c in caps)
    assert all(f"{local} local (in 42 s): a rate limit (429)" in c["says"] for c in caps)
    assert all(c["paused_until"] == client.paused_until for c in caps)
    text = render(reg, [])
    assert text.count(f"{local} local (in 42 s)") == len(caps) and " enabled " not in text
    assert '"state": "enabled"' not in render_json(reg, [])
    client.clock.advance(43)  # the pause is over: back as they were
    assert readiness(bot) == (True, [])
    assert "paused" not in {c["state"] for c in capabilities(bot)}
    client.banned_until = client.clock.now + 600
    assert readiness(bot)[0] is False
    assert all("(in 10 min): an IP ban (418)" in c["says"] for c in capabilities(bot))


async def test_a_429_met_on_the_way_lowers_the_governors_limit(client) -> None:
    from bot.ratelimit import RateGovernor

    governor = RateGovernor(6000, clock=client.clock)
    reg = CapabilityRegistry(client, governor=governor)  # type: ignore[arg-type]
    for _ in range(51):  # the weight of 51 requests, spent by the client's request scheduler
        await governor.acquire(1)
        await reg.call("order_summary", {})
    assert governor.limit() == 6000

    def limited_then_ok(params: object) -> object:
        client.rate_limited += 1  # the client waited a 429 out and retried
        return client_ok

    client.ok("order_summary", {})
    client_ok = client.answers["order_summary"]
    client.answers["order_summary"] = limited_then_ok
    await reg.call("order_summary", {})
    assert governor.limit() == 40  # 51 used when it came (x 0.8)
