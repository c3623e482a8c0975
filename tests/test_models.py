"""Response models: exact decimals, ids as strings, unknown fields kept, clear errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from bot.binance.errors import BadResponse, check_response
from bot.binance.models import (
    Ad,
    AdStatus,
    Advertiser,
    Categories,
    ChatCredential,
    ChatMessage,
    HistoryRow,
    KeyRestrictions,
    OrderDetail,
    OrderRow,
    OrderStatus,
    OrderSummary,
    Page,
    ReferencePrice,
    SearchItem,
    ServerTime,
    StatusUpdate,
    parse,
)
from tests.support import ad_json, search_item

ADV_NO = "12345678901234567890"  # 20 digits: more than an int64 or a float holds
ORDER_NO = "22845539195128119296"
TOKEN = "TOKENa1b2c3d4e5f60718293a4b5c6d7e8f9"


def envelope(data: Any) -> str:
    """The success envelope as JSON text (what the client decodes)."""
    return json.dumps({"code": "000000", "message": "success", "data": data, "success": True})


def test_search_item_from_the_wire() -> None:
    data = check_response(200, envelope([search_item()]))["data"]
    item = parse(list[SearchItem], data, "search")[0]
    assert item.adv.adv_no == ADV_NO
    assert item.adv.price == Decimal("92.51")
    assert item.adv.surplus_amount == Decimal("114.00000000")
    assert item.adv.trade_methods[0].identifier == "TinkoffNew"
    assert item.adv.trade_methods[0].model_extra == {"iconUrlColor": "#FFDD2D"}
    assert item.advertiser.month_finish_rate == Decimal("0.987")
    assert item.advertiser.is_merchant
    assert item.advertiser.user_no == "s0123456789abcdef0123456789abcdef"


def test_unknown_fields_are_kept() -> None:
    ad = parse(Ad, ad_json(newField={"x": 1}), "ad_detail")
    assert ad.model_extra is not None
    assert ad.model_extra["isTradable"] is True
    assert ad.model_extra["newField"] == {"x": 1}


@pytest.mark.parametrize(
    ("wire", "exact"),
    [
        ("92.51", Decimal("92.51")),
        ("17.92", Decimal("17.92")),
        ("1.89000000", Decimal("1.89000000")),
        ("12345678901.12345678", Decimal("12345678901.12345678")),
        ("0.1", Decimal("0.1")),
    ],
)
def test_prices_are_exact_decimals_from_json_numbers_and_strings(wire: str, exact: Decimal) -> None:
    as_number = '{"code":"000000","data":{"advNo":"1","price":' + wire + "}}"
    as_string = '{"code":"000000","data":{"advNo":"1","price":"' + wire + '"}}'
    for body in (as_number, as_string):
        ad = parse(Ad, check_response(200, body)["data"], "ad_detail")
        assert isinstance(ad.price, Decimal)
        assert ad.price == exact and str(ad.price) == str(exact)


def test_a_float_given_by_other_code_reads_through_its_repr() -> None:
    assert parse(Ad, {"advNo": "1", "price": 92.51}, "x").price == Decimal("92.51")
    assert parse(Ad, {"advNo": "1", "price": 100}, "x").price == Decimal(100)


@pytest.mark.parametrize("bad", ["abc", True, "NaN", "Infinity", [1]])
def test_a_bad_price_is_a_bad_response(bad: Any) -> None:
    with pytest.raises(BadResponse, match=r"ad_detail: .*data\.price: "):
        parse(Ad, {"advNo": "1", "price": bad}, "ad_detail")


def test_empty_optional_decimal_is_none() -> None:
    ad = parse(Ad, ad_json(priceFloatingRatio="", initAmount=None), "my_ads")
    assert ad.price_floating_ratio is None and ad.init_amount is None


@pytest.mark.parametrize(
    "wire",
    ['"12345678901234567890"', "12345678901234567890", "99999999999999999999"],
)
def test_twenty_digit_ids_stay_exact_strings(wire: str) -> None:
    body = '{"code":"000000","data":{"advNo":' + wire + ',"price":"1"}}'
    ad = parse(Ad, check_response(200, body)["data"], "ad_detail")
    assert ad.adv_no == wire.strip('"')
    assert isinstance(ad.adv_no, str)


def test_order_and_chat_ids_stay_exact_strings() -> None:
    body = (
        '{"code":"000000","data":[{"orderNumber":' + ORDER_NO + ',"advNo":' + ADV_NO
        + ',"orderStatus":1,"amount":"10.75","totalPrice":"1000.00"}]}'
    )
    row = parse(list[OrderRow], check_response(200, body)["data"], "list_orders")[0]
    assert (row.order_number, row.adv_no) == (ORDER_NO, ADV_NO)
    msg = parse(ChatMessage, json.loads('{"id": 1234567890123456789, "orderNo": ' + ORDER_NO + "}"), "c")
    assert msg.id == "1234567890123456789" and msg.order == ORDER_NO


def test_a_float_id_is_refused_rather_than_guessed() -> None:
    with pytest.raises(BadResponse, match=r"data\.advNo: an id must be a string or an integer"):
        parse(Ad, {"advNo": 1.2345678901234567e19, "price": "1"}, "ad_detail")


def test_missing_required_field_names_endpoint_and_field() -> None:
    rows = [search_item() for _ in range(5)]
    del rows[3]["adv"]["price"]
    with pytest.raises(BadResponse) as raised:
        parse(list[SearchItem], rows, "search")
    exc = raised.value
    assert exc.endpoint == "search"
    assert exc.msg == "data[3].adv.price: field required"
    assert str(exc).startswith("search: ")
    assert "data[3].adv.price: field required" in str(exc)
    assert exc.__cause__ is None and exc.__suppress_context__


def test_many_errors_are_counted_not_listed() -> None:
    with pytest.raises(BadResponse, match=r"data\[0\]\.adv: field required \(and 3 more\)"):
        parse(list[SearchItem], [{}, {}], "search")


def test_a_bad_response_never_shows_the_secret_values() -> None:
    bad = {"chatWssUrl": None, "listenKey": "c2c_abcdef", "listenToken": TOKEN}
    with pytest.raises(BadResponse) as raised:
        parse(ChatCredential, bad, "chat_credential")
    assert "data.chatWssUrl" in str(raised.value)
    for text in (str(raised.value), repr(raised.value), raised.value.msg):
        assert TOKEN not in text and "c2c_abcdef" not in text
    with pytest.raises(BadResponse) as raised:
        parse(ChatCredential, {"chatWssUrl": "wss://x", "listenKey": "k", "listenToken": [TOKEN]},
              "chat_credential")
    assert TOKEN not in str(raised.value)


def test_chat_credential_keeps_the_token_out_of_repr() -> None:
    cred = parse(ChatCredential, {"chatWssUrl": "wss://im.binance.com:443/chat",
                                  "listenKey": "c2c_abcdef_v2", "listenToken": TOKEN,
                                  "sessionToken": "ANOTHERSECRET"}, "chat_credential")
    for text in (repr(cred), str(cred)):
        assert TOKEN not in text and "ANOTHERSECRET" not in text and "c2c_abcdef_v2" not in text
    assert cred.listen_token.get_secret_value() == TOKEN
    assert cred.websocket_url() == (
        f"wss://im.binance.com:443/chat/c2c_abcdef_v2?token={TOKEN}&clientType=web"
    )


def test_order_row_unit_price_and_status() -> None:
    row = parse(OrderRow, {"orderNumber": ORDER_NO, "orderStatus": 2, "amount": "100",
                           "totalPrice": "9251.00", "buyerNickname": "b"}, "list_orders")
    assert row.unit_price == Decimal("92.51")
    assert row.status is OrderStatus.BUYER_PAYED and not row.status.is_final
    zero = row.model_copy(update={"amount": Decimal(0)})
    assert zero.unit_price is None
    unknown = row.model_copy(update={"order_status": 5})
    assert unknown.status is None


def test_order_detail_prefers_its_price_and_hides_real_names() -> None:
    detail = parse(OrderDetail, {"orderNumber": ORDER_NO, "orderStatus": 4, "amount": "3",
                                 "totalPrice": "100", "price": "33.33", "buyerName": "IVAN IVANOV",
                                 "sellerName": "PETR PETROV", "payMethods": [{"id": 1}]},
                   "order_detail")
    assert detail.unit_price == Decimal("33.33")
    assert "IVAN" not in repr(detail) and "PETR" not in repr(detail)
    assert detail.buyer_name == "IVAN IVANOV"
    assert detail.status is OrderStatus.COMPLETED and detail.status.is_final


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("TRADING", OrderStatus.TRADING), ("PENDING", OrderStatus.TRADING),
        ("BUYER_PAYED", OrderStatus.BUYER_PAYED), ("DISTRIBUTING", OrderStatus.BUYER_PAYED),
        ("IN_APPEAL", OrderStatus.IN_APPEAL), ("COMPLETED", OrderStatus.COMPLETED),
        ("CANCELLED", OrderStatus.CANCELLED), ("CANCELLED_BY_SYSTEM", OrderStatus.CANCELLED_BY_SYSTEM),
        ("completed", OrderStatus.COMPLETED), ("SOMETHING_NEW", None),
    ],
)
def test_history_status_strings(text: str, status: OrderStatus | None) -> None:
    row = parse(HistoryRow, {"orderNumber": ORDER_NO, "orderStatus": text, "amount": "1",
                             "totalPrice": "92.51", "unitPrice": "92.51"}, "order_history")
    assert row.status is status
    assert row.unit_price == Decimal("92.51")


def test_order_status_finality() -> None:
    assert {s for s in OrderStatus if s.is_final} == {4, 6, 7}
    assert 5 not in {int(s) for s in OrderStatus}
    assert OrderStatus.from_int(5) is None


def test_small_models() -> None:
    assert parse(OrderSummary, {"buyerPayedCount": 1, "inAppealCount": 0, "inProcessCount": 3,
                                "tradingCount": 2}, "order_summary").trading_count == 2
    assert parse(Categories, {"advClassifies": ["mass", "profession"]}, "categories").adv_classifies == [
        "mass", "profession"]
    ref = parse(list[ReferencePrice], [{"asset": "USDT", "assetScale": 2, "currency": "RUB",
                                        "currencyScale": 2, "currencySymbol": "₽", "priceScale": 2,
                                        "referencePrice": "92.47"}], "reference_price")[0]
    assert ref.reference_price == Decimal("92.47")
    keys = parse(KeyRestrictions, {"ipRestrict": True, "enableWithdrawals": False,
                                   "enableInternalTransfer": False, "createTime": 1700000000000,
                                   "enableReading": True}, "key_permissions")
    assert keys.ip_restrict is True and keys.enable_withdrawals is False
    assert parse(ServerTime, {"serverTime": 1700000000123}, "server_time").server_time == 1700000000123
    update = parse(StatusUpdate, {"status": True, "failList": [{"advNo": ADV_NO, "errorCode": 187022,
                                                                "errorMsg": "x"}]}, "update_ad_status")
    assert not update.ok and update.fail_list[0].adv_no == ADV_NO
    assert AdStatus.OFFLINE == 3


def test_chat_message_flags() -> None:
    msg = parse(ChatMessage, {"id": "1", "type": "text", "content": "hi", "self": True,
                              "topicId": ORDER_NO, "fromNickName": "me", "status": "read"}, "chat")
    assert msg.is_self and msg.order == ORDER_NO


def test_models_accept_python_names_too() -> None:
    ad = Ad(adv_no="1", price=Decimal("1.5"))
    assert ad.model_dump(by_alias=True)["advNo"] == "1"
    assert Advertiser(nick_name="x").nick_name == "x"


def test_page_is_generic() -> None:
    page = Page[Ad](items=[Ad(adv_no="1", price=Decimal(1))], total=7)
    assert page.total == 7 and page.items[0].adv_no == "1"
