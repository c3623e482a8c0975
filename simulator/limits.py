"""Request weight per simulated minute, 429 with Retry-After, and the growing 418 ban.

Windows are fixed simulated minutes (epoch-aligned), as Binance's `1M` counters are.
A client that sends again before a 429's Retry-After has passed is banned (418):
2 minutes the first time, doubling each time, capped at 3 days. Requests during a
ban get 418 with the time left and do not lengthen it.

Ignoring a 429 means sending after having received it, so a request is judged by
when it *arrived* (the gateway stamps each request in arrival order as it comes in),
not by when it is admitted:
- a request that arrived before the 429 was issued was already in flight (say, slowed
  by a latency fault) and cannot have ignored it;
- nor can one that arrived on another connection in the same simulated millisecond as
  the 429 was issued: it crossed the 429 on the way (no client receives an answer and
  reacts within the millisecond; on a frozen or driven clock, requests in flight together
  all arrive in that millisecond). On the 429's own connection the next request was
  necessarily sent after the answer was read (HTTP/1.1 sends one at a time): it is judged.
Every other request that arrives before the Retry-After ends is banned; the rest stays
as strict.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from bot.binance.endpoints import ENDPOINTS
from simulator.scenario import LimitsSpec

MINUTE_MS = 60_000
IP_HEADER = "X-SAPI-USED-IP-WEIGHT-1M"
UID_HEADER = "X-SAPI-USED-UID-WEIGHT-1M"
API_HEADER = "X-MBX-USED-WEIGHT-1M"


@dataclass(slots=True)
class _Window:
    minute: int = -1
    used: int = 0


@dataclass(frozen=True, slots=True)
class Arrival:
    """When a request came in: its number in arrival order, the simulated ms, its connection."""

    number: int
    ms: int
    conn: str = ""


@dataclass(slots=True)
class _Offender:
    wait_until_ms: int = 0  # the end of the last 429's Retry-After
    wait_from: Arrival = Arrival(0, 0)  # the last arrival when that 429 was issued, its connection

    def ignores(self, arrival: Arrival) -> bool:
        """Whether a request that arrived so ignored the running 429 (see the module's text)."""
        if arrival.number <= self.wait_from.number or arrival.ms >= self.wait_until_ms:
            return False
        crossed = arrival.ms <= self.wait_from.ms and arrival.conn != self.wait_from.conn
        return not crossed
    banned_until_ms: int = 0
    bans: int = 0


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who pays for a request: the IP (or the key for UID-limited endpoints) and how much."""

    ip: str
    scope: str  # "ip", "uid" or "api"
    ident: str
    weight: int

    @property
    def header(self) -> str:
        """The used-weight header for this scope."""
        return {"ip": IP_HEADER, "uid": UID_HEADER, "api": API_HEADER}[self.scope]


@dataclass(frozen=True, slots=True)
class Admission:
    """The limiter's decision: 200 (go on), 429 or 418, with Retry-After seconds."""

    status: int
    retry_after: int | None = None
    limit: int = 0

    @property
    def ok(self) -> bool:
        """True when the request may go on."""
        return self.status == 200


def _seconds_until(now_ms: int, until_ms: int) -> int:
    return max(1, math.ceil((until_ms - now_ms) / 1000))


class Limiter:
    """Counts weight per IP (or UID) per simulated minute and bans clients that ignore 429."""

    def __init__(self, spec: LimitsSpec) -> None:
        self.spec = spec
        self._windows: dict[tuple[str, str], _Window] = defaultdict(_Window)
        self._offenders: dict[str, _Offender] = defaultdict(_Offender)
        self._arrivals = 0

    def arrive(self, now_ms: int, conn: str = "") -> Arrival:
        """A request has come in (numbered in arrival order) on connection `conn`."""
        self._arrivals += 1
        return Arrival(self._arrivals, now_ms, conn)

    def weight(self, endpoint: str | None) -> int:
        """An endpoint's weight: the scenario's override, else the endpoint table, else 1."""
        if endpoint is None:
            return 1
        if endpoint in self.spec.weights:
            return self.spec.weights[endpoint]
        ep = ENDPOINTS.get(endpoint)
        return ep.weight if ep is not None else 1

    def ticket(self, ip: str, path: str, endpoint: str | None, key_label: str | None) -> Ticket:
        """Which counter a request is charged to."""
        weight = self.weight(endpoint)
        if path.startswith("/api/"):
            return Ticket(ip, "api", ip, weight)
        if endpoint in self.spec.uid_endpoints and key_label is not None:
            return Ticket(ip, "uid", key_label, weight)
        return Ticket(ip, "ip", ip, weight)

    def _budget(self, scope: str) -> int:
        if scope == "uid":
            return self.spec.uid_weight_per_minute
        if scope == "api":
            return self.spec.api_weight_per_minute
        return self.spec.ip_weight_per_minute

    def _window(self, ticket: Ticket, now_ms: int) -> _Window:
        window = self._windows[(ticket.scope, ticket.ident)]
        minute = now_ms // MINUTE_MS
        if window.minute != minute:
            window.minute, window.used = minute, 0
        return window

    def admit(self, ticket: Ticket, now_ms: int, arrival: Arrival | None = None) -> Admission:
        """Charge the request, or refuse it with 429 / 418.

        `arrival`: from `arrive()` when the request came in; None: it arrives now.
        """
        arrival = arrival if arrival is not None else self.arrive(now_ms)
        offender = self._offenders[ticket.ip]
        if now_ms < offender.banned_until_ms:
            return Admission(418, _seconds_until(now_ms, offender.banned_until_ms))
        if offender.ignores(arrival):
            return Admission(418, self._ban(offender, now_ms))
        window = self._window(ticket, now_ms)
        budget = self._budget(ticket.scope)
        if window.used + ticket.weight > budget:
            window_end = (window.minute + 1) * MINUTE_MS
            self._rate_limited(offender, now_ms, window_end, arrival.conn)
            return Admission(429, _seconds_until(now_ms, window_end), budget)
        window.used += ticket.weight
        return Admission(200)

    def _ban(self, offender: _Offender, now_ms: int) -> int:
        seconds = min(self.spec.first_ban_seconds * 2**offender.bans, self.spec.max_ban_seconds)
        offender.bans += 1
        offender.banned_until_ms = now_ms + seconds * 1000
        offender.wait_until_ms = 0
        return int(seconds)

    def note_rate_limited(self, ip: str, now_ms: int, until_ms: int, conn: str = "") -> None:
        """A 429 sent for another reason (a fault) on `conn`: sending before `until_ms`
        ignores it."""
        self._rate_limited(self._offenders[ip], now_ms, until_ms, conn)

    def _rate_limited(self, offender: _Offender, now_ms: int, until_ms: int, conn: str) -> None:
        """A 429 issued now: requests arriving after it until `until_ms` ignore it (a 429 issued
        while another one's Retry-After runs does not spare those that ignored the first)."""
        if offender.wait_until_ms <= now_ms:
            offender.wait_from = Arrival(self._arrivals, now_ms, conn)
        offender.wait_until_ms = max(offender.wait_until_ms, until_ms)

    def used(self, ticket: Ticket, now_ms: int) -> int:
        """The weight used so far in the current minute by this ticket's counter."""
        return self._window(ticket, now_ms).used

    def reset(self) -> None:
        """Forget every counter and ban."""
        self._windows.clear()
        self._offenders.clear()

    def snapshot(self, now_ms: int) -> dict[str, object]:
        """Counters and bans, for the control API."""
        minute = now_ms // MINUTE_MS
        return {
            "weights": {
                f"{scope}:{ident}": w.used
                for (scope, ident), w in self._windows.items()
                if w.minute == minute
            },
            "bans": {
                ip: {"banned_until_ms": o.banned_until_ms, "bans": o.bans,
                     "wait_until_ms": o.wait_until_ms}
                for ip, o in self._offenders.items()
            },
            "ip_weight_per_minute": self.spec.ip_weight_per_minute,
        }
