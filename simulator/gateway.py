"""The REST gateway: Binance's wire protocol in front of the simulated world.

For every request outside `/_sim/`: bring the world up to the clock, draw the
faults, charge the request weight, route the path, check the API key, the
timestamp and the signature over the raw query string, apply the key's endpoint
registration, then let the world answer inside the C2C envelope.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, parse_qsl, unquote_plus

from aiohttp import web
from loguru import logger

from bot.binance.endpoints import BY_PATH, ENDPOINTS, Endpoint, Style
from simulator import answers
from simulator.answers import Answer
from simulator.clock import VirtualClock
from simulator.errors import SimError, missing
from simulator.faults import ActiveFault, FaultBook
from simulator.limits import Admission, Arrival, Limiter, Ticket
from simulator.registration import OK, KeyBook, KeyState, verdict_answer
from simulator.scenario import Permissions, Scenario

SIGNING_PARAMS = frozenset({"recvWindow", "timestamp", "signature"})
C2C_PREFIX = "/sapi/v1/c2c/"
MBX_C2C_HEADER = "x-mbx-used-weight-1m"  # spelled as C2C answers carry it (docs/exchange.md §7)
PHANTOM = frozenset({"get_ads"})  # in the table, but not real: an empty 200 like any unknown path
PATHS: dict[str, Endpoint] = {ep.path: ep for ep in ENDPOINTS.values()}
MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
KEY_FORMAT = re.compile(r"[A-Za-z0-9]{64}")
DIGITS = re.compile(r"[0-9]{1,20}")
DECIMAL = re.compile(r"[0-9]+\.[0-9]*")
KEY_CREATED_DAYS_AGO = 30


class WorldLike(Protocol):
    """What the gateway needs from the world (simulator/world/core.py)."""

    ws_base_url: str

    def advance(self) -> None:
        """Bring the world up to the clock."""
        ...

    def handle(self, endpoint: str, query: dict[str, str], body: Any) -> tuple[Any, int | None]:
        """Answer one endpoint call: (data, total or None); raises SimError."""
        ...

    def funding_assets(self, params: dict[str, str]) -> Any:
        """The funding wallet's answer (no envelope, like the other asset endpoints)."""
        ...

    def add_routes(self, app: web.Application) -> None:
        """Add the chat websocket and /_sim/world/* routes."""
        ...


def reject(code: int, msg: str | None = None) -> SimError:
    """A SimError with the exchange's text and HTTP status for `code`."""
    http, text = answers.MESSAGES.get(code, (400, f"error {code}"))
    return SimError(code, msg if msg is not None else text, http)


@dataclass(slots=True)
class Call:
    """One request as the gateway sees it."""

    method: str
    path: str
    raw_query: str
    params: dict[str, str]
    route: str  # endpoint | wrong_method | unknown_c2c | not_found
    endpoint: Endpoint | None
    api_key: str | None
    key: KeyState | None
    ticket: Ticket
    record: dict[str, Any]
    arrival: Arrival | None = None  # when it came in (simulator.limits)
    body: Any = None
    body_error: SimError | None = None
    body_signed: bool = False

    @property
    def name(self) -> str | None:
        """The endpoint's name, if the path is in the table."""
        return self.endpoint.name if self.endpoint is not None else None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One exchange request as it arrived: over HTTP (aiohttp's) or handed over in-process."""

    method: str
    path: str  # decoded, without the query
    raw_query: str  # as sent: the signature is checked over it
    headers: Mapping[str, str]  # looked up case-insensitively (a CIMultiDict)
    body: bytes
    content_type: str  # the media type alone, as aiohttp's request.content_type
    remote: str  # the client's address: the IP limits count it


@dataclass(frozen=True, slots=True)
class Reply:
    """What the gateway sends back: status, headers and body (the transport adds the rest)."""

    status: int
    headers: dict[str, str]
    body: bytes


class RequestLog:
    """Every exchange request the simulator saw, newest last (bounded)."""

    def __init__(self, maxlen: int = 20_000) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._next_id = 1

    def open(self, **fields: Any) -> dict[str, Any]:
        """Start a record; the gateway fills in the outcome as it goes."""
        record = {"id": self._next_id, **fields, "key": None, "signature_valid": None,
                  "status": None, "code": None, "outcome": "pending", "faults": []}
        self._next_id += 1
        self._items.append(record)
        return record

    def query(self, endpoint: str | None = None, since_ms: int | None = None,
              after: int | None = None) -> list[dict[str, Any]]:
        """Copies of the records, filtered by endpoint, simulated time (>=) and id (>)."""
        return [
            dict(r) for r in self._items
            if (endpoint is None or r["endpoint"] == endpoint)
            and (since_ms is None or r["time_ms"] >= since_ms)
            and (after is None or r["id"] > after)
        ]

    def clear(self) -> None:
        """Forget every record."""
        self._items.clear()


class Gateway:
    """Answers every exchange request: auth, limits, faults, registration, envelopes."""

    def __init__(self, scenario: Scenario, *, clock: VirtualClock, world: WorldLike,
                 start_ms: int, seed: int) -> None:
        self.scenario = scenario
        self.clock = clock
        self.world = world
        self.start_ms = start_ms
        self.seed = seed
        self.hold_seconds = scenario.sim.hold_seconds
        self.keys = KeyBook(scenario.keys, seed)
        self.limiter = Limiter(scenario.limits)
        self.faults = FaultBook(list(scenario.faults.rules), seed, scenario.sim.hold_seconds)
        self.log = RequestLog()
        self.realism = scenario.realism
        use_realism = getattr(world, "use_realism", None)
        if callable(use_realism):  # the world's share: read lag, quantity-state refusals
            use_realism(scenario.realism)
        self._closing = asyncio.Event()
        self.waiting = 0  # requests waiting on the clock (latency, held): in flight, yet quiet

    def elapsed(self) -> float:
        """Simulated seconds since the scenario started."""
        return (self.clock.now_ms() - self.start_ms) / 1000

    def server_time_ms(self, skew_ms: int = 0) -> int:
        """The exchange's clock as it answers /api/v3/time and checks timestamps."""
        return self.clock.now_ms() + skew_ms

    def advance_world(self) -> None:
        """Bring the world up to the clock; a failing world is logged, not fatal."""
        try:
            self.world.advance()
        except Exception:
            logger.exception("world.advance() failed")

    def close(self) -> None:
        """Release every held request (shutdown)."""
        self._closing.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one exchange request (everything outside /_sim/) that came over HTTP."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        arrival = self.limiter.arrive(self.clock.now_ms(), str(peer))  # before anything waits
        self.advance_world()
        incoming = Incoming(request.method, request.path, request.rel_url.raw_query_string,
                            request.headers, await request.read(), request.content_type,
                            request.remote or "?")
        reply = await self._serve(incoming, arrival)
        if reply is None:
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def exchange(self, incoming: Incoming, conn: str) -> Reply | None:
        """Serve one exchange request handed over in-process, as if it came on connection
        `conn` (tests that step the clock: no sockets, the same answers). None: dropped."""
        arrival = self.limiter.arrive(self.clock.now_ms(), conn)
        self.advance_world()
        return await self._serve(incoming, arrival)

    async def _serve(self, incoming: Incoming, arrival: Arrival) -> Reply | None:
        call = self._read(incoming)
        call.arrival = arrival
        answer = await self._answer(call)
        self._weight_header(call, answer)
        return await self._send(call, answer)

    # --- reading ----------------------------------------------------------------

    def _read(self, incoming: Incoming) -> Call:
        raw_query = incoming.raw_query
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        route, endpoint = _resolve(incoming.method, incoming.path)
        api_key = incoming.headers.get("X-MBX-APIKEY")
        key = self.keys.find(api_key) if api_key else None
        name = endpoint.name if endpoint is not None else None
        ticket = self.limiter.ticket(incoming.remote, incoming.path, name,
                                     key.label if key else None)
        record = self.log.open(
            time_ms=self.clock.now_ms(), method=incoming.method, path=incoming.path,
            endpoint=name, query=params, body=None,
            client_type=incoming.headers.get("clientType"), weight=ticket.weight,
        )
        call = Call(incoming.method, incoming.path, raw_query, params, route, endpoint, api_key,
                    key, ticket, record)
        if incoming.method == "POST" and incoming.body.strip():
            _decode_body(call, incoming.body, incoming.content_type)
        return call

    # --- answering --------------------------------------------------------------

    async def _answer(self, call: Call) -> Answer:
        draw = self.faults.draw(call.name, self.elapsed())
        call.record["faults"] = draw.kinds
        if draw.latency_ms:
            await self._wait(draw.latency_ms / 1000)
        if draw.fault is not None and draw.kind not in ("malformed", "reshape"):
            return self._fault_reply(call, draw.fault)
        admission = self.limiter.admit(call.ticket, self.clock.now_ms(), call.arrival)
        if not admission.ok:
            return self._limit_reply(admission)
        answer = self._route(call, draw.skew_ms)
        if draw.fault is not None and draw.kind == "reshape":
            return answers.reshape(answer, draw.fault.spec.rename, draw.fault.spec.null_data)
        return answers.garble(answer) if draw.kind == "malformed" else answer

    def _fault_reply(self, call: Call, fault: ActiveFault) -> Answer:
        if fault.spec.kind == "http429":
            now = self.clock.now_ms()
            conn = call.arrival.conn if call.arrival is not None else ""
            self.limiter.note_rate_limited(call.ticket.ip, now, now + fault.spec.retry_after * 1000,
                                           conn)
        return self.faults.answer(fault, self.scenario.limits.ip_weight_per_minute)

    def _limit_reply(self, admission: Admission) -> Answer:
        retry = admission.retry_after or 1
        if admission.status == 429:
            text = answers.message(-1003).format(limit=admission.limit)
            reply = answers.error(-1003, text, http=429)
        else:
            until = self.clock.now_ms() + retry * 1000
            text = (f"Way too much request weight used; IP banned until {until}. "
                    "Please use WebSocket Streams for live updates to avoid bans.")
            reply = answers.error(-1003, text, http=418)
        reply.headers["Retry-After"] = str(retry)
        return reply

    def _route(self, call: Call, skew_ms: int) -> Answer:
        if call.route == "wrong_method":
            return answers.error(-1000, f"Request method '{call.method}' is not supported", 404)
        if call.route == "unknown_c2c":
            return answers.empty()
        if call.endpoint is None:
            return answers.empty(404)
        if call.endpoint.name in PHANTOM:
            return self._phantom(call)
        if not call.endpoint.signed:
            return answers.raw({"serverTime": self.server_time_ms(skew_ms)})
        try:
            key = self._authenticate(call, skew_ms)
        except SimError as exc:
            return answers.error(exc.code, exc.msg, exc.http_status)
        verdict = key.verdict(call.endpoint.name, self.elapsed())
        forced = verdict_answer(verdict, self.hold_seconds)
        return forced if forced is not None else self._dispatch(call, key)

    def _phantom(self, call: Call) -> Answer:
        """A table path that is not a real endpoint: empty 200, unless the key's script says not."""
        assert call.endpoint is not None
        call.record["key"] = call.key.label if call.key else None
        verdict = call.key.verdict(call.endpoint.name, self.elapsed()) if call.key else OK
        forced = verdict_answer(verdict, self.hold_seconds)
        return forced if forced is not None else answers.empty()

    # --- authentication ---------------------------------------------------------

    def _authenticate(self, call: Call, skew_ms: int) -> KeyState:
        if call.body_signed:
            raise reject(-1002)
        key = self._identify(call.api_key)
        call.record["key"] = key.label
        _check_time(call.params, self.server_time_ms(skew_ms))
        payload, signature, last = split_signature(call.raw_query)
        if not signature:
            raise missing("signature")
        valid = last and key.verify(payload, unquote_plus(signature))
        call.record["signature_valid"] = valid
        if not valid:
            raise reject(-1022)
        return key

    def _identify(self, api_key: str | None) -> KeyState:
        key = self.keys.find(api_key) if api_key else None
        if key is not None:
            return key
        if api_key and KEY_FORMAT.fullmatch(api_key):
            raise reject(-2015)
        raise reject(-2014)

    # --- dispatch -----------------------------------------------------------------

    def _dispatch(self, call: Call, key: KeyState) -> Answer:
        ep = call.endpoint
        assert ep is not None
        if ep.name == "key_permissions":
            return self._permissions(key.spec.permissions)
        if ep.name == "funding_asset":  # no envelope, like the other /sapi/v1/asset endpoints
            self.world.advance()
            return answers.raw(self.world.funding_assets(call.params))
        if call.body_error is not None:
            return answers.error(call.body_error.code, call.body_error.msg)
        refused = self._client_type(call)
        if refused is not None:
            return refused
        query = {k: v for k, v in call.params.items() if k not in SIGNING_PARAMS}
        body = call.body if ep.style is Style.JSON else None
        try:
            data, total = self.world.handle(ep.name, query, body)
        except SimError as exc:
            if exc.code > 0 and self.realism.wrap_business_errors:
                return answers.wrapped(exc.code, exc.msg, self.realism.wrap_http)
            return answers.error(exc.code, exc.msg, exc.http_status if exc.code < 0 else None)
        except Exception:
            logger.exception("world.handle({!r}) failed", ep.name)
            return answers.error(-1001)
        return answers.success(data, total)

    def _client_type(self, call: Call) -> Answer | None:
        """Without `clientType: web` (when the scenario enforces it) the chat credential is
        -31002 and an ad update -9000/187049, as the live exchange answers."""
        if not self.realism.require_client_type or call.record.get("client_type") == "web":
            return None
        if call.name == "chat_credential":
            return answers.error(-31002)
        if call.name == "update_ad":
            return answers.wrapped(187049, None, self.realism.wrap_http)
        return None

    def _permissions(self, perms: Permissions) -> Answer:
        if not perms.account_access:
            return answers.error(-2015)
        doc: dict[str, Any] = {"ipRestrict": perms.ip_restrict,
                               "createTime": self.start_ms - KEY_CREATED_DAYS_AGO * 86_400_000}
        for name, value in perms.model_dump().items():
            if name not in ("account_access", "ip_restrict"):
                doc[_camel(name)] = value
        return answers.raw(doc)

    # --- sending --------------------------------------------------------------------

    def _weight_header(self, call: Call, answer: Answer) -> None:
        if answer.action != "send" or not answer.from_gateway:
            return
        if call.path.startswith(("/sapi/", "/api/")):
            used = str(self.limiter.used(call.ticket, self.clock.now_ms()))
            for header in self._weight_headers(call):
                answer.headers[header] = used

    def _weight_headers(self, call: Call) -> list[str]:
        """The used-weight header(s) for this answer: C2C answers carry X-SAPI-USED-*, or
        `x-mbx-used-weight-1m` as one product reports (the scenario's c2c_weight_header)."""
        choice = self.realism.c2c_weight_header
        if choice == "sapi" or not call.path.startswith(C2C_PREFIX):
            return [call.ticket.header]
        return [MBX_C2C_HEADER] if choice == "mbx" else [call.ticket.header, MBX_C2C_HEADER]

    async def _send(self, call: Call, answer: Answer) -> Reply | None:
        record = call.record
        if answer.action == "hold":
            record["outcome"] = "held"
            await self._hold(answer.hold_seconds)
            answer = answers.error(-1007)
        if answer.action == "drop":
            record["outcome"] = "dropped"
            return None
        if record["outcome"] == "pending":
            record["outcome"] = "answered"
        record.update(status=answer.status, code=answer.code)
        headers = dict(answer.headers)
        # the exchange names each request in `x-mbx-uuid`; the record keeps it for tests
        record["request_id"] = str(uuid.UUID(int=record["id"], version=4))
        headers["X-MBX-UUID"] = record["request_id"]
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        return Reply(answer.status, headers, answer.body)

    async def _hold(self, seconds: float) -> None:
        """Hold a request `seconds` (on the clock when it is stepped or driven), or until
        shutdown."""
        closing = asyncio.ensure_future(self._closing.wait())
        waiting = asyncio.ensure_future(self._wait(seconds))
        try:
            await asyncio.wait({closing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            waiting.cancel()

    async def _wait(self, seconds: float) -> None:
        """Wait on the clock (simulated time when it is stepped or driven, else real time);
        counted in `waiting`, so a driver knows the request is not busy on the wire."""
        self.waiting += 1
        try:
            await self.clock.pause(seconds)
        finally:
            self.waiting -= 1


def _resolve(method: str, path: str) -> tuple[str, Endpoint | None]:
    ep = BY_PATH.get((method, path))
    if ep is not None:
        return "endpoint", ep
    if path in PATHS:
        return "wrong_method", PATHS[path]
    return ("unknown_c2c" if path.startswith(C2C_PREFIX) else "not_found"), None


def _decode_body(call: Call, data: bytes, content_type: str) -> None:
    text = data.decode("utf-8", "replace")
    if content_type in FORM_TYPES:
        call.record["body"] = text
        call.body_signed = "signature" in parse_qs(text)
        call.body_error = SimError(-1000, f"Content type '{content_type}' not supported")
        return
    try:
        call.body = json.loads(text)
    except ValueError:
        call.record["body"] = text
        call.body_error = SimError(-1000, "JSON parse error: the request body is not valid JSON")
        return
    call.record["body"] = call.body
    call.body_signed = isinstance(call.body, Mapping) and "signature" in call.body


def split_signature(raw_query: str) -> tuple[str, str | None, bool]:
    """(the signed part: all before `&signature=`; the signature as sent; whether it came last)."""
    parts = raw_query.split("&")
    for i, part in enumerate(parts):
        if part.startswith("signature="):
            return "&".join(parts[:i]), part[len("signature="):], i == len(parts) - 1
    return raw_query, None, False


def _check_time(params: Mapping[str, str], server_ms: int) -> None:
    """-1102 / -1100 / -1131 / -1021, as the exchange checks timestamp and recvWindow."""
    text = params.get("timestamp", "")
    if not DIGITS.fullmatch(text):
        if not text or DECIMAL.fullmatch(text):
            raise missing("timestamp")
        raise reject(-1100, "Illegal characters found in parameter 'timestamp'; "
                            "legal range is '^[0-9]{1,20}$'.")
    window_text = params.get("recvWindow", str(DEFAULT_RECV_WINDOW))
    if not DIGITS.fullmatch(window_text):
        raise reject(-1100, "Illegal characters found in parameter 'recvWindow'; "
                            "legal range is '^[0-9]{1,20}$'.")
    timestamp, window = int(text), int(window_text)
    if not 0 < window <= MAX_RECV_WINDOW:
        raise reject(-1131)
    if timestamp >= server_ms + 1000:
        raise reject(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - timestamp > window:
        raise reject(-1021, "Timestamp for this request is outside of the recvWindow.")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
