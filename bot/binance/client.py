"""SignedClient: Binance's signed REST protocol on one aiohttp session.

It builds and percent-encodes the query exactly once, signs those bytes, and sends
those bytes (yarl must not re-quote them). It keeps the server-time offset, honours
429 `Retry-After` for every sender, stops all traffic during a 418 ban, and reads
the used-weight headers. It never logs the key, the secret or the signature.

When a request goes on the wire is not decided here: every request (the clock sync,
retries and probes included) asks the key's request scheduler first
(bot.binance.scheduler: priorities, `max_in_flight`, deadlines, shedding, the 429/418
pacing and the weight budget, in one place). The client tells it what the exchange said
about the limits (`RequestScheduler.note`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from loguru import logger
from pydantic import SecretStr
from yarl import URL

from bot.binance.endpoints import ENDPOINTS, Endpoint, Style, check_official
from bot.binance.errors import (
    BadResponse,
    BinanceError,
    ClockSkew,
    ExchangeUnavailable,
    RateLimited,
    TooLarge,
    check_response,
)
from bot.binance.scheduler import (
    DEFAULT_MAX_IN_FLIGHT,
    MAX_BAN_SECONDS,
    MAX_IN_FLIGHT,
    MAX_PAUSE_SECONDS,
    RequestScheduler,
    capped,
    priority,
)
from bot.binance.signing import Signer
from bot.clock import Clock, SystemClock

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "MAX_BAN_SECONDS", "MAX_IN_FLIGHT", "MAX_PAUSE_SECONDS",
           "Caller", "Clock", "Response", "SignedClient", "SystemClock", "capped", "priority"]

WEIGHT_HEADERS = (
    "X-SAPI-USED-IP-WEIGHT-1M",
    "X-SAPI-USED-UID-WEIGHT-1M",
    "X-MBX-USED-WEIGHT-1M",
)
# headers by which the exchange (or the CDN in front of it) names one request: what support
# asks for in a ticket. Kept per endpoint for the last answer (SignedClient.last_seen).
REQUEST_ID_HEADERS = ("x-mbx-uuid", "x-mbx-traceid", "x-request-id", "x-trace-id",
                      "x-amz-cf-id", "x-amzn-trace-id", "x-amzn-requestid")
RESYNC_SECONDS = 900.0  # peers re-sync the server-time offset every 10 to 30 minutes
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024


NOT_PARSED: Any = object()  # Response.parsed before the reply's data met its model


@dataclass(slots=True)
class Response:
    """A successful reply: the decoded JSON and what came with it."""

    endpoint: Endpoint
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    parsed: Any = field(default=NOT_PARSED, repr=False, compare=False)  # see bot.binance.p2p.read

    @property
    def data(self) -> Any:
        """The envelope's `data` (or the whole body for endpoints without an envelope)."""
        if self.endpoint.envelope and isinstance(self.payload, dict):
            return self.payload.get("data")
        return self.payload

    @property
    def total(self) -> int | None:
        """The envelope's `total`, for paged lists."""
        if isinstance(self.payload, dict) and isinstance(self.payload.get("total"), int):
            return int(self.payload["total"])
        return None


@dataclass(frozen=True, slots=True)
class Seen:
    """The last answer an endpoint got: when (wall time), the HTTP status, and the ids the
    exchange gave the request (REQUEST_ID_HEADERS found in the reply). Never the query."""

    at: float
    status: int
    ids: tuple[tuple[str, str], ...] = ()


def request_ids(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The request ids among a reply's headers, as (header, value), in REQUEST_ID_HEADERS order."""
    lower = {k.lower(): v for k, v in headers.items()}
    return tuple((name, lower[name]) for name in REQUEST_ID_HEADERS if lower.get(name))


class Caller(Protocol):
    """Anything that sends an endpoint call: the client, or the capability registry around it."""

    async def call(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Response:
        """Send one request and return its reply or raise its typed error."""
        ...


def transport_reason(exc: BaseException, timeout: float | None = None) -> str:
    """What went wrong on the way to a server, in words (never a class name, never a URL:
    some aiohttp errors quote the whole URL, query and signature included)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"cannot connect to the proxy {exc.host}:{exc.port} ({_os_reason(exc.os_error)})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed (certificate or TLS interception on the way)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the reply was cut off"
    if isinstance(exc, OSError):
        return f"network error: {_os_reason(exc)}"
    return "the connection failed"


def _os_reason(exc: OSError) -> str:
    if exc.errno:  # asyncio's strerror is "Connect call failed (...)"; the errno says why
        return os.strerror(exc.errno).lower()
    return (exc.strerror or str(exc) or "network error").lower()


def encode_value(value: Any) -> str:
    """A parameter value as Binance expects it in a query string (before quoting)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return ",".join(encode_value(v) for v in value)
    return str(value)


def encode_query(params: Mapping[str, Any]) -> str:
    """Percent-encode parameters in order (UTF-8; space, '@', '+' and non-ASCII escaped)."""
    return "&".join(
        f"{quote(str(k), safe='')}={quote(encode_value(v), safe='')}"
        for k, v in params.items()
        if v is not None
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def encode_body(params: Mapping[str, Any]) -> bytes:
    """The JSON body: Decimals as strings, None dropped, compact."""
    clean = {k: v for k, v in params.items() if v is not None}
    return json.dumps(clean, default=_json_default, separators=(",", ":")).encode()


@dataclass(slots=True)
class PreparedRequest:
    """The exact method, URL (already encoded) and body that will be sent."""

    method: str
    url: str
    body: bytes | None
    signed_payload: str


class SignedClient:
    """Sends signed requests; one instance per API key, shared by every sender."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: SecretStr | None,
        signer: Signer | None,
        session: aiohttp.ClientSession | None = None,
        recv_window: int = 5000,
        timeout: float = 10.0,
        clock: Clock | None = None,
        max_rate_limit_retries: int = 2,
        proxy: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < recv_window <= 60000:
            raise ValueError("recvWindow must be between 1 and 60000 ms")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._signer = signer
        self._session = session
        self._own_session = session is None
        self.recv_window = recv_window
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self.max_rate_limit_retries = max_rate_limit_retries
        self.proxy = proxy
        self.max_response_bytes = max_response_bytes  # larger replies are refused unread
        self.time_offset_ms = 0
        self.time_synced = False
        self.synced_at = 0.0  # monotonic
        self._sync_lock = asyncio.Lock()
        self.used_weight: dict[str, int] = {}
        self.requests_sent = 0
        self.last_seen: dict[str, Seen] = {}  # endpoint -> its last answer (evidence for support)
        self.rng = rng or random.Random()
        # when each request goes out: priorities, limits, deadlines, shedding, 429/418 pacing
        self.scheduler = RequestScheduler(self.clock, limit=max_in_flight, rng=self.rng)

    @property
    def max_in_flight(self) -> int:
        """Requests on the wire at once (1 to MAX_IN_FLIGHT): the scheduler's limit."""
        return self.scheduler.limit

    @max_in_flight.setter
    def max_in_flight(self, value: int) -> None:
        self.scheduler.limit = value

    @property
    def in_flight(self) -> int:
        """Requests on the wire now (not those granted a slot and waiting for weight)."""
        return self.scheduler.on_wire

    @property
    def paused_until(self) -> float:
        """Wall time until which every sender waits (a 429), kept by the scheduler."""
        return self.scheduler.paused_until

    @paused_until.setter
    def paused_until(self, value: float) -> None:
        self.scheduler.paused_until = value

    @property
    def banned_until(self) -> float:
        """Wall time before which nothing is sent (a 418), kept by the scheduler."""
        return self.scheduler.banned_until

    @banned_until.setter
    def banned_until(self, value: float) -> None:
        self.scheduler.banned_until = value

    @property
    def rate_limited(self) -> int:
        """429s received."""
        return self.scheduler.rate_limited

    def __repr__(self) -> str:
        return f"SignedClient(base_url={self.base_url!r}, signer={self._signer!r})"

    async def __aenter__(self) -> SignedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        """Close the session if this client opened it."""
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def now_ms(self) -> int:
        """The exchange's time as this client believes it, in ms."""
        return int(self.clock.time() * 1000) + self.time_offset_ms

    def prepare(self, ep: Endpoint, params: Mapping[str, Any] | None) -> PreparedRequest:
        """Build the exact request: query in order, signed, then `signature` last."""
        params = dict(params or {})
        if ep.style is Style.JSON:
            query = {k: params.pop(k) for k in ep.query_params if k in params}
            body: bytes | None = encode_body(params)
        else:
            query, body = params, None
        if ep.signed:
            query["recvWindow"] = self.recv_window
            query["timestamp"] = self.now_ms()
        payload = encode_query(query)
        url = f"{self.base_url}{check_official(ep.path)}"
        if ep.signed:
            if self._signer is None:
                raise ValueError("this client has no signer; signed endpoints need a secret or key")
            signature = quote(self._signer.sign(payload), safe="")
            payload_sent = f"{payload}&signature={signature}" if payload else f"signature={signature}"
            url = f"{url}?{payload_sent}"
        elif payload:
            url = f"{url}?{payload}"
        return PreparedRequest(ep.method, url, body, payload)

    def _headers(self, ep: Endpoint, body: bytes | None) -> dict[str, str]:
        headers = {"clientType": "web"}
        if ep.signed and self._api_key is not None:
            headers["X-MBX-APIKEY"] = self._api_key.get_secret_value()
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    async def sync_time(self) -> int:
        """Set the offset to the exchange's clock (midpoint of the round trip); returns it."""
        t0 = self.clock.time()
        resp = await self._send_once(ENDPOINTS["server_time"], None)
        t1 = self.clock.time()
        try:
            server_ms = int(resp.payload["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise BadResponse("no serverTime in the reply", endpoint="server_time") from None
        self.time_offset_ms = server_ms - int((t0 + t1) * 500)
        self.time_synced = True
        self.synced_at = self.clock.monotonic()
        logger.debug("clock synced: offset {} ms", self.time_offset_ms)
        return self.time_offset_ms

    async def call(self, endpoint: str | Endpoint, params: Mapping[str, Any] | None = None) -> Response:
        """Send one request (re-syncing on -1021 once, waiting out 429s a bounded number of times)."""
        ep = ENDPOINTS[endpoint] if isinstance(endpoint, str) else endpoint
        check_official(ep.path)  # before anything goes out, the clock sync included
        if ep.signed and self._sync_due():
            async with self._sync_lock:  # many first calls at once sync once
                if self._sync_due():
                    await self.sync_time()
        resynced = False
        rate_limited = 0
        while True:
            try:
                return await self._send_once(ep, params)
            except ClockSkew:
                if resynced:
                    raise
                resynced = True
                await self.sync_time()
            except RateLimited:
                rate_limited += 1
                if rate_limited > self.max_rate_limit_retries:
                    raise

    def _sync_due(self) -> bool:
        return not self.time_synced or self.clock.monotonic() - self.synced_at >= RESYNC_SECONDS

    async def _send_once(self, ep: Endpoint, params: Mapping[str, Any] | None) -> Response:
        trial = await self.scheduler.enter(ep)
        status: int | None = None
        try:
            status, headers, raw, latency = await self._exchange(ep, params)
        finally:
            self.scheduler.leave(trial, status)
        self._read_weights(headers)
        self.last_seen[ep.name] = Seen(self.clock.time(), status, request_ids(headers))
        logger.debug("{} {} -> {} in {:.0f} ms", ep.method, ep.path, status, latency * 1000)
        try:
            payload = check_response(
                status, raw, endpoint=ep.name, envelope=ep.envelope, headers=headers
            )
        except BinanceError as exc:
            self.scheduler.note(exc)  # a 429 pauses every sender, a 418 stops all traffic
            raise
        return Response(ep, status, payload, headers, latency)

    async def _exchange(
        self, ep: Endpoint, params: Mapping[str, Any] | None
    ) -> tuple[int, dict[str, str], bytes, float]:
        """One request on the wire: (status, headers, body, latency)."""
        req = self.prepare(ep, params)
        started = self.clock.monotonic()
        self.requests_sent += 1
        try:
            status, headers, raw = await self._wire(ep, req)
        except (TimeoutError, aiohttp.ClientError) as exc:
            # the address without the query: that carries the signature
            where = f"{ep.method} {self.base_url}{ep.path}"
            raise ExchangeUnavailable(f"{transport_reason(exc, self.timeout)}: {where}",
                                      endpoint=ep.name) from None
        return status, headers, raw, self.clock.monotonic() - started

    async def _wire(self, ep: Endpoint, req: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        """Send `req` over HTTP: (status, headers, body); aiohttp's errors pass through."""
        async with self._get_session().request(
            req.method,
            URL(req.url, encoded=True),
            data=req.body,
            headers=self._headers(ep, req.body),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            proxy=self.proxy,
            allow_redirects=False,
        ) as resp:
            headers = {k: v for k, v in resp.headers.items()}
            return resp.status, headers, await self._read_body(ep, resp)

    async def _read_body(self, ep: Endpoint, resp: aiohttp.ClientResponse) -> bytes:
        """The body, or TooLarge as soon as it exceeds max_response_bytes (never held whole)."""
        limit = self.max_response_bytes
        declared = resp.content_length
        if declared is not None and declared > limit:
            resp.close()  # the connection is dropped, not drained
            raise self.too_large(ep, resp.status, f"it declares {declared} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                resp.close()
                raise self.too_large(ep, resp.status, f"more than {limit} bytes arrived")
            chunks.append(chunk)
        return b"".join(chunks)

    def too_large(self, ep: Endpoint, status: int, said: str) -> TooLarge:
        """The error for a reply refused unread (logged once, here)."""
        logger.warning("{}: reply refused unread: {} (limit {} bytes, [bot] max_response_bytes)",
                       ep.name, said, self.max_response_bytes)
        return TooLarge(f"{said}; the limit is {self.max_response_bytes} bytes", endpoint=ep.name,
                        status=status)

    def _read_weights(self, headers: Mapping[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        for name in WEIGHT_HEADERS:
            value = lower.get(name.lower())
            if value is not None and value.isdigit():
                self.used_weight[name] = int(value)

    def restore_ban(self, until: float) -> None:
        """Honour a ban persisted by an earlier run (at most MAX_BAN_SECONDS from now)."""
        self.scheduler.restore_ban(until)
