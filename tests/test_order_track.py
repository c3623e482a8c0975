"""Order tracking without I/O: forward-only statuses, inferred steps, records from replies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.binance.models import OrderDetail, OrderRow
from bot.chat.protocol import status_of_event
from bot.orders.track import infer_path, record_from_row, tidy
from state.orders import OrderRecord, Step

ORDER = "22812345678901234567"


@pytest.mark.parametrize(("old", "new", "path"), [
    (None, 1, [(None, 1, False)]),
    (None, 2, [(None, 1, True), (1, 2, False)]),
    (None, 3, [(None, 1, True), (1, 2, True), (2, 3, False)]),
    (None, 4, [(None, 1, True), (1, 2, True), (2, 4, False)]),
    (None, 6, [(None, 1, True), (1, 6, False)]),
    (None, 7, [(None, 1, True), (1, 7, False)]),
    (1, 2, [(1, 2, False)]),
    (1, 4, [(1, 2, True), (2, 4, False)]),
    (1, 3, [(1, 2, True), (2, 3, False)]),
    (1, 6, [(1, 6, False)]),
    (2, 4, [(2, 4, False)]),
    (2, 6, [(2, 6, False)]),
    (3, 4, [(3, 4, False)]),
    (3, 6, [(3, 6, False)]),
    # stale, repeated or backwards: nothing moves
    (1, 1, []), (2, 1, []), (3, 2, []), (4, 1, []), (4, 2, []), (4, 6, []), (6, 4, []),
    (7, 4, []), (3, 3, []),
    (1, 5, []),  # there is no status 5
])
def test_statuses_only_move_forward_and_fill_in_what_must_have_happened(
        old: int | None, new: int, path: list[tuple[int | None, int, bool]]) -> None:
    assert infer_path(old, new) == [Step(o, n, i) for o, n, i in path]


@pytest.mark.parametrize(("event", "status"), [
    ("seller_payed", 2), ("SELLER_PAYED", 2), ("seller_payed_with_ref_fiat_trade", 2),
    ("buyer_appeal_completed", 3), ("cancelled_by_system", 7), ("", None), ("typing", None),
])
def test_system_events(event: str, status: int | None) -> None:
    assert status_of_event(event) == status


@pytest.mark.parametrize(("value", "shown"), [
    ("100.00000000", "100.00"), ("9250.00000000", "9250.00"), ("92.5", "92.50"),
    ("0.00123400", "0.001234"), ("17.123", "17.123"), ("1000", "1000.00"),
])
def test_amounts_lose_the_padding_not_the_precision(value: str, shown: str) -> None:
    result = tidy(Decimal(value))
    assert result is not None and format(result, "f") == shown and result == Decimal(value)


ROW = {"orderNumber": ORDER, "advNo": "11000000000000000001", "tradeType": "SELL",
       "asset": "USDT", "fiat": "RUB", "amount": "100.00000000", "totalPrice": "9250.00000000",
       "orderStatus": 1, "createTime": 1_751_796_000_000, "buyerNickname": "alice",
       "sellerNickname": "me"}


def test_a_list_row_has_no_price_and_no_payment_method() -> None:
    rec = record_from_row(OrderRow.model_validate(ROW), "list")
    assert rec == OrderRecord(
        order_number=ORDER, status=1, adv_no="11000000000000000001", side="SELL", asset="USDT",
        fiat="RUB", amount=Decimal("100.00"), total=Decimal("9250.00"), price=Decimal("92.50"),
        counterparty="alice", pay_method=None, created_at=1_751_796_000.0, source="list")


def test_a_detail_names_the_selected_payment_method_and_the_price() -> None:
    detail = OrderDetail.model_validate({
        **ROW, "tradeType": "BUY", "price": "92.51", "selectedPayId": 10000001, "payType": "SBP",
        "payMethods": [{"id": 10000000, "identifier": "Tinkoff", "tradeMethodName": "Tinkoff"},
                       {"id": 10000001, "identifier": "SBP",
                        "tradeMethodName": "SBP - Fast Bank Transfer"}]})
    rec = record_from_row(detail, "detail")
    assert rec is not None
    assert (rec.price, rec.pay_method, rec.counterparty) == (Decimal("92.51"),
                                                            "SBP - Fast Bank Transfer", "me")


def test_an_unknown_status_is_skipped() -> None:
    assert record_from_row(OrderRow.model_validate({**ROW, "orderStatus": 5}), "list") is None


def test_merging_never_erases_what_is_known() -> None:
    full = record_from_row(OrderRow.model_validate(ROW), "list")
    assert full is not None
    merged = full.merged(OrderRecord(ORDER, 2, pay_method="SBP", source="chat"))
    assert (merged.status, merged.amount, merged.pay_method, merged.source) == (
        2, Decimal("100.00"), "SBP", "chat")
