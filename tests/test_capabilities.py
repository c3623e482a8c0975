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
from bot.capabilities import CapabilityRegistry, CapabilityUnavailable, ProbeConfig
from bot.events import CapabilityChanged, EndpointChanged, EventBus
from bot.states import CapState, EndpointState
from state.db import Store
from state.endpoints import EndpointLog
from state.meta import Meta
from tests.fakes import FakeClient, FakeClock


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
    assert all(s.state is CapState.ENABLED for n, s in caps.items() if n != "repricing")
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


def test_endpoint_table_and_capability_table_agree() -> None:
    from bot.binance.endpoints import ENDPOINTS
    from bot.capabilities import CAPABILITIES

    for cap in CAPABILITIES.values():
        for source in cap.sources:
            for name in source.endpoints:
                users = {c.name for c in CAPABILITIES.values()
                         if any(name in s.endpoints for s in c.sources)}
                assert ENDPOINTS[name].capability in users, (name, cap.name)


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
    assert [c.new for c in changes] == [CapState.DEGRADED, CapState.DISABLED, CapState.DEGRADED,
                                        CapState.ENABLED]
    assert changes[0].cause.message == said


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
