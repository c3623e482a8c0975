"""Injected faults: for the next N requests or a simulated time window, optionally for one endpoint.

Each rule draws from its own seeded random stream, once per matching request, so
the same scenario, seed and request sequence hit the same requests. Latency and
clock skew add up across rules; of the other kinds, the first rule that fires
decides the reply. `malformed` and `reshape` are applied to the reply after the
request is served (the request took effect; only the answer is garbled, or its
`data` has renamed keys or is null); the others answer before the request
reaches the world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from simulator import answers
from simulator.answers import Answer
from simulator.scenario import FaultSpec

ADDITIVE = ("latency", "skew")


@dataclass(slots=True)
class ActiveFault:
    """A fault rule at run time: its window, what is left of its count, its random stream."""

    id: int
    spec: FaultSpec
    start: float
    end: float | None
    remaining: int | None
    rng: random.Random
    hits: int = 0

    def matches(self, endpoint: str | None, elapsed: float) -> bool:
        """True when the rule applies to this request (before its rate is drawn)."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.spec.endpoint is not None and self.spec.endpoint != endpoint:
            return False
        return self.start <= elapsed and (self.end is None or elapsed < self.end)

    def fires(self) -> bool:
        """Draw the rate; count the hit."""
        if self.spec.rate < 1.0 and self.rng.random() >= self.spec.rate:
            return False
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1
        return True

    def describe(self) -> dict[str, Any]:
        """The rule and its state, for the control API."""
        return {"id": self.id, **self.spec.model_dump(exclude_none=True), "start": self.start,
                "end": self.end, "remaining": self.remaining, "hits": self.hits}


@dataclass(slots=True)
class Draw:
    """What the faults do to one request."""

    latency_ms: int = 0
    skew_ms: int = 0
    fault: ActiveFault | None = None  # the one non-additive fault that fired, if any
    kinds: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        """The kind of the deciding fault."""
        return self.fault.spec.kind if self.fault is not None else None


class FaultBook:
    """Every active fault rule."""

    def __init__(self, specs: list[FaultSpec], seed: int, hold_seconds: float) -> None:
        self.seed = seed
        self.hold_seconds = hold_seconds
        self._next_id = 1
        self.faults: list[ActiveFault] = []
        for spec in specs:
            self.add(spec, now=0.0)

    def add(self, spec: FaultSpec, now: float) -> ActiveFault:
        """Activate a rule; its window starts at `start` (or `now`) simulated seconds."""
        start = spec.start if spec.start is not None else now
        end = spec.end if spec.end is not None else None
        if spec.duration is not None:
            end = start + spec.duration
        fault = ActiveFault(self._next_id, spec, start, end, spec.count,
                            random.Random(f"{self.seed}:fault:{self._next_id}"))
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule."""
        self.faults.clear()

    def draw(self, endpoint: str | None, elapsed: float) -> Draw:
        """Roll every matching rule for one request."""
        result = Draw()
        for fault in self.faults:
            kind = fault.spec.kind
            if kind not in ADDITIVE and result.fault is not None:
                continue
            if not fault.matches(endpoint, elapsed) or not fault.fires():
                continue
            result.kinds.append(kind)
            if kind == "latency":
                result.latency_ms += fault.spec.latency_ms
            elif kind == "skew":
                result.skew_ms += fault.spec.skew_ms
            else:
                result.fault = fault
        return result

    def answer(self, fault: ActiveFault, limit: int) -> Answer:
        """The reply a fired (non-additive, non-malformed) fault sends instead of the real one."""
        spec = fault.spec
        kind = spec.kind
        if kind == "http5xx":
            return answers.html(spec.status, "Bad Gateway") if spec.html else answers.error(
                -1001, http=spec.status)
        if kind == "timeout":
            return answers.hold(spec.hold_seconds or self.hold_seconds)
        if kind == "drop":
            return answers.drop()
        if kind == "html403":
            return answers.html(403, "Forbidden")
        if kind == "http429":
            reply = answers.error(-1003, answers.message(-1003).format(limit=limit), http=429)
            reply.headers["Retry-After"] = str(spec.retry_after)
            return reply
        raise ValueError(f"fault kind {kind!r} has no reply of its own")

    def describe(self) -> list[dict[str, Any]]:
        """Every rule, for the control API."""
        return [f.describe() for f in self.faults]
