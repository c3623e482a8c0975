"""P2PApi: for every endpoint, the exact request on the wire and the typed answer."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from bot.binance.client import Response
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import (
    BadResponse,
    BogusResponse,
    IllegalParameter,
    OperationIllegal,
    ShapeChanged,
)
from bot.binance.models import (
    Ad,
    Categories,
    ChatCredential,
    KeyRestrictions,
    OrderDetail,
    OrderSummary,
    Page,
    ServerTime,
    StatusUpdate,
)
from bot.binance.p2p import MAX_HISTORY_SPAN_MS, P2PApi, history_windows, money
from bot.capabilities.registry import CapabilityRegistry
from tests.support import (
    KEY,
    NOW_MS,
    FakeClient,
    FakeClock,
    ad_json,
    assert_signed,
    envelope,
    make_client,
    mocked,
    path_re,
    search_item,
    sent_requests,
)

ADV_NO = "12345678901234567890"
ORDER_NO = "22845539195128119296"
C2C = "/sapi/v1/c2c"
ORDER = {"orderNumber": ORDER_NO, "advNo": ADV_NO, "tradeType": "SELL", "asset": "USDT",
         "fiat": "RUB", "amount": "10.00", "totalPrice": "925.10", "orderStatus": 2}
CRED = {"chatWssUrl": "wss://im.binance.com:443/chat", "listenKey": "c2c_abc_v2",
        "listenToken": "TOKENdeadbeefdeadbeef"}


@dataclass
class Case:
    """One endpoint: a call, the request it must send, a reply and what the call returns."""

    endpoint: str
    call: Callable[[P2PApi], Awaitable[Any]]
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)  # before recvWindow, decoded
    body: dict[str, Any] | None = None  # None: no body (GET, and POST getDetailByNo)
    reply: Any = None  # JSON document; None: an empty 200
    check: Callable[[Any], bool] = lambda result: True
    signed: bool = True


CASES = [
    Case("search",
         lambda api: api.search_ads("USDT", "RUB", "buy", page=2, rows=10, pay_types=["TinkoffNew"],
                                    publisher_type="merchant", trans_amount=Decimal("5000.00")),
         "POST", f"{C2C}/ads/search",
         body={"asset": "USDT", "fiat": "RUB", "tradeType": "BUY", "page": 2, "rows": 10,
               "payTypes": ["TinkoffNew"], "publisherType": "merchant", "transAmount": "5000.00"},
         reply=envelope([search_item(), search_item(price=92.6)], 57),
         check=lambda r: r.total == 57 and r.items[1].adv.price == Decimal("92.6")),
    Case("reference_price", lambda api: api.reference_prices(["USDT", "BTC"], "RUB", "SELL"),
         "POST", f"{C2C}/ads/getReferencePrice",
         body={"assets": ["USDT", "BTC"], "fiatCurrency": "RUB", "tradeType": "SELL"},
         reply=envelope([{"asset": "USDT", "currency": "RUB", "referencePrice": "92.47",
                          "priceScale": 2}]),
         check=lambda r: r[0].reference_price == Decimal("92.47")),
    Case("categories", lambda api: api.categories(), "GET", f"{C2C}/ads/getAvailableAdsCategory",
         reply=envelope({"advClassifies": ["mass", "profession"]}),
         check=lambda r: isinstance(r, Categories) and r.adv_classifies == ["mass", "profession"]),
    Case("my_ads",
         lambda api: api.my_ads(page=1, rows=20, adv_status=1, asset="USDT", fiatUnit="RUB",
                                trade_type="sell"),
         "POST", f"{C2C}/ads/listWithPagination",
         body={"page": 1, "rows": 20, "advStatus": 1, "asset": "USDT", "fiatUnit": "RUB",
               "tradeType": "SELL"},
         reply=envelope([ad_json()], 1),
         check=lambda r: isinstance(r, Page) and r.items[0].adv_no == ADV_NO),
    Case("ad_detail", lambda api: api.ad_detail(ADV_NO), "POST", f"{C2C}/ads/getDetailByNo",
         query=[("adsNo", ADV_NO)], reply=envelope(ad_json()),  # no body at all (docs/exchange.md §3)
         check=lambda r: isinstance(r, Ad) and r.price == Decimal("92.51")),
    Case("update_ad", lambda api: api.update_ad_price(ADV_NO, price=Decimal("92.51")),
         "POST", f"{C2C}/ads/update", body={"advNo": ADV_NO, "price": "92.51"},
         reply=envelope(True), check=lambda r: r is True),
    Case("update_ad_status", lambda api: api.update_ad_status([ADV_NO], 3),
         "POST", f"{C2C}/ads/updateStatus", body={"advNos": [ADV_NO], "advStatus": 3},
         reply=envelope({"status": True, "failList": []}),
         check=lambda r: isinstance(r, StatusUpdate) and r.ok),
    Case("order_summary", lambda api: api.order_summary(),
         "GET", f"{C2C}/orderMatch/getUserOrderSummary",
         reply=envelope({"buyerPayedCount": 1, "inAppealCount": 0, "inProcessCount": 2,
                         "tradingCount": 1}),
         check=lambda r: isinstance(r, OrderSummary) and r.in_process_count == 2),
    Case("list_orders", lambda api: api.list_orders(statuses=[1, 2], trade_type="SELL"),
         "POST", f"{C2C}/orderMatch/listOrders",
         body={"page": 1, "rows": 20, "orderStatusList": [1, 2], "tradeType": "SELL"},
         reply=envelope([ORDER], 1),
         check=lambda r: r.items[0].order_number == ORDER_NO and r.items[0].unit_price == Decimal("92.51")),
    Case("order_detail", lambda api: api.order_detail(ORDER_NO),
         "POST", f"{C2C}/orderMatch/getUserOrderDetail", body={"adOrderNo": ORDER_NO},
         reply=envelope({**ORDER, "price": "92.51"}),
         check=lambda r: isinstance(r, OrderDetail) and r.price == Decimal("92.51")),
    Case("order_history",
         lambda api: api.order_history("sell", start_timestamp=NOW_MS - 86_400_000,
                                       end_timestamp=NOW_MS, page=1, rows=100),
         "GET", f"{C2C}/orderMatch/listUserOrderHistory",
         query=[("tradeType", "SELL"), ("startTimestamp", str(NOW_MS - 86_400_000)),
                ("endTimestamp", str(NOW_MS)), ("page", "1"), ("rows", "100")],
         reply=envelope([{**ORDER, "orderStatus": "COMPLETED", "unitPrice": "92.51"}], 1),
         check=lambda r: r.items[0].status == 4),
    Case("chat_credential", lambda api: api.chat_credential(),
         "GET", f"{C2C}/chat/retrieveChatCredential", reply=envelope(CRED),
         check=lambda r: isinstance(r, ChatCredential) and r.listen_key == "c2c_abc_v2"),
    Case("chat_messages", lambda api: api.chat_messages(ORDER_NO, page=2, rows=50, before_id="9"),
         "GET", f"{C2C}/chat/retrieveChatMessagesWithPagination",
         query=[("page", "2"), ("rows", "50"), ("orderNo", ORDER_NO), ("id", "9")],
         reply=envelope([{"id": 1234567890123456789, "type": "text", "content": "hi",
                          "orderNo": ORDER_NO, "self": False}], 1),
         check=lambda r: r.items[0].id == "1234567890123456789"),
    Case("key_permissions", lambda api: api.key_restrictions(),
         "GET", "/sapi/v1/account/apiRestrictions",
         reply={"ipRestrict": True, "enableWithdrawals": False, "enableReading": True},
         check=lambda r: isinstance(r, KeyRestrictions) and r.ip_restrict is True),
    Case("server_time", lambda api: api.server_time(), "GET", "/api/v3/time",
         reply={"serverTime": NOW_MS}, signed=False,
         check=lambda r: isinstance(r, ServerTime) and r.server_time == NOW_MS),
    Case("get_ads", lambda api: api.get_ads(), "GET", f"{C2C}/ads/getAds", reply=None),
    Case("merchant_detail", lambda api: api.merchant_detail(), "POST", f"{C2C}/user/baseDetail",
         body={}, reply=envelope({"businessStatus": 3, "nickName": "desk"}),
         check=lambda r: r.business_status == 3 and r.state == "break"),
    Case("start_business", lambda api: api.set_business(True), "POST",
         f"{C2C}/merchant/startBusiness", body={}, reply=envelope(True), check=lambda r: r is True),
    Case("close_business", lambda api: api.set_business(False), "POST",
         f"{C2C}/merchant/closeBusiness", body={}, reply=envelope(None), check=lambda r: r is True),
    Case("funding_asset", lambda api: api.funding_free("USDT"),
         "POST", "/sapi/v1/asset/get-funding-asset", query=[("asset", "USDT")],
         reply=[{"asset": "USDT", "free": "1234.5", "locked": "0", "freeze": "0",
                 "withdrawing": "0", "btcValuation": "0"}],
         check=lambda r: r == Decimal("1234.5")),
]


def test_every_endpoint_of_the_table_is_covered() -> None:
    assert sorted(c.endpoint for c in CASES) == sorted(ENDPOINTS)
    for case in CASES:
        ep = ENDPOINTS[case.endpoint]
        assert (ep.method, ep.path) == (case.method, case.path)


@pytest.mark.parametrize("case", CASES, ids=[c.endpoint for c in CASES])
async def test_the_exact_request_of_each_endpoint(case: Case) -> None:
    async with make_client(FakeClock(NOW_MS / 1000)) as client:
        api = P2PApi(client)
        with mocked() as m:
            body = "" if case.reply is None else json.dumps(case.reply)
            m.add(path_re(case.path), case.method, body=body)
            if case.reply is None:
                with pytest.raises(BogusResponse):
                    await case.call(api)
            else:
                assert case.check(await case.call(api))
            (sent,) = sent_requests()
    assert sent.method == case.method
    assert sent.url.raw_path == case.path
    assert sent.headers["clientType"] == "web"
    if case.signed:
        assert [(k, sent.param(k)) for k in sent.keys[:-3]] == case.query
        assert_signed(sent)
        assert sent.param("recvWindow") == "5000" and sent.param("timestamp") == str(NOW_MS)
        assert sent.headers["X-MBX-APIKEY"] == KEY
    else:
        assert sent.raw_query == "" and "X-MBX-APIKEY" not in sent.headers
    if case.body is None:
        assert sent.body is None and "Content-Type" not in sent.headers
    else:
        assert sent.headers["Content-Type"] == "application/json"
        assert sent.json() == case.body
        assert list(sent.json()) == list(case.body)  # keys in the documented order


# --- behaviour over a fake caller ------------------------------------------------------------------


def reply(endpoint: str, data: Any, total: int | None = None) -> Response:
    return Response(ENDPOINTS[endpoint], 200, envelope(data, total))


@pytest.fixture
def fake() -> FakeClient:
    return FakeClient(FakeClock())


@pytest.fixture
def api(fake: FakeClient) -> P2PApi:
    return P2PApi(fake)


def illegal() -> IllegalParameter:
    return IllegalParameter("illegal parameter", endpoint="order_detail", status=400, code=-31002)


async def test_order_detail_retries_once_with_order_number_on_illegal_parameter(
    fake: FakeClient, api: P2PApi
) -> None:
    answers: list[Any] = [illegal(), reply("order_detail", ORDER)]

    def script(params: Mapping[str, Any] | None) -> Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake.answers["order_detail"] = script
    detail = await api.order_detail(ORDER_NO)
    assert detail.order_number == ORDER_NO
    assert fake.calls == [("order_detail", {"adOrderNo": ORDER_NO}),
                          ("order_detail", {"adOrderNo": ORDER_NO, "orderNumber": ORDER_NO})]


async def test_order_detail_gives_up_after_the_second_illegal_parameter(
    fake: FakeClient, api: P2PApi
) -> None:
    fake.fail("order_detail", illegal())
    with pytest.raises(IllegalParameter):
        await api.order_detail(ORDER_NO)
    assert fake.sent("order_detail") == 2


async def test_order_detail_does_not_retry_other_errors(fake: FakeClient, api: P2PApi) -> None:
    fake.fail("order_detail", OperationIllegal("operation is illegal", code=83998))
    with pytest.raises(OperationIllegal):
        await api.order_detail(ORDER_NO)
    assert fake.sent("order_detail") == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"price": Decimal("1"), "ratio": Decimal("100")}, ValueError),
        ({"price": 92.51}, TypeError),
        ({"price": Decimal("0")}, ValueError),
        ({"ratio": Decimal("NaN")}, ValueError),
    ],
)
async def test_update_ad_price_refuses_bad_arguments_before_sending(
    fake: FakeClient, api: P2PApi, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await api.update_ad_price(ADV_NO, **kwargs)
    assert fake.calls == []


async def test_update_ad_price_sends_only_adv_no_and_the_ratio(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("update_ad", True)
    assert await api.update_ad_price(ADV_NO, ratio=Decimal("101.2500")) is True
    assert fake.calls == [("update_ad", {"advNo": ADV_NO, "priceFloatingRatio": "101.2500"})]


@pytest.mark.parametrize(("data", "result"), [(True, True), (False, False), (None, True)])
async def test_update_ad_price_result(fake: FakeClient, api: P2PApi, data: Any, result: bool) -> None:
    fake.ok("update_ad", data)
    assert await api.update_ad_price(ADV_NO, price="92.51") is result


async def test_update_ad_price_odd_data_is_a_bad_response(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("update_ad", {"weird": 1})
    with pytest.raises(BadResponse, match="update_ad"):
        await api.update_ad_price(ADV_NO, price="92.51")


async def test_a_missing_field_names_endpoint_and_field(fake: FakeClient, api: P2PApi) -> None:
    rows = [search_item(), search_item()]
    del rows[1]["adv"]["price"]
    fake.ok("search", rows)
    with pytest.raises(BadResponse) as raised:
        await api.search_ads("USDT", "RUB", "BUY")
    assert str(raised.value).startswith("search: ")
    assert raised.value.msg == "the exchange's answer changed shape: data[1].adv.price: field required"


async def test_an_empty_page_may_come_as_null_only_with_a_total_of_zero(
    fake: FakeClient, api: P2PApi
) -> None:
    fake.answers["list_orders"] = Response(
        ENDPOINTS["list_orders"], 200, {"code": "000000", "data": None, "total": 0, "success": True})
    page = await api.list_orders()
    assert page.items == [] and page.total == 0
    fake.ok("list_orders", None)  # rows null and no total: the desk would be blind
    with pytest.raises(ShapeChanged, match="data: input should be a valid list"):
        await api.list_orders()


async def test_search_sends_only_what_is_given(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("search", [])
    await api.search_ads("USDT", "RUB", "SELL")
    assert fake.calls == [("search", {"asset": "USDT", "fiat": "RUB", "tradeType": "SELL",
                                      "page": 1, "rows": 20})]


async def test_chat_credential_sends_no_parameter(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("chat_credential", CRED)
    await api.chat_credential()
    assert fake.calls == [("chat_credential", None)]


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.search_ads("USDT", "RUB", "SIDEWAYS"),
        lambda api: api.search_ads("USDT", "RUB", "BUY", page=0),
        lambda api: api.reference_prices(["A", "B", "C", "D"], "RUB", "BUY"),
        lambda api: api.reference_prices([], "RUB", "BUY"),
        lambda api: api.my_ads(colour="red"),
        lambda api: api.update_ad_status([ADV_NO], 2),
        lambda api: api.order_history("SELL", start_timestamp=0, end_timestamp=10, rows=101),
        lambda api: api.order_history("SELL"),  # an open window is "until now": it moves
        lambda api: api.order_history("SELL", start_timestamp=0, end_timestamp=31 * 86_400_000),
        lambda api: api.order_history("SELL", start_timestamp=10, end_timestamp=5),
    ],
)
async def test_bad_arguments_are_refused_before_sending(
    fake: FakeClient, api: P2PApi, call: Callable[[P2PApi], Awaitable[Any]]
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await call(api)
    assert fake.calls == []


async def test_my_ads_drops_none_filters(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("my_ads", [])
    await api.my_ads(advNo=ADV_NO, asset=None)
    assert fake.calls == [("my_ads", {"page": 1, "rows": 20, "advNo": ADV_NO})]


async def test_update_ad_status_takes_one_number(fake: FakeClient, api: P2PApi) -> None:
    await api.update_ad_status(ADV_NO, 1)
    assert fake.calls == [("update_ad_status", {"advNos": [ADV_NO], "advStatus": 1})]


async def test_a_single_pay_type_is_not_split_into_letters(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("search", [])
    await api.search_ads("USDT", "RUB", "BUY", pay_types="TinkoffNew")
    assert fake.calls[0][1]["payTypes"] == ["TinkoffNew"]  # type: ignore[index]


async def test_reference_price_of_one_asset(fake: FakeClient, api: P2PApi) -> None:
    fake.ok("reference_price", [{"asset": "USDT", "referencePrice": "92.47"}])
    ref = await api.reference_price("usdt", "RUB", "BUY")
    assert ref is not None and ref.reference_price == Decimal("92.47")
    assert fake.calls == [("reference_price", {"assets": ["usdt"], "fiatCurrency": "RUB",
                                               "tradeType": "BUY"})]
    fake.ok("reference_price", [])
    assert await api.reference_price("USDT", "RUB", "BUY") is None


def test_money() -> None:
    assert money(Decimal("92.510")) == "92.510"
    assert money(Decimal("1E+2")) == "100"
    assert money("17.92") == "17.92"
    assert money(5) == "5"
    for bad in (1.5, True):
        with pytest.raises(TypeError):
            money(bad)  # type: ignore[arg-type]


async def test_the_capability_registry_is_a_caller(fake: FakeClient) -> None:
    reg = CapabilityRegistry(fake)  # type: ignore[arg-type]
    fake.ok("order_summary", {"tradingCount": 3})
    summary = await P2PApi(reg).order_summary()
    assert summary.trading_count == 3
    assert fake.calls == [("order_summary", None)]


def test_history_windows_are_fixed_back_to_back_and_at_most_30_days() -> None:
    day = 86_400_000
    windows = history_windows(0, 65 * day)
    assert windows == [(0, 30 * day), (30 * day + 1, 60 * day + 1), (60 * day + 2, 65 * day)]
    assert all(end - start <= MAX_HISTORY_SPAN_MS for start, end in windows)
    assert history_windows(5, 5) == [(5, 5)]
    with pytest.raises(ValueError):
        history_windows(10, 5)
