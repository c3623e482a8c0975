"""The exchange's errors as one exception tree: the tree is the bot's reaction table.

`check_response(endpoint, status, body)` is the one place that turns an HTTP
reply into data or a typed error. Each class carries its reaction as data: `reaction`,
the state the error puts its endpoint in, which the capability registry applies
(blocked states are not sent again until a probe succeeds; failing endpoints are
tried on the next tick and re-probed on backoff). There is no second table: the
registry reads this attribute, and tests/test_errors.py checks every class has one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from bot.health import EndpointState

SUCCESS_CODE = "000000"


class BinanceError(Exception):
    """Anything the exchange (or the way to it) answered that is not success."""

    advice: ClassVar[str] = "the exchange refused the request"
    reaction: ClassVar[EndpointState] = EndpointState.FAILING  # what it makes of its endpoint

    def __init__(
        self,
        msg: str = "",
        *,
        endpoint: str | None = None,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.msg = msg
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.wrapper: int | None = None  # -9000 when `code` was decoded from inside a -9000
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        said = []
        if self.status is not None:
            said.append(f"HTTP {self.status}")
        if self.code is not None:
            said.append(f"code {self.code}" if self.wrapper is None or self.code == self.wrapper
                        else f"code {self.code} inside {self.wrapper}")
        if self.msg:
            said.append(repr(self.msg[:200]))
        tail = f" ({', '.join(said)})" if said else ""
        return f"{where}{self.advice}{tail}"

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword attributes across pickling
        return (_rebuild, (type(self), self.msg, self.__dict__))


def _rebuild(cls: type[BinanceError], msg: str, state: dict[str, Any]) -> BinanceError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, msg)
    exc.__dict__.update(state)
    return exc


# --- retry later ------------------------------------------------------------------


class Transient(BinanceError):
    """Passing trouble: the endpoint is marked failing and retried on backoff."""

    advice = "the exchange could not answer now; the bot retries later"


class ExchangeUnavailable(Transient):
    """5xx, timeout or connection error. For a write the outcome is unknown: read back first."""

    advice = "the exchange is unavailable (server error, timeout or connection failure)"

    @property
    def outcome_unknown(self) -> bool:
        """True unless the exchange certainly did not act (a gateway 5xx before routing)."""
        return True


class RateLimited(Transient):
    """HTTP 429 / -1003: every sender pauses for Retry-After."""

    advice = "rate limit reached; all requests pause for the time the exchange asked"


class IpBanned(Transient):
    """HTTP 418: all traffic stops until the ban ends; the ban is persisted."""

    advice = "this IP is banned for ignoring rate limits; all traffic stops until the ban ends"


class NotSent(Transient):
    """Dropped by the request scheduler before it was sent: the queue was full (`reason`
    "shed", lowest priority first) or it waited past its deadline ("expired"). Nothing reached
    the exchange, so the endpoint's health does not move; the next tick asks again. Writes and
    chat are never dropped."""

    advice = "not sent: the bot's request queue dropped it (full, or too late to be useful)"

    def __init__(self, msg: str = "", *, reason: str = "shed", **kw: Any) -> None:
        self.reason = reason
        super().__init__(msg, **kw)


class ClockSkew(Transient):
    """-1021: the client re-syncs its clock and retries once."""

    advice = "the computer's clock and the exchange's disagree; the bot re-syncs its clock"


class IllegalParameter(Transient):
    """-31002 (seen intermittently on order detail): retried later, with the other parameter name."""

    advice = "the exchange rejected a parameter it usually accepts; retried later"


class WrappedTransient(Transient):
    """-9000 whose message names no code or reason the bot knows: a passing business error,
    retried on backoff (docs/exchange.md §11.2)."""

    advice = "the exchange refused the operation for now (-9000 without a known reason); retried later"


# --- park the feature -------------------------------------------------------------


class EndpointUnregistered(BinanceError):
    """-2008: the endpoint is not enabled for this key; its features park until a probe succeeds."""

    reaction = EndpointState.UNREGISTERED
    advice = (
        "this endpoint is not enabled for this API key yet (Binance enables P2P endpoints "
        "per key); the bot keeps everything else running and re-tests it"
    )


# --- a person must act ------------------------------------------------------------


class Refused(BinanceError):
    """A person must act: the endpoint is marked refused and not retried in a loop."""

    reaction = EndpointState.REFUSED
    advice = "the exchange refused the request; a person must act"


class PermissionDenied(Refused):
    """-2015 / -2014: key, IP whitelist or permissions."""

    advice = (
        "the API key, its IP whitelist or its permissions do not allow this "
        "(check the key, and that this machine's IP, IPv4 or IPv6, is whitelisted)"
    )


class BadSignature(Refused):
    """-1022: a signing bug or the wrong secret."""

    advice = "the signature was rejected: check that the secret or private key matches the API key"


class NotAuthorized(Refused):
    """-1002."""

    advice = "not authorized to execute this request"


class RegionRestricted(Refused):
    """HTTP 451: the exchange serves no one from this location."""

    advice = "the exchange refuses service from this location (HTTP 451); run the bot elsewhere"


class Forbidden(Refused):
    """HTTP 403 (web firewall): refused for that request; never retried in a loop."""

    advice = "the exchange's web firewall refused the request (HTTP 403)"


# --- a bug: logged; the endpoint is failing, tried again on the next tick -----------


class RequestRejected(BinanceError):
    """The request itself was wrong: logged as a bug. The endpoint is marked failing, so the
    next tick tries again and a probe re-tests it on backoff (a request the bot builds
    differently next time, a fresh ad, a new price, may well pass)."""

    advice = "the exchange rejected the request as malformed (a bug in the bot)"


class BadParameter(RequestRejected):
    """-1100..-1199: a missing or malformed parameter (failing, as RequestRejected)."""

    advice = "a parameter was missing or malformed (a bug in the bot)"


class BusinessError(RequestRejected):
    """A positive business code from the C2C service: the endpoint works (available), the
    operation was refused; the caller decides (not retried by the registry)."""

    reaction = EndpointState.AVAILABLE
    advice = "the exchange refused the operation"


class AdNotFound(BusinessError):
    """187022: the ad is marked offline and the merchant alerted."""

    advice = "the ad was not found or is not online"


class ClientBug(RequestRejected):
    """-31002 from the chat credential: the request lacked what the exchange requires (the
    `clientType: web` header). A bug in the bot, not an endpoint the key is missing."""

    advice = ("the exchange refused the request as malformed (-31002): a bug in the bot's request "
              "(it must send the clientType: web header), not an endpoint missing from this key")


class QuantityConflict(BusinessError):
    """187049 / 187040 / 187031: the ad's amounts (initAmount, surplusAmount) disagree with the
    exchange's state (or a field was not allowed). The engine reads the ad back and resends
    the minimal body (advNo and the price field) once; refused again, it holds and alerts."""

    advice = "the exchange refused the update: the ad's quantities disagree with its state"


FieldNotAllowed = QuantityConflict  # 187049 is one of the quantity-state codes


class PriceOutOfRange(BusinessError):
    """187055: the guard holds and alerts."""

    advice = "the price is outside the range the exchange allows around the reference price"


class AdPaused(BusinessError):
    """83229: hold."""

    advice = "the ad is paused"


class OperationIllegal(BusinessError):
    """83998: an order of another account (a bug)."""

    advice = "the operation is illegal for this account"


class AlreadyPaid(BusinessError):
    """83023: ignored."""

    advice = "the order is already paid"


# --- the reply itself is wrong -----------------------------------------------------


class BadResponse(BinanceError):
    """A reply that cannot be read (not JSON, missing or mistyped field): a classified error."""

    advice = "the exchange's reply could not be read"


SHAPE_CHANGED = "the exchange's answer changed shape"


class ShapeChanged(BadResponse):
    """HTTP 200 with the success envelope whose `data` does not fit the model: the endpoint is
    failing (its feature parks or degrades, readiness follows, an alert goes out) until the
    shape is right again."""

    advice = SHAPE_CHANGED


class TooLarge(BadResponse):
    """A reply larger than `max_response_bytes`: refused unread, the endpoint is failing."""

    advice = "the exchange's reply was larger than the bot accepts"


class BogusResponse(BadResponse):
    """HTTP 200 with an empty or non-envelope body: the exchange answers unknown paths that way
    (bogus; from an endpoint that answered properly before, passing trouble: failing)."""

    reaction = EndpointState.BOGUS
    advice = "the exchange answered with an empty or non-standard body: this endpoint does not really exist here"


# --- the table ---------------------------------------------------------------------

CODES: dict[int, type[BinanceError]] = {
    -2008: EndpointUnregistered,
    -2015: PermissionDenied,
    -2014: PermissionDenied,
    -1021: ClockSkew,
    -1022: BadSignature,
    -1002: NotAuthorized,
    -1001: ExchangeUnavailable,
    -1003: RateLimited,
    -1006: ExchangeUnavailable,
    -1007: ExchangeUnavailable,
    -31002: IllegalParameter,
    187022: AdNotFound,
    187031: QuantityConflict,
    187040: QuantityConflict,
    187049: QuantityConflict,
    187055: PriceOutOfRange,
    83229: AdPaused,
    83998: OperationIllegal,
    83023: AlreadyPaid,
}

STATUSES: dict[int, type[BinanceError]] = {
    429: RateLimited,
    418: IpBanned,
    451: RegionRestricted,
    403: Forbidden,
}


WRAPPER = -9000
_RANGE_TEXT = re.compile(r"\b(limited|allowed|price)\b.{0,40}\brange\b|\brange\b.{0,20}\bprice\b",
                         re.IGNORECASE)
_INNER_CODE = re.compile(r"(?<![\d.])-?(\d{5,6})(?![\d.])")


def unwrap(code: int | None, msg: str) -> tuple[int | None, type[BinanceError] | None]:
    """The real code inside a -9000 message and its class: a code the table knows first, then a
    price-range text (PriceOutOfRange, no code), then any other business code
    (BusinessError); (None, None) when nothing inside can be read."""
    if code != WRAPPER:
        return code, None
    numbers = [int(m.group(1)) for m in _INNER_CODE.finditer(msg)]
    known = [n for n in numbers if n in CODES]
    if known:
        return known[0], CODES[known[0]]
    if _RANGE_TEXT.search(msg):
        return None, PriceOutOfRange
    if numbers:
        return numbers[0], BusinessError
    return None, None


def _class_for(status: int, code: int | None) -> type[BinanceError]:
    if status in (418, 429):
        return STATUSES[status]
    if code == WRAPPER:
        return WrappedTransient
    if code is not None and code in CODES:
        return CODES[code]
    if code is not None and -1199 <= code <= -1100:
        return BadParameter
    if code == -1000:
        return ExchangeUnavailable if status >= 500 else RequestRejected
    if status in STATUSES:
        return STATUSES[status]
    if status >= 500:
        return ExchangeUnavailable
    if code is not None and code > 0:
        return BusinessError
    return RequestRejected


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


_POSITIVE_CODE = re.compile(r"\b(\d{5,6})\b")


def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _decode(body: bytes | str | None) -> Any:
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.strip():
        return None
    # JSON numbers with a fraction become exact Decimals, never floats (92.51, not 92.50999...)
    return json.loads(text, parse_float=Decimal)


def classify(
    status: int,
    body: bytes | str | None,
    *,
    endpoint: str | None = None,
    envelope: bool = True,
    headers: Mapping[str, str] | None = None,
) -> BinanceError | None:
    """Map an HTTP status and body to the exception it means, or None for success."""
    result = _check(status, body, endpoint=endpoint, envelope=envelope, headers=headers or {})
    return result if isinstance(result, BinanceError) else None


def check_response(
    status: int,
    body: bytes | str | None,
    *,
    endpoint: str | None = None,
    envelope: bool = True,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Return the decoded reply (the whole envelope for envelope endpoints) or raise its typed error."""
    result = _check(status, body, endpoint=endpoint, envelope=envelope, headers=headers or {})
    if isinstance(result, BinanceError):
        raise result
    return result.payload


class _Ok:
    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


def _check(
    status: int,
    body: bytes | str | None,
    *,
    endpoint: str | None,
    envelope: bool,
    headers: Mapping[str, str],
) -> BinanceError | _Ok:
    kw: dict[str, Any] = {"endpoint": endpoint, "status": status, "headers": headers,
                          "retry_after": _retry_after(headers)}
    try:
        doc = _decode(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        if status >= 400:
            cls = STATUSES.get(status) or (ExchangeUnavailable if status >= 500 else RequestRejected)
            return cls(_snippet(body), **kw)
        return BadResponse("the body is not JSON: " + _snippet(body), **kw)
    if status >= 300 or (isinstance(doc, dict) and _is_gateway_error(doc)):
        code = _as_code(doc.get("code")) if isinstance(doc, dict) else None
        msg = str(doc.get("msg") or doc.get("message") or "") if isinstance(doc, dict) else ""
        if code == WRAPPER:
            return _wrapped(status, msg, kw)
        if code == -31002 and kw["endpoint"] == "chat_credential":
            return ClientBug(msg, code=code, **kw)
        if status < 300 and code is not None:
            return _class_for(400, code)(msg, code=code, **kw)
        return _class_for(status, code)(msg, code=code, **kw)
    if doc is None:
        return BogusResponse("empty body", **kw)
    if not envelope:
        if not isinstance(doc, (dict, list)):
            return BadResponse(f"expected a JSON object, got {type(doc).__name__}", **kw)
        return _Ok(doc)
    return _check_envelope(doc, kw)


def _wrapped(status: int, msg: str, kw: dict[str, Any]) -> BinanceError:
    """-9000: react to the code inside; `wrapper` keeps -9000 for the logs."""
    inner, cls = unwrap(WRAPPER, msg)
    if cls is None:
        exc: BinanceError = (ExchangeUnavailable if status >= 500 else WrappedTransient)(
            msg, code=WRAPPER, **kw)
    else:
        exc = cls(msg, code=inner if inner is not None else WRAPPER, **kw)
    exc.wrapper = WRAPPER
    return exc


def _is_gateway_error(doc: dict[str, Any]) -> bool:
    code = _as_code(doc.get("code"))
    return code is not None and code < 0 and "msg" in doc


def _check_envelope(doc: Any, kw: dict[str, Any]) -> BinanceError | _Ok:
    if not isinstance(doc, dict) or "code" not in doc:
        return BogusResponse("the body is not the success envelope", **kw)
    code_text = str(doc.get("code"))
    if code_text == SUCCESS_CODE and doc.get("success", True) is not False:
        return _Ok(doc)
    msg = str(doc.get("message") or doc.get("msg") or "")
    code = _as_code(doc.get("code"))
    if code == WRAPPER:
        return _wrapped(200, msg, kw)
    if code is None or code == 0:
        match = _POSITIVE_CODE.search(msg)
        code = int(match.group(1)) if match else None
    cls = _class_for(400, code) if code is not None else BusinessError
    return cls(msg, code=code, **kw)


def _snippet(body: bytes | str | None) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return " ".join(text.split())[:120]
