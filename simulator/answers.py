"""What the simulator sends back: one Answer type, the exchange's error texts and envelopes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html"
SUCCESS_CODE = "000000"

# code -> (HTTP status, message): the texts Binance answers with
MESSAGES: dict[int, tuple[int, str]] = {
    -1000: (400, "An unknown error occured while processing the request."),
    -1001: (500, "Internal error; unable to process your request. Please try again."),
    -1002: (401, "You are not authorized to execute this request."),
    -1003: (429, "Too much request weight used; current limit is {limit} request weight "
                 "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                 "polling the API."),
    -1007: (504, "Timeout waiting for response from backend server. Send status unknown; "
                 "execution status unknown."),
    -1021: (400, "Timestamp for this request is outside of the recvWindow."),
    -1022: (400, "Signature for this request is not valid."),
    -1100: (400, "Illegal characters found in a parameter."),
    -1102: (400, "A mandatory parameter was not sent, was empty/null, or malformed."),
    -1131: (400, "recvWindow must be less than 60000."),
    -2008: (400, "Invalid Api-Key ID."),
    -2014: (401, "API-key format invalid."),
    -2015: (401, "Invalid API-key, IP, or permissions for action."),
    -31002: (400, "illegal parameter"),
    83023: (200, "The order has already been paid."),
    83229: (200, "The ad is paused."),
    83998: (200, "operation is illegal"),
    187022: (200, "Ad not found or not online."),
    187031: (200, "The ad's available quantity has changed; refresh the ad and try again."),
    187040: (200, "The ad's quantity is inconsistent; refresh the ad and try again."),
    187049: (200, "This field is not allowed to be updated."),
    187055: (200, "The price is out of the allowed range."),
}

Action = Literal["send", "drop", "hold"]


@dataclass(slots=True)
class Answer:
    """One reply as the gateway will send it (or drop, or hold)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    code: int | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    action: Action = "send"
    hold_seconds: float = 0.0
    from_gateway: bool = True  # False for pages a front proxy would send: no weight headers


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# what json.dumps(doc, default=..., separators=..., ensure_ascii=False) builds for every call
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), ensure_ascii=False)


def dumps_text(doc: Any) -> str:
    """Compact JSON, Decimals as strings."""
    return _ENCODER.encode(doc)


def dumps(doc: Any) -> bytes:
    """Compact JSON, Decimals as strings, encoded."""
    return dumps_text(doc).encode()


class WrittenRows(list[Any]):
    """A list of JSON objects whose texts (`dumps_text` of each) are already known: `success`
    writes them in as they are, without encoding the objects again."""

    def __init__(self, items: list[Any], texts: list[str]) -> None:
        super().__init__(items)
        self.texts = texts


def message(code: int) -> str:
    """The exchange's text for a code (a generic one for codes it has none for)."""
    return MESSAGES.get(code, (400, f"error {code}"))[1]


def error(code: int, msg: str | None = None, http: int | None = None) -> Answer:
    """A gateway error (negative code: HTTP status + {code, msg}) or a business error
    (positive code: HTTP 200 + the failure envelope)."""
    default_http, default_msg = MESSAGES.get(code, (400 if code < 0 else 200, f"error {code}"))
    text = msg if msg is not None else default_msg
    if code > 0:
        doc = {"code": str(code), "message": text, "data": None, "success": False}
        return Answer(200, dumps(doc), code=code)
    return Answer(http or default_http, dumps({"code": code, "msg": text}), code=code)


WRAPPER = -9000


def wrapped(code: int, msg: str | None = None, http: int = 200) -> Answer:
    """A business error the way the live C2C service often sends it: code -9000 with the real
    code and reason inside the message text (docs/exchange.md §11.2)."""
    text = msg if msg is not None else message(code)
    return Answer(http, dumps({"code": WRAPPER, "msg": f"{code}: {text}"}), code=WRAPPER)


def success(data: Any, total: int | None = None) -> Answer:
    """The C2C success envelope, with `total` for paged lists."""
    doc: dict[str, Any] = {"code": SUCCESS_CODE, "message": "success", "data": data}
    if total is not None:
        doc["total"] = total
    doc["success"] = True
    if isinstance(data, WrittenRows):  # the same bytes as dumps(doc), the items written once
        doc["data"] = []
        rows = ",".join(data.texts)
        text = dumps_text(doc).replace('"data":[]', f'"data":[{rows}]', 1)
        return Answer(200, text.encode(), code=SUCCESS_CODE)
    return Answer(200, dumps(doc), code=SUCCESS_CODE)


def raw(doc: Any) -> Answer:
    """A bare JSON reply (endpoints without the envelope: server time, key restrictions)."""
    return Answer(200, dumps(doc))


def empty(status: int = 200) -> Answer:
    """No body at all (how the exchange answers unknown C2C paths)."""
    return Answer(status, b"", content_type=None)


def html(status: int, title: str) -> Answer:
    """An HTML error page, as a firewall or load balancer in front of the gateway sends it."""
    page = (f"<html><head><title>{status} {title}</title></head><body><center><h1>{status} "
            f"{title}</h1></center><hr><center>nginx</center></body></html>")
    return Answer(status, page.encode(), content_type=HTML_TYPE, from_gateway=False)


def drop() -> Answer:
    """Close the connection without answering."""
    return Answer(0, action="drop", content_type=None)


def hold(seconds: float) -> Answer:
    """Hold the request for `seconds` of real time (the client's timeout fires first)."""
    return Answer(0, action="hold", hold_seconds=seconds, content_type=None)


def reshape(answer: Answer, rename: dict[str, str], null_data: bool) -> Answer:
    """The same success reply with keys renamed inside `data`, or `data: null` (a changed API)."""
    try:
        doc = json.loads(answer.body)
    except ValueError:
        return answer
    if not isinstance(doc, dict) or doc.get("code") != SUCCESS_CODE:
        return answer
    doc["data"] = None if null_data else _renamed(doc.get("data"), rename)
    return Answer(answer.status, dumps(doc), answer.content_type, answer.code, dict(answer.headers))


def _renamed(value: Any, rename: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {rename.get(k, k): _renamed(v, rename) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, rename) for v in value]
    return value


def garble(answer: Answer) -> Answer:
    """The same reply with its JSON cut in half: malformed."""
    body = answer.body or dumps({"code": SUCCESS_CODE, "message": "success", "data": None})
    cut = body[: max(1, len(body) // 2)]
    return Answer(answer.status, cut, answer.content_type or JSON_TYPE, answer.code,
                  dict(answer.headers))
