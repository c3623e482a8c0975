"""The capability registry: every request goes through it, so ordinary polling is probing.

An endpoint's health is state (bot.health.EndpointState), moved by the outcome of
every call. A capability is a feature of the bot with one or more sources (sets
of endpoints); it is enabled on its first source, degraded on an alternative,
disabled when none works, and unchecked while the source to try has endpoints
not called yet (tried, but not counted as working). Calls on unregistered,
refused or bogus endpoints are not sent. A background prober re-tests endpoints
in trouble on exponential backoff, writes included (with a write that changes
nothing), and a success brings the feature back by itself. Only probes advance
the backoff: ordinary traffic failing again never pushes the next probe out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from loguru import logger

from bot.binance.client import Response, SignedClient
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import (
    BinanceError,
    IpBanned,
    NotSent,
)
from bot.binance.p2p import read
from bot.capabilities.table import (
    CAPABILITIES,
    PROBES,
    WRITE_PROBE_READS,
    WRITE_PROBES,
    CapabilitySpec,
    ProbeConfig,
)
from bot.clock import backoff, describe_duration, describe_until
from bot.events import CapabilityChanged, Cause, EndpointChanged, EventBus
from bot.health import BLOCKED, PROBED, WORKING, CapState, EndpointState
from bot.ratelimit import RateGovernor
from state.db import StoreUnwritable
from state.endpoints import EndpointLog, Transition
from state.meta import Meta

# Seconds a read may still show an ad's old price after an update that took effect
# (docs/exchange.md §11.1: read-your-write lag; peers trust their own write for 30 to
# 60 s). A write probe re-sends the price it reads, so it waits this long after a write
# that may have landed.
WRITE_SETTLE = 60.0


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
    wrote_at: float | None = None  # when an ordinary write was last sent (write endpoints)
    answered: bool = False  # answered properly at least once this run (see outcome_of)

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
    source: str | None  # the source it runs on, or (unchecked) the one to try
    cause: Cause | None  # what moved it last
    causes: tuple[Cause, ...] = ()  # disabled: every endpoint that is down, on every source


@dataclass(frozen=True, slots=True)
class Halt:
    """The exchange holds every request: a 429 pause or a 418 ban, until `until` (epoch s)."""

    kind: str  # "paused" (429) or "banned" (418)
    until: float
    now: float

    @property
    def says(self) -> str:
        """"paused by the exchange until 14:03:12 local (in 42 s)" (the date too when not today)."""
        end, today = datetime.fromtimestamp(self.until), datetime.fromtimestamp(self.now)
        at = end.strftime("%H:%M:%S" if end.date() == today.date() else "%Y-%m-%d %H:%M:%S")
        why = "an IP ban (418)" if self.kind == "banned" else "a rate limit (429)"
        return (f"paused by the exchange until {at} local "
                f"(in {describe_duration(self.until - self.now)}): {why}")


class CapabilityUnavailable(Exception):
    """Not sent: the endpoint is unregistered, refused or bogus. The feature stays parked."""

    def __init__(self, endpoint: str, state: EndpointState, code: int | None, message: str) -> None:
        self.endpoint, self.state, self.code, self.message = endpoint, state, code, message
        said = f" ({code} {message})" if code is not None or message else ""
        super().__init__(f"{endpoint} is {state}{said}: not sent")


def outcome_of(exc: BinanceError, answered: bool = False) -> EndpointState:
    """The endpoint state an error means: its class's `reaction`. An empty 200 is `bogus` (not
    a real path) only from an endpoint that never answered properly; from one that did, it is
    passing trouble."""
    if exc.reaction is EndpointState.BOGUS and answered:
        return EndpointState.FAILING
    return exc.reaction


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
        dry_run: bool = False,
    ) -> None:
        self.client = client
        self.dry_run = dry_run  # send nothing that changes anything: no write probes
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
        self._enabled: frozenset[str] | None = None  # `enabled()`, until `_caps` changes
        self._answered: dict[str, Cause] = {}  # the cause of a success, per endpoint
        self.hints: dict[str, str] = {}  # asset, fiat, adv_no, order_no: for probe parameters
        self.last_response: dict[str, Response] = {}
        self.probe_params: dict[str, Mapping[str, Any] | None] = {}  # what each last probe sent
        # called after every sent request with (endpoint, outcome, latency seconds); outcome is
        # "ok", the exchange's code, or "http <status>" / "error" (metrics subscribe here)
        self.observers: list[Callable[[str, str, float], None]] = []
        self._probe_wake = asyncio.Event()
        self._changed = asyncio.Event()
        # per ad (advNo): a write probe's read and write, and the bot's own writes of that ad, in
        # order; writes of different ads go out side by side (the scheduler bounds them)
        self._writing: dict[str, asyncio.Lock] = {}

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
        """Names of the capabilities seen working (enabled or degraded; never unchecked).

        Kept until a capability's state changes: every pricing decision asks."""
        got = self._enabled
        if got is None:
            got = self._enabled = frozenset(n for n, s in self._caps.items() if s.state in WORKING)
        return got

    def banned_until(self) -> float | None:
        """The end of a running IP ban (418, or one restored from the store), else None."""
        until = self.client.banned_until
        return until if until > self.clock.time() else None

    def paused_until(self) -> float | None:
        """The end of a running 429 pause (every request waits for it), else None."""
        until = getattr(self.client, "paused_until", 0.0)
        return until if until > self.clock.time() else None

    def halted(self) -> Halt | None:
        """A pause (429) or a ban (418) that holds every request now, the later one; else None.

        While it runs, every capability is down: nothing is sent, whatever its state says."""
        now = self.clock.time()
        ban, pause = self.client.banned_until, getattr(self.client, "paused_until", 0.0)
        if ban > now and ban >= pause:
            return Halt("banned", ban, now)
        if pause > now:
            return Halt("paused", pause, now)
        return None

    def route(self, capability: str) -> str | None:
        """The source a consumer should use now, or None when every source is blocked.

        An unchecked source is routed to: the consumer's first call is how it gets checked.
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
        if not ENDPOINTS[endpoint].write:
            return await self._send(endpoint, params)
        async with self.writing(_ad_of(params)):  # never between a write probe's read and its
            h.wrote_at = self.clock.time()  # write of the same ad
            return await self._send(endpoint, params)

    def writing(self, adv_no: str) -> asyncio.Lock:
        """The write lock of one ad: its writes go out one at a time, in the order asked."""
        lock = self._writing.get(adv_no)
        if lock is None:
            lock = self._writing[adv_no] = asyncio.Lock()
        return lock

    async def _send(
        self, endpoint: str, params: Mapping[str, Any] | None, *, probe: bool = False
    ) -> Response:
        started = self.clock.monotonic()  # the client's scheduler spends the weight budget
        limited = getattr(self.client, "rate_limited", 0)
        try:
            resp = await self.client.call(endpoint, params)
            read(resp)  # data that does not fit its model is this endpoint's failure (ShapeChanged)
        except BinanceError as exc:
            if exc.status is None and isinstance(exc, IpBanned | NotSent):
                raise  # not sent (the ban runs, or the scheduler dropped it): nothing to learn
            self._learn_limit(limited)
            await self._after_error(endpoint, exc, self.clock.monotonic() - started, probe)
            raise
        self._learn_limit(limited)
        self._report_weight()
        self._observe(endpoint, "ok", resp.latency)
        self.last_response[endpoint] = resp
        self.health[endpoint].answered = True
        cause = self._answered.get(endpoint)
        if cause is None:  # one per endpoint: a Cause is frozen, and every success names the same
            cause = self._answered[endpoint] = Cause(endpoint)
        await self.record(endpoint, EndpointState.AVAILABLE, cause, resp.latency,
                          probe=probe)
        return resp

    def _observe(self, endpoint: str, outcome: str, latency: float) -> None:
        for observer in self.observers:
            observer(endpoint, outcome, latency)

    async def _after_error(
        self, endpoint: str, exc: BinanceError, latency: float, probe: bool = False
    ) -> None:
        self._report_weight()
        outcome = str(exc.code) if exc.code is not None else (
            f"http {exc.status}" if exc.status is not None else type(exc).__name__)
        self._observe(endpoint, outcome, latency)
        if isinstance(exc, IpBanned) and self.meta is not None:
            with contextlib.suppress(StoreUnwritable):  # the ban holds in memory; the store said it is full
                await self.meta.set_ban_until(self.client.banned_until)
        cause = Cause(endpoint, exc.code if exc.code is not None else exc.status, exc.msg or exc.advice)
        await self.record(endpoint, outcome_of(exc, self.health[endpoint].answered), cause, latency,
                          probe=probe)

    def _learn_limit(self, limited_before: int) -> None:
        """A 429 met on the way (the client may have waited it out and retried): the governor
        keeps below what was used when it came."""
        if self.governor is None or getattr(self.client, "rate_limited", 0) == limited_before:
            return
        self._report_weight()
        limit = self.governor.rate_limited()
        logger.info("rate limited: keeping below {} weight a minute for now (budget {})", limit,
                    self.governor.budget)

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
        self, endpoint: str, new: EndpointState, cause: Cause, latency: float | None = None,
        *, probe: bool = False,
    ) -> None:
        """Apply one outcome to the endpoint's health (and capabilities) and store transitions.

        `probe`: the outcome of a probe, the only kind that advances the re-probe backoff.
        """
        h = self.health[endpoint]
        now = self.clock.time()
        h.latency = latency
        h.consecutive_ok = h.consecutive_ok + 1 if new is EndpointState.AVAILABLE else 0
        if new is EndpointState.AVAILABLE and self._untrusted(h, now):
            h.probation = True
            self._probe_at(h, now + self.config.first, "on probation after flapping")
            return
        h.probation = False
        old = h.state
        if new is old:
            self._reschedule(h, now, probe=probe, changed=False)
            return
        if old is EndpointState.AVAILABLE:
            h.flaps.append(now)
        h.state, h.code, h.message, h.since = new, cause.code, cause.message, now
        logger.info("endpoint {}: {} -> {}{}", endpoint, old, new, _said(cause) if new is not EndpointState.AVAILABLE else "")
        self._reschedule(h, now, probe=probe, changed=True)
        if self.log is not None:
            with contextlib.suppress(StoreUnwritable):  # health goes on in memory on a full disk
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
                self._enabled = None

    def _untrusted(self, h: EndpointHealth, now: float) -> bool:
        if h.state is EndpointState.AVAILABLE or h.state is EndpointState.UNKNOWN:
            return False
        flapping = h.flap_count(now, self.config.flap_window) > self.config.flap_threshold
        return flapping and h.consecutive_ok < self.config.trust_after

    def _reschedule(self, h: EndpointHealth, now: float, *, probe: bool, changed: bool) -> None:
        """The next probe after an outcome. A probe advances the backoff (a new state starts
        it over); an ordinary call only starts a schedule where none runs, so polling that
        keeps failing never pushes the next probe out."""
        if h.state not in PROBED:
            h.next_probe_at, h.delays = None, None
        elif probe:
            self._schedule(h, now, reset=changed)
        elif h.next_probe_at is None:
            self._schedule(h, now, reset=True)

    def _schedule(self, h: EndpointHealth, now: float, *, reset: bool) -> None:
        c = self.config
        if reset or h.delays is None:
            h.delays = backoff(c.first, c.factor, c.cap, c.jitter, self.rng)
        self._probe_at(h, now + next(h.delays))

    def _probe_at(self, h: EndpointHealth, at: float, why: str = "") -> None:
        """Set the endpoint's next probe and say so: "search: unregistered (-2008); next probe
        in 60 s". An endpoint that is never probed (a write in a dry run) gets no time."""
        if not self._probed(h.name):
            h.next_probe_at = None
            return
        h.next_probe_at = at
        self._probe_wake.set()
        detail = str(h.code) if h.code is not None else h.message
        said = f" ({detail})" if detail else ""
        logger.info("{}: {}{}; next probe in {:.0f} s{}", h.name, h.state, said,
                    max(0.0, at - self.clock.time()), f" ({why})" if why else "")

    def _probed(self, endpoint: str) -> bool:
        """Whether the prober may test `endpoint` (writes are not sent in a dry run)."""
        if endpoint in WRITE_PROBES:
            return not self.dry_run
        return endpoint in PROBES

    def _evaluate(self, spec: CapabilitySpec, cause: Cause | None = None) -> CapabilityStatus:
        """Enabled/degraded on the first source whose endpoints all answered; unchecked when
        the first source still possible has endpoints not called yet (it is the one tried);
        disabled, naming every endpoint that is down, when no source is possible."""
        possible = (EndpointState.AVAILABLE, EndpointState.UNKNOWN)
        for i, src in enumerate(spec.sources):
            states = [self.health[e].state for e in src.endpoints]
            if all(s is EndpointState.AVAILABLE for s in states):
                return CapabilityStatus(spec.name, CapState.ENABLED if i == 0 else CapState.DEGRADED,
                                        src.name, cause)
            if all(s in possible for s in states):
                return CapabilityStatus(spec.name, CapState.UNCHECKED, src.name, cause)
        down = dict.fromkeys(e for src in spec.sources for e in src.endpoints
                             if self.health[e].state not in possible)
        causes = tuple(Cause(e, self.health[e].code, self.health[e].message) for e in down)
        return CapabilityStatus(spec.name, CapState.DISABLED, None, cause, causes)

    def _reevaluate(self, cause: Cause, now: float) -> None:
        for name, spec in CAPABILITIES.items():
            if cause.endpoint not in {e for s in spec.sources for e in s.endpoints}:
                continue
            old, new = self._caps[name], self._evaluate(spec, cause)
            if (old.state, old.source) == (new.state, new.source):
                if old.causes != new.causes:  # still down, for other reasons: keep them current
                    self._caps[name] = replace(old, causes=new.causes)
                continue
            self._caps[name] = new
            self._enabled = None
            self._changed.set()
            self._changed = asyncio.Event()
            _log_capability(spec, old, new)
            if self.bus is not None:
                self.bus.publish(CapabilityChanged(name, old.state, new.state, new.source, cause,
                                                   now, new.causes))

    # --- probing -------------------------------------------------------------------

    def due(self) -> list[str]:
        """Endpoints whose re-probe time has come."""
        now = self.clock.time()
        return [
            h.name for h in self.health.values()
            if h.next_probe_at is not None and h.next_probe_at <= now and self._probed(h.name)
        ]

    def next_probe_in(self) -> float | None:
        """Seconds until the next scheduled probe, or None."""
        times = [h.next_probe_at for h in self.health.values()
                 if h.next_probe_at is not None and self._probed(h.name)]
        return max(0.0, min(times) - self.clock.time()) if times else None

    async def probe(self, endpoint: str) -> EndpointState:
        """Send the cheapest call that exercises `endpoint`, even if it is blocked.

        A write is probed with a write that changes nothing (bot.capabilities.table.WRITE_PROBES),
        built from the ad as read just before, under the write lock; never in a dry run.
        """
        h = self.health[endpoint]
        if endpoint not in WRITE_PROBES:
            return await self._probe_with(h, PROBES[endpoint](self))
        if not self._probed(endpoint):
            self.probe_params[endpoint] = None
            return h.state
        async with self.writing(self.hints.get("adv_no", "")):
            return await self._probe_with(h, await self._write_probe(h))

    async def _probe_with(self, h: EndpointHealth, params: Mapping[str, Any] | None) -> EndpointState:
        self.probe_params[h.name] = params
        if params is None:  # nothing to probe it with yet (e.g. no ad known), or not yet safe
            if h.next_probe_at is None or h.next_probe_at <= self.clock.time():
                self._probe_at(h, self.clock.time() + self.config.first, "nothing safe to probe it with yet")
            return h.state
        try:
            resp = await self._send(h.name, params, probe=True)
            latency_ms: float | None = resp.latency * 1000
        except IpBanned as exc:
            if exc.status is None:  # not sent: the ban runs; look again when it ends
                self._probe_at(h, max(self.client.banned_until, self.clock.time() + 1.0),
                               "an IP ban runs")
                return h.state
            latency_ms = h.latency * 1000 if h.latency is not None else None
        except BinanceError:
            latency_ms = h.latency * 1000 if h.latency is not None else None
        if self.log is not None:
            with contextlib.suppress(StoreUnwritable):
                await self.log.record_probe(self.clock.time(), h.name, str(h.state), h.code,
                                            h.message, latency_ms)
        return h.state

    async def _write_probe(self, h: EndpointHealth) -> Mapping[str, Any] | None:
        """The parameters of a write that changes nothing, or None (then it is not sent).

        After a write that may have landed (failing: a timeout or a 5xx) a read may still
        show the old price for a while; re-sending that would undo the write, so the probe
        waits WRITE_SETTLE after it.
        """
        now = self.clock.time()
        if h.state is EndpointState.FAILING and h.wrote_at is not None \
                and now - h.wrote_at < WRITE_SETTLE:
            self._probe_at(h, h.wrote_at + WRITE_SETTLE, "a read may still lag the last write")
            return None
        subject = await (self._read_probe_subject(WRITE_PROBE_READS[h.name])
                         if h.name in WRITE_PROBE_READS else self._read_probe_ad())
        return None if subject is None else WRITE_PROBES[h.name](subject)

    async def _read_probe_subject(self, endpoint: str) -> Mapping[str, Any] | None:
        """What a write probe is built from, read now (the merchant's state), or None."""
        try:
            data = (await self.call(endpoint, PROBES[endpoint](self))).data
        except (BinanceError, CapabilityUnavailable):
            return None
        return data if isinstance(data, Mapping) else None

    async def _read_probe_ad(self) -> Mapping[str, Any] | None:
        """The probe ad (`hints["adv_no"]`) as the exchange shows it now: ad detail, else my_ads."""
        adv_no = self.hints.get("adv_no")
        if not adv_no:
            return None
        reads = (("ad_detail", {"adsNo": adv_no}), ("my_ads", {"page": 1, "rows": 1, "advNo": adv_no}))
        for endpoint, params in reads:
            try:
                data = (await self.call(endpoint, params)).data
            except (BinanceError, CapabilityUnavailable):
                continue
            ad = data[0] if isinstance(data, list) and data else data
            if isinstance(ad, Mapping) and str(ad.get("advNo", "")) == adv_no:
                return ad
        return None

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
                    "cause": None if s.cause is None else cause_json(s.cause),
                    "causes": [cause_json(c) for c in s.causes]}
                for n, s in self._caps.items()
            },
        }


def _ad_of(params: Mapping[str, Any] | None) -> str:
    """The ad a write is about (`advNo`, or a single `advNos`); "" for several or none."""
    params = params or {}
    many = params.get("advNos")
    if "advNo" not in params and isinstance(many, list | tuple) and len(many) == 1:
        return str(many[0])
    return str(params.get("advNo", ""))


def _said(cause: Cause) -> str:
    code = f" {cause.code}" if cause.code is not None else ""
    return f" ({cause.endpoint}{code}: {cause.message})" if cause.message or code else ""


def cause_json(cause: Cause) -> dict[str, Any]:
    """A cause as JSON."""
    return {"endpoint": cause.endpoint, "code": cause.code, "message": cause.message}


def describe_causes(causes: Iterable[Cause]) -> str:
    """Every endpoint that is down and what it said: "reference_price -2008: ...; search -2008: ..."."""
    parts = []
    for c in causes:
        code = f" {c.code}" if c.code is not None else ""
        parts.append(f"{c.endpoint}{code}: {c.message}" if c.message else f"{c.endpoint}{code}")
    return "; ".join(parts)


def why_down(status: CapabilityStatus) -> str:
    """Why a capability is down, naming every endpoint down on every source (" (...)" or "")."""
    if status.causes:
        return f" ({describe_causes(status.causes)})"
    return _said(status.cause) if status.cause else ""


def _log_capability(spec: CapabilitySpec, old: CapabilityStatus, new: CapabilityStatus) -> None:
    cause = _said(new.cause) if new.cause else ""
    if new.state is CapState.DISABLED:
        logger.warning("capability {} disabled{}: {}", spec.name, why_down(new), spec.without)
    elif new.state is CapState.DEGRADED:
        logger.warning("capability {} degraded: running on {}{}: {}", spec.name, new.source, cause,
                       spec.degraded)
    elif new.state is CapState.ENABLED and old.state is CapState.UNCHECKED:
        logger.info("capability {} working: running on {}", spec.name, new.source)
    elif new.state is CapState.ENABLED:
        logger.info("capability {} recovered: running on {}", spec.name, new.source)
