"""The capability registry: every request goes through it, so ordinary polling is probing.

An endpoint's health is state (bot.states.EndpointState), moved by the outcome of
every call. A capability is a feature of the bot with one or more sources (sets
of endpoints); it is enabled on its first source, degraded on an alternative,
disabled when none works. Calls on unregistered, refused or bogus endpoints are
not sent. A background prober re-tests unregistered and failing endpoints on
exponential backoff, and a success brings the feature back by itself.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from bot.binance.client import Response, SignedClient, describe_until
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import (
    BinanceError,
    BogusResponse,
    BusinessError,
    EndpointUnregistered,
    IpBanned,
    Refused,
)
from bot.capability_table import CAPABILITIES, PROBES, CapabilitySpec
from bot.events import CapabilityChanged, Cause, EndpointChanged, EventBus
from bot.ratelimit import RateGovernor
from bot.retry import backoff
from bot.states import BLOCKED, PROBED, CapState, EndpointState
from state.endpoints import EndpointLog, Transition
from state.meta import Meta


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """Re-probing and flap damping (the `[capabilities]` table of the TOML file)."""

    first: float = 60.0
    factor: float = 2.0
    cap: float = 1800.0
    jitter: float = 0.2
    flap_window: float = 3600.0
    flap_threshold: int = 3  # more flaps than this in the window ...
    trust_after: int = 3  # ... and this many consecutive successes are needed to trust it again


@dataclass
class EndpointHealth:
    """What the bot knows of one endpoint right now."""

    name: str
    state: EndpointState = EndpointState.UNKNOWN
    code: int | None = None
    message: str = ""
    since: float = 0.0
    latency: float | None = None
    consecutive_ok: int = 0
    flaps: deque[float] = field(default_factory=deque)
    next_probe_at: float | None = None
    delays: Iterator[float] | None = None
    probation: bool = False

    def flap_count(self, now: float, window: float) -> int:
        """Flaps (available -> down) in the last `window` seconds."""
        while self.flaps and now - self.flaps[0] > window:
            self.flaps.popleft()
        return len(self.flaps)


@dataclass(frozen=True, slots=True)
class CapabilityStatus:
    """A capability's state, the source it runs on, and why."""

    name: str
    state: CapState
    source: str | None
    cause: Cause | None


class CapabilityUnavailable(Exception):
    """Not sent: the endpoint is unregistered, refused or bogus. The feature stays parked."""

    def __init__(self, endpoint: str, state: EndpointState, code: int | None, message: str) -> None:
        self.endpoint, self.state, self.code, self.message = endpoint, state, code, message
        said = f" ({code} {message})" if code is not None or message else ""
        super().__init__(f"{endpoint} is {state}{said}: not sent")


def outcome_of(exc: BinanceError) -> EndpointState:
    """The endpoint state an error means."""
    if isinstance(exc, EndpointUnregistered):
        return EndpointState.UNREGISTERED
    if isinstance(exc, Refused):
        return EndpointState.REFUSED
    if isinstance(exc, BogusResponse):
        return EndpointState.BOGUS
    if isinstance(exc, BusinessError):
        return EndpointState.AVAILABLE  # the endpoint works; the operation was refused
    return EndpointState.FAILING


class CapabilityRegistry:
    """Wraps the signed client; tracks endpoint health and capability state."""

    def __init__(
        self,
        client: SignedClient,
        *,
        bus: EventBus | None = None,
        log: EndpointLog | None = None,
        meta: Meta | None = None,
        governor: RateGovernor | None = None,
        config: ProbeConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.clock = client.clock
        self.bus = bus
        self.log = log
        self.meta = meta
        self.governor = governor
        self.config = config or ProbeConfig()
        self.rng = rng or random.Random()
        self.health: dict[str, EndpointHealth] = {n: EndpointHealth(n) for n in ENDPOINTS}
        self._caps: dict[str, CapabilityStatus] = {
            n: self._evaluate(spec) for n, spec in CAPABILITIES.items()
        }
        self.hints: dict[str, str] = {}  # asset, fiat, adv_no, order_no: for probe parameters
        self.last_response: dict[str, Response] = {}
        # called after every sent request with (endpoint, outcome, latency seconds); outcome is
        # "ok", the exchange's code, or "http <status>" / "error" (metrics subscribe here)
        self.observers: list[Callable[[str, str, float], None]] = []
        self._probe_wake = asyncio.Event()
        self._changed = asyncio.Event()

    # --- asking --------------------------------------------------------------------

    def state(self, endpoint: str) -> EndpointState:
        """The endpoint's current state."""
        return self.health[endpoint].state

    def status(self, capability: str) -> CapabilityStatus:
        """The capability's state, source and cause."""
        return self._caps[capability]

    def capabilities(self) -> dict[str, CapabilityStatus]:
        """Every capability's status."""
        return dict(self._caps)

    def enabled(self) -> frozenset[str]:
        """Names of the capabilities that run (enabled or degraded)."""
        return frozenset(n for n, s in self._caps.items() if s.state is not CapState.DISABLED)

    def route(self, capability: str) -> str | None:
        """The source a consumer should use now, or None when every source is blocked.

        A source whose endpoints are failing (passing trouble) is still routed to when
        nothing better exists: the consumer's next tick is the retry.
        """
        status = self._caps[capability]
        if status.source is not None:
            return status.source
        for src in CAPABILITIES[capability].sources:
            if not any(self.health[e].state in BLOCKED for e in src.endpoints):
                return src.name
        return None

    async def wait_for_change(self) -> None:
        """Return at the next capability change (parked consumers wait here)."""
        await self._changed.wait()

    # --- calling -------------------------------------------------------------------

    async def call(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Response:
        """Send through the client unless the endpoint is blocked; record the outcome."""
        h = self.health[endpoint]
        if h.state in BLOCKED:
            raise CapabilityUnavailable(endpoint, h.state, h.code, h.message)
        return await self._send(endpoint, params)

    async def _send(self, endpoint: str, params: Mapping[str, Any] | None) -> Response:
        if self.governor is not None:
            await self.governor.acquire(ENDPOINTS[endpoint].weight)
        started = self.clock.monotonic()
        try:
            resp = await self.client.call(endpoint, params)
        except BinanceError as exc:
            if exc.status is None and isinstance(exc, IpBanned):
                raise  # not sent: the ban is running
            await self._after_error(endpoint, exc, self.clock.monotonic() - started)
            raise
        self._report_weight()
        self._observe(endpoint, "ok", resp.latency)
        self.last_response[endpoint] = resp
        await self.record(endpoint, EndpointState.AVAILABLE, Cause(endpoint), resp.latency)
        return resp

    def _observe(self, endpoint: str, outcome: str, latency: float) -> None:
        for observer in self.observers:
            observer(endpoint, outcome, latency)

    async def _after_error(self, endpoint: str, exc: BinanceError, latency: float) -> None:
        self._report_weight()
        outcome = str(exc.code) if exc.code is not None else (
            f"http {exc.status}" if exc.status is not None else type(exc).__name__)
        self._observe(endpoint, outcome, latency)
        if isinstance(exc, IpBanned) and self.meta is not None:
            await self.meta.set_ban_until(self.client.banned_until)
        cause = Cause(endpoint, exc.code if exc.code is not None else exc.status, exc.msg or exc.advice)
        await self.record(endpoint, outcome_of(exc), cause, latency)

    def _report_weight(self) -> None:
        if self.governor is not None and self.client.used_weight:
            self.governor.report(max(self.client.used_weight.values()))

    async def restore(self) -> None:
        """Honour an IP ban persisted by an earlier run."""
        if self.meta is not None:
            until = await self.meta.ban_until()
            if until > self.clock.time():
                self.client.restore_ban(until)
                logger.error("an IP ban from an earlier run lasts until {}: waiting",
                             describe_until(until, self.clock.time()))

    # --- recording -----------------------------------------------------------------

    async def record(
        self, endpoint: str, new: EndpointState, cause: Cause, latency: float | None = None
    ) -> None:
        """Apply one outcome to the endpoint's health (and capabilities) and store transitions."""
        h = self.health[endpoint]
        now = self.clock.time()
        h.latency = latency
        h.consecutive_ok = h.consecutive_ok + 1 if new is EndpointState.AVAILABLE else 0
        if new is EndpointState.AVAILABLE and self._untrusted(h, now):
            h.probation = True
            h.next_probe_at = now + self.config.first
            return
        h.probation = False
        if new is h.state:
            if new in PROBED:
                self._schedule(h, now, reset=False)
            return
        old = h.state
        if old is EndpointState.AVAILABLE:
            h.flaps.append(now)
        h.state, h.code, h.message, h.since = new, cause.code, cause.message, now
        if new in PROBED:
            self._schedule(h, now, reset=True)
        else:
            h.next_probe_at, h.delays = None, None
        logger.info("endpoint {}: {} -> {}{}", endpoint, old, new, _said(cause) if new is not EndpointState.AVAILABLE else "")
        if self.log is not None:
            await self.log.record_transition(
                Transition(now, endpoint, str(old), str(new), cause.code, cause.message)
            )
        if self.bus is not None:
            self.bus.publish(EndpointChanged(endpoint, old, new, cause, now))
        self._reevaluate(cause, now)

    def assume(self, endpoint: str, state: EndpointState, code: int | None, message: str) -> None:
        """Take a state learned elsewhere (the store) without recording a transition."""
        h = self.health[endpoint]
        h.state, h.code, h.message = state, code, message
        for name, spec in CAPABILITIES.items():
            if any(endpoint in s.endpoints for s in spec.sources):
                self._caps[name] = self._evaluate(spec, Cause(endpoint, code, message))

    def _untrusted(self, h: EndpointHealth, now: float) -> bool:
        if h.state is EndpointState.AVAILABLE or h.state is EndpointState.UNKNOWN:
            return False
        flapping = h.flap_count(now, self.config.flap_window) > self.config.flap_threshold
        return flapping and h.consecutive_ok < self.config.trust_after

    def _schedule(self, h: EndpointHealth, now: float, *, reset: bool) -> None:
        c = self.config
        if reset or h.delays is None:
            h.delays = backoff(c.first, c.factor, c.cap, c.jitter, self.rng)
        h.next_probe_at = now + next(h.delays)
        self._probe_wake.set()

    def _evaluate(self, spec: CapabilitySpec, cause: Cause | None = None) -> CapabilityStatus:
        up = (EndpointState.AVAILABLE, EndpointState.UNKNOWN)
        for i, src in enumerate(spec.sources):
            if all(self.health[e].state in up for e in src.endpoints):
                return CapabilityStatus(spec.name, CapState.ENABLED if i == 0 else CapState.DEGRADED,
                                        src.name, cause)
        return CapabilityStatus(spec.name, CapState.DISABLED, None, cause)

    def _reevaluate(self, cause: Cause, now: float) -> None:
        for name, spec in CAPABILITIES.items():
            if cause.endpoint not in {e for s in spec.sources for e in s.endpoints}:
                continue
            old, new = self._caps[name], self._evaluate(spec, cause)
            if (old.state, old.source) == (new.state, new.source):
                continue
            self._caps[name] = new
            self._changed.set()
            self._changed = asyncio.Event()
            _log_capability(spec, old, new)
            if self.bus is not None:
                self.bus.publish(CapabilityChanged(name, old.state, new.state, new.source, cause, now))

    # --- probing -------------------------------------------------------------------

    def due(self) -> list[str]:
        """Endpoints whose re-probe time has come."""
        now = self.clock.time()
        return [
            h.name for h in self.health.values()
            if h.next_probe_at is not None and h.next_probe_at <= now and h.name in PROBES
        ]

    def next_probe_in(self) -> float | None:
        """Seconds until the next scheduled probe, or None."""
        times = [h.next_probe_at for h in self.health.values()
                 if h.next_probe_at is not None and h.name in PROBES]
        return max(0.0, min(times) - self.clock.time()) if times else None

    async def probe(self, endpoint: str) -> EndpointState:
        """Send the cheapest call that exercises `endpoint`, even if it is blocked."""
        params = PROBES[endpoint](self)
        h = self.health[endpoint]
        if params is None:  # nothing to probe it with yet (e.g. no ad id known)
            h.next_probe_at = self.clock.time() + self.config.first
            return h.state
        try:
            resp = await self._send(endpoint, params)
            latency_ms: float | None = resp.latency * 1000
        except BinanceError:
            latency_ms = h.latency * 1000 if h.latency is not None else None
        if self.log is not None:
            await self.log.record_probe(self.clock.time(), endpoint, str(h.state), h.code,
                                        h.message, latency_ms)
        return h.state

    async def run_prober(self) -> None:
        """Re-probe due endpoints until cancelled (sleeping on the injected clock)."""
        while True:
            for name in self.due():
                await self.probe(name)
            wait = self.next_probe_in()
            self._probe_wake.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(min(wait if wait is not None else 60.0, 60.0)))
            waker = asyncio.ensure_future(self._probe_wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready picture of endpoints and capabilities."""
        now = self.clock.time()
        return {
            "endpoints": {
                h.name: {"state": str(h.state), "code": h.code, "message": h.message,
                         "since": h.since or None, "flaps": h.flap_count(now, self.config.flap_window),
                         "next_probe_at": h.next_probe_at, "probation": h.probation}
                for h in self.health.values()
            },
            "capabilities": {
                n: {"state": str(s.state), "source": s.source,
                    "cause": None if s.cause is None else {
                        "endpoint": s.cause.endpoint, "code": s.cause.code,
                        "message": s.cause.message}}
                for n, s in self._caps.items()
            },
        }


def _said(cause: Cause) -> str:
    code = f" {cause.code}" if cause.code is not None else ""
    return f" ({cause.endpoint}{code}: {cause.message})" if cause.message or code else ""


def _log_capability(spec: CapabilitySpec, old: CapabilityStatus, new: CapabilityStatus) -> None:
    cause = _said(new.cause) if new.cause else ""
    if new.state is CapState.DISABLED:
        logger.warning("capability {} disabled{}: {}", spec.name, cause, spec.without)
    elif new.state is CapState.DEGRADED:
        logger.warning("capability {} degraded: running on {}{}: {}", spec.name, new.source, cause,
                       spec.degraded)
    elif old.state is not CapState.ENABLED:
        logger.info("capability {} recovered: running on {}", spec.name, new.source)
