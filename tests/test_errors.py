"""Every reply docs/exchange.md §6 lists maps to the right exception, carrying what the exchange said."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from typing import Any

import pytest

from bot.binance import errors as E
from bot.binance.errors import check_response, classify


def gw(code: int, msg: str) -> str:
    """A gateway error body."""
    return json.dumps({"code": code, "msg": msg})


def biz(code: Any, message: str = "refused", **extra: Any) -> str:
    """A business error in the success envelope's shape."""
    return json.dumps({"code": code, "message": message, "data": None, "success": False, **extra})


OK = json.dumps({"code": "000000", "message": "success", "data": [], "total": 0, "success": True})
HTML_403 = "<html><head><title>403 Forbidden</title></head><body>Request blocked</body></html>"
HTML_5XX = "<html><body><h1>502 Bad Gateway</h1></body></html>"
REGION = "Service unavailable from a restricted location according to 'b. Eligibility'."

# (id, status, body, headers, class, code)
CASES: list[tuple[str, int, Any, dict[str, str], type[E.BinanceError], int | None]] = [
    # docs/exchange.md §6: gateway codes
    ("-2008", 400, gw(-2008, "Invalid Api-Key ID."), {}, E.EndpointUnregistered, -2008),
    ("-2015", 401, gw(-2015, "Invalid API-key, IP, or permissions for action."), {},
     E.PermissionDenied, -2015),
    ("-2014", 401, gw(-2014, "API-key format invalid."), {}, E.PermissionDenied, -2014),
    ("-1021 ahead", 400, gw(-1021, "Timestamp for this request was 1000ms ahead of the server's time."),
     {}, E.ClockSkew, -1021),
    ("-1021 window", 400, gw(-1021, "Timestamp for this request is outside of the recvWindow."), {},
     E.ClockSkew, -1021),
    ("-1022", 400, gw(-1022, "Signature for this request is not valid."), {}, E.BadSignature, -1022),
    ("-1102", 400, gw(-1102, "Mandatory parameter 'asset' was not sent, was empty/null, or malformed."),
     {}, E.BadParameter, -1102),
    ("-1100", 400, gw(-1100, "Illegal characters found in a parameter."), {}, E.BadParameter, -1100),
    ("-1130", 400, gw(-1130, "Invalid data sent for a parameter."), {}, E.BadParameter, -1130),
    ("-1199", 400, gw(-1199, "parameter error"), {}, E.BadParameter, -1199),
    ("-31002", 400, gw(-31002, "illegal parameter"), {}, E.IllegalParameter, -31002),
    ("-1000 404", 404, gw(-1000, "Request method 'GET' is not supported"), {}, E.RequestRejected, -1000),
    ("-1000 400", 400, gw(-1000, "An unknown error occurred while processing the request."), {},
     E.RequestRejected, -1000),
    ("-1000 500", 500, gw(-1000, "An unknown error occurred while processing the request."), {},
     E.ExchangeUnavailable, -1000),
    ("-1001", 500, gw(-1001, "Internal error; unable to process your request. Please try again."), {},
     E.ExchangeUnavailable, -1001),
    ("-1002", 401, gw(-1002, "You are not authorized to execute this request."), {}, E.NotAuthorized,
     -1002),
    ("-1003 429", 429, gw(-1003, "Too much request weight used; current limit is 12000."),
     {"Retry-After": "2"}, E.RateLimited, -1003),
    ("-1006", 502, gw(-1006, "An unexpected response was received from the message bus."), {},
     E.ExchangeUnavailable, -1006),
    ("-1007", 504, gw(-1007, "Timeout waiting for response from backend server."), {},
     E.ExchangeUnavailable, -1007),
    ("gateway shape on 200", 200, gw(-2008, "Invalid Api-Key ID."), {}, E.EndpointUnregistered, -2008),
    ("negative code in envelope", 200, biz("-1102", "Mandatory parameter 'page'"), {},
     E.BadParameter, -1102),
    ("-2008 in envelope", 200, biz("-2008", "Invalid Api-Key ID."), {}, E.EndpointUnregistered, -2008),
    # docs/exchange.md §6: business codes, as string, as int, only in msg
    ("83998 str", 200, biz("83998", "operation is illegal"), {}, E.OperationIllegal, 83998),
    ("83998 int", 200, biz(83998, "operation is illegal"), {}, E.OperationIllegal, 83998),
    ("83023", 200, biz("83023", "already paid"), {}, E.AlreadyPaid, 83023),
    ("187022", 200, biz("187022", "ad not found or not online"), {}, E.AdNotFound, 187022),
    ("187049 int", 200, biz(187049, "field not allowed"), {}, E.FieldNotAllowed, 187049),
    ("187055", 200, biz("187055", "price out of range"), {}, E.PriceOutOfRange, 187055),
    ("83229", 200, biz("83229", "ad is paused"), {}, E.AdPaused, 83229),
    ("unknown positive", 200, biz("999999", "something else"), {}, E.BusinessError, 999999),
    ("code only in msg", 200, json.dumps({"success": False, "code": None,
                                          "msg": "187055 price out of range"}), {},
     E.PriceOutOfRange, 187055),
    ("msg code, success code", 200, biz("000000", "error 83229: ad is paused"), {}, E.AdPaused, 83229),
    ("no code at all", 200, biz("000000", "failed"), {}, E.BusinessError, None),
    ("positive on 400", 400, json.dumps({"code": 187022, "msg": "ad not found"}), {}, E.AdNotFound,
     187022),
    ("positive str in msg 400", 400, json.dumps({"code": "187049", "msg": "field not allowed"}), {},
     E.FieldNotAllowed, 187049),
    # HTTP statuses
    ("429 empty", 429, "", {"Retry-After": "2"}, E.RateLimited, None),
    ("418", 418, gw(-1003, "Way too much request weight used; IP banned until 1700000300000."),
     {"Retry-After": "300"}, E.IpBanned, -1003),
    ("418 html", 418, "<html>banned</html>", {}, E.IpBanned, None),
    ("451", 451, json.dumps({"code": 0, "msg": REGION}), {}, E.RegionRestricted, 0),
    ("451 empty", 451, "", {}, E.RegionRestricted, None),
    ("403 html", 403, HTML_403, {}, E.Forbidden, None),
    ("403 empty", 403, b"", {}, E.Forbidden, None),
    ("500 empty", 500, "", {}, E.ExchangeUnavailable, None),
    ("502 html", 502, HTML_5XX, {}, E.ExchangeUnavailable, None),
    ("503 json text", 503, '"Service Unavailable"', {}, E.ExchangeUnavailable, None),
    ("404 html", 404, "<html>Not Found</html>", {}, E.RequestRejected, None),
    # bodies that are not what a 200 should carry
    ("empty 200", 200, "", {}, E.BogusResponse, None),
    ("empty 200 bytes", 200, b"", {}, E.BogusResponse, None),
    ("whitespace 200", 200, " \n", {}, E.BogusResponse, None),
    ("null 200", 200, "null", {}, E.BogusResponse, None),
    ("empty object 200", 200, "{}", {}, E.BogusResponse, None),
    ("array 200", 200, "[]", {}, E.BogusResponse, None),
    ("non-envelope 200", 200, json.dumps({"serverTime": 1}), {}, E.BogusResponse, None),
    ("malformed json 200", 200, '{"code":"000000","data":', {}, E.BadResponse, None),
    ("html 200", 200, "<html>maintenance</html>", {}, E.BadResponse, None),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "code"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_classify_table(
    status: int, body: Any, headers: dict[str, str], cls: type[E.BinanceError], code: int | None
) -> None:
    exc = classify(status, body, endpoint="search", headers=headers)
    assert type(exc) is cls
    assert exc.endpoint == "search"
    assert exc.status == status
    assert exc.code == code
    assert exc.advice and exc.advice in str(exc)
    assert str(exc).startswith("search: ")
    doc = _json_or_none(body)
    if isinstance(doc, dict) and (doc.get("msg") or doc.get("message")):
        assert exc.msg == (doc.get("msg") or doc.get("message"))
    with pytest.raises(cls) as raised:
        check_response(status, body, endpoint="search", headers=headers)
    assert raised.value.code == code


def _json_or_none(body: Any) -> Any:
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


def test_success_envelope_is_returned_whole() -> None:
    assert classify(200, OK, endpoint="search") is None
    assert check_response(200, OK.encode(), endpoint="search")["total"] == 0


def test_data_false_or_true_is_still_success() -> None:
    body = json.dumps({"code": "000000", "message": "success", "data": False, "success": True})
    assert check_response(200, body)["data"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"serverTime": 1700000000000}', {"serverTime": 1700000000000}),
        ('{"ipRestrict": true, "enableWithdrawals": false}', {"ipRestrict": True,
                                                             "enableWithdrawals": False}),
    ],
)
def test_endpoints_without_envelope(body: str, expected: dict[str, Any]) -> None:
    assert check_response(200, body, endpoint="server_time", envelope=False) == expected


def test_non_envelope_endpoint_rejects_a_scalar() -> None:
    assert type(classify(200, '"ok"', envelope=False)) is E.BadResponse
    assert type(classify(200, "", envelope=False)) is E.BogusResponse


def test_json_numbers_decode_to_exact_decimals() -> None:
    body = '{"code":"000000","data":{"price":92.51,"big":12345678901.12345678,"id":12345678901234567890}}'
    data = check_response(200, body)["data"]
    assert data["price"] == Decimal("92.51") and isinstance(data["price"], Decimal)
    assert data["big"] == Decimal("12345678901.12345678")
    assert data["id"] == 12345678901234567890


@pytest.mark.parametrize(("value", "expected"), [("2", 2.0), ("0", 0.0), ("soon", None), ("-3", 0.0)])
def test_retry_after_header(value: str, expected: float | None) -> None:
    exc = classify(429, "", headers={"retry-after": value})
    assert exc is not None and exc.retry_after == expected


@pytest.mark.parametrize(
    ("cls", "reaction"),
    [
        (E.RateLimited, "failing"), (E.IpBanned, "failing"), (E.ClockSkew, "failing"),
        (E.ExchangeUnavailable, "failing"), (E.IllegalParameter, "failing"),
        (E.WrappedTransient, "failing"), (E.EndpointUnregistered, "unregistered"),
        (E.PermissionDenied, "refused"), (E.BadSignature, "refused"),
        (E.RegionRestricted, "refused"), (E.Forbidden, "refused"), (E.NotAuthorized, "refused"),
        (E.RequestRejected, "failing"), (E.BadParameter, "failing"), (E.ClientBug, "failing"),
        (E.BusinessError, "available"), (E.AdNotFound, "available"),
        (E.QuantityConflict, "available"), (E.BadResponse, "failing"),
        (E.ShapeChanged, "failing"), (E.TooLarge, "failing"), (E.BogusResponse, "bogus"),
    ],
)
def test_each_error_class_carries_its_reaction(cls: type[E.BinanceError], reaction: str) -> None:
    from bot.capabilities.registry import outcome_of

    assert cls.reaction == reaction
    assert outcome_of(cls("x")) == reaction  # the registry applies the class's reaction


def _error_classes() -> list[type[E.BinanceError]]:
    found, todo = [], [E.BinanceError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_has_a_reaction_the_registry_knows() -> None:
    from bot.health import EndpointState

    classes = _error_classes()
    assert len(classes) > 20
    for cls in classes:
        assert isinstance(cls.reaction, EndpointState), cls
        assert cls.__doc__, f"{cls.__name__} says nothing of what the bot does"


def test_an_empty_answer_from_an_endpoint_that_answered_before_is_passing_trouble() -> None:
    from bot.capabilities.registry import outcome_of

    assert outcome_of(E.BogusResponse("x"), answered=False) == "bogus"
    assert outcome_of(E.BogusResponse("x"), answered=True) == "failing"


def test_exception_keeps_what_the_exchange_said_across_pickling() -> None:
    exc = classify(429, gw(-1003, "Too much"), endpoint="search", headers={"Retry-After": "2",
                                                                           "X-SAPI-USED-IP-WEIGHT-1M": "12001"})
    assert exc is not None
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is E.RateLimited
    assert (copy.endpoint, copy.status, copy.code, copy.msg, copy.retry_after) == (
        "search", 429, -1003, "Too much", 2.0
    )
    assert copy.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "12001"
    assert str(copy) == str(exc)


def test_every_code_in_the_table_has_a_user_safe_message() -> None:
    for code, cls in E.CODES.items():
        exc = cls("m", endpoint="x", code=code)
        assert cls.advice != E.BinanceError.advice or cls is E.BinanceError
        assert f"code {code}" in str(exc)


def test_long_messages_are_cut_in_str() -> None:
    exc = E.BusinessError("x" * 1000, endpoint="search")
    assert len(str(exc)) < 400
    assert exc.msg == "x" * 1000


# --- docs/exchange.md §11.2, §11.3: -9000 wraps the real code; 1870xx is the ad's quantity state

WRAPPED = [
    # (id, status, body, class, code)
    ("187049 inside, HTTP 200", 200, gw(-9000, "187049: This field is not allowed to be updated."),
     E.QuantityConflict, 187049),
    ("187040 inside, HTTP 400", 400, gw(-9000, "Operation failed (187040)"), E.QuantityConflict,
     187040),
    ("187031 in the envelope", 200, biz("-9000", "error 187031, refresh the ad"),
     E.QuantityConflict, 187031),
    ("187055 inside", 200, gw(-9000, "187055: price out of range"), E.PriceOutOfRange, 187055),
    ("187022 inside", 200, gw(-9000, "[187022] ad not found"), E.AdNotFound, 187022),
    ("a range text, no code", 200, gw(-9000, "The price is beyond the limited range"),
     E.PriceOutOfRange, -9000),
    ("a range text with prices", 200,
     gw(-9000, "price must be within the allowed range 88.50 - 96.20"), E.PriceOutOfRange, -9000),
    ("a code the table does not know", 200, gw(-9000, "183001: something else"), E.BusinessError,
     183001),
    ("nothing inside", 200, gw(-9000, "system busy"), E.WrappedTransient, -9000),
    ("nothing inside, 5xx", 503, gw(-9000, "system busy"), E.ExchangeUnavailable, -9000),
]


@pytest.mark.parametrize(("status", "body", "cls", "code"), [c[1:] for c in WRAPPED],
                         ids=[c[0] for c in WRAPPED])
def test_minus_9000_is_decoded_and_reacted_to_by_its_inner_code(
        status: int, body: str, cls: type[E.BinanceError], code: int) -> None:
    exc = classify(status, body, endpoint="update_ad")
    assert type(exc) is cls
    assert exc.code == code
    assert exc.wrapper == -9000
    if code != -9000:
        assert f"code {code} inside -9000" in str(exc)


def test_an_undecodable_minus_9000_is_transient_and_retried() -> None:
    exc = classify(200, gw(-9000, "system busy"), endpoint="update_ad")
    assert isinstance(exc, E.Transient) and exc.reaction == "failing"
    known = classify(200, gw(-9000, "187049 field"), endpoint="update_ad")
    assert not isinstance(known, E.Transient) and known.reaction == "available"


@pytest.mark.parametrize("code", [187049, 187040, 187031])
def test_the_quantity_state_codes_share_one_reaction(code: int) -> None:
    assert type(classify(200, biz(code, "refused"), endpoint="update_ad")) is E.QuantityConflict


def test_minus_31002_on_the_chat_credential_is_a_client_bug_not_unregistered() -> None:
    from bot.capabilities.registry import outcome_of
    from bot.health import EndpointState

    exc = classify(400, gw(-31002, "illegal parameter"), endpoint="chat_credential")
    assert type(exc) is E.ClientBug and exc.code == -31002
    assert "clientType" in str(exc) and "bug" in str(exc)
    assert outcome_of(exc) is not EndpointState.UNREGISTERED
    assert not isinstance(exc, E.Transient)
    # on order detail it stays the intermittent one, retried with the other parameter name
    other = classify(400, gw(-31002, "illegal parameter"), endpoint="order_detail")
    assert type(other) is E.IllegalParameter
