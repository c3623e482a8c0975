"""API keys: credentials, signature checks, and per-endpoint registration (the -2008 behaviour).

Precedence for one endpoint of one key: an override set through the control API,
then the active timeline phase (if it names the endpoint), then the key's
`registration` table, then its `default`, then registered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from pydantic import TypeAdapter

from bot.binance.endpoints import ENDPOINTS
from simulator import answers
from simulator.answers import Answer
from simulator.scenario import (
    Behaviour,
    Flapping,
    KeySpec,
    Phase,
    PhaseAnswer,
    Registered,
    Unregistered,
    Verdict,
    load_public_key,
)

BEHAVIOUR = TypeAdapter(Behaviour)
PHASES = TypeAdapter(list[Phase])
VERDICT = TypeAdapter(PhaseAnswer)
_MODES = ("registered", "unregistered", "flapping")
OK = Verdict(kind="ok")
UNREGISTERED = Verdict(kind="unregistered")


def flap_draw(seed: int, label: str, endpoint: str, slot: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, key, endpoint, slot): no hidden state."""
    digest = hashlib.sha256(f"{seed}:{label}:{endpoint}:{slot}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class KeyState:
    """One API key at run time: verifies signatures and says how each endpoint answers."""

    def __init__(self, spec: KeySpec, seed: int) -> None:
        self.spec = spec
        self.label = spec.label
        self.api_key = spec.api_key
        self.seed = seed
        self._secret = spec.secret.encode() if spec.secret else None
        self._public = load_public_key(spec.ed25519_public_key) if spec.ed25519_public_key else None
        self.behaviours: dict[str, Any] = dict(spec.registration)
        self.timeline: list[Phase] = list(spec.timeline)
        self.overrides: dict[str, Any] = {}

    @property
    def kind(self) -> str:
        """'ed25519' or 'hmac'."""
        return "ed25519" if self._public is not None else "hmac"

    def verify(self, payload: str, signature: str) -> bool:
        """True when `signature` (already URL-decoded) signs `payload` with this key."""
        if self._public is not None:
            try:
                self._public.verify(base64.b64decode(signature, validate=True), payload.encode())
            except (InvalidSignature, binascii.Error, ValueError):
                return False
            return True
        if self._secret is None:
            return False
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())

    def phase(self, elapsed: float) -> Phase | None:
        """The timeline phase in force `elapsed` simulated seconds after the start."""
        current = None
        for phase in self.timeline:
            if phase.at <= elapsed:
                current = phase
        return current

    def verdict(self, endpoint: str, elapsed: float) -> Verdict:
        """How `endpoint` answers for this key at `elapsed` simulated seconds."""
        if endpoint in self.overrides:
            return self._from_behaviour(endpoint, self.overrides[endpoint], elapsed)
        phase = self.phase(elapsed)
        if phase is not None and endpoint in phase.answers:
            return phase.answers[endpoint]
        behaviour = self.behaviours.get(endpoint, self.behaviours.get("default", Registered()))
        return self._from_behaviour(endpoint, behaviour, elapsed)

    def _from_behaviour(self, endpoint: str, behaviour: Any, elapsed: float) -> Verdict:
        if isinstance(behaviour, Verdict):
            return behaviour
        if isinstance(behaviour, Unregistered):
            if behaviour.until is None or elapsed < behaviour.until:
                return UNREGISTERED
            return OK
        if isinstance(behaviour, Flapping):
            slot = int(elapsed // behaviour.every)
            registered = flap_draw(self.seed, self.label, endpoint, slot) < behaviour.p
            return OK if registered else UNREGISTERED
        return OK

    def set_behaviour(self, endpoint: str, behaviour: Any | None) -> None:
        """Override one endpoint (or 'default'); None removes the override."""
        if endpoint != "default" and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if behaviour is None:
            self.overrides.pop(endpoint, None)
        elif endpoint == "default":
            self.behaviours["default"] = BEHAVIOUR.validate_python(behaviour)
        else:
            self.overrides[endpoint] = _behaviour_or_verdict(behaviour)

    def set_timeline(self, phases: Iterable[Any]) -> None:
        """Replace the timeline."""
        self.timeline = sorted(PHASES.validate_python(list(phases)), key=lambda p: p.at)

    def summary(self, elapsed: float) -> dict[str, str]:
        """Every endpoint's current answer, as short text ('ok', 'unregistered', '-1022', ...)."""
        now = {name: describe(self.verdict(name, elapsed)) for name in ENDPOINTS}
        if not self.spec.permissions.account_access:
            now["key_permissions"] = "-2015"
        return now

    def configured(self) -> dict[str, Any]:
        """The behaviours as configured (for the control API)."""
        return {
            "behaviours": {k: _dump(v) for k, v in self.behaviours.items()},
            "overrides": {k: _dump(v) for k, v in self.overrides.items()},
            "timeline": [p.model_dump() for p in self.timeline],
        }


def _behaviour_or_verdict(value: Any) -> Any:
    """A behaviour ('unregistered', {mode: flapping, ...}) or a fixed answer (-1022, 'http500')."""
    if value in _MODES or isinstance(value, dict) and "mode" in value:
        return BEHAVIOUR.validate_python(value)
    return VERDICT.validate_python(value)


def _dump(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


def describe(verdict: Verdict) -> str:
    """Short text for a verdict."""
    if verdict.kind == "error":
        return str(verdict.code)
    return verdict.kind


def verdict_answer(verdict: Verdict, hold_seconds: float) -> Answer | None:
    """The reply a verdict forces, or None when the request is served normally."""
    if verdict.kind == "ok":
        return None
    if verdict.kind == "unregistered":
        return answers.error(-2008)
    if verdict.kind == "http500":
        return answers.error(-1001, verdict.msg, verdict.http or 500)
    if verdict.kind == "timeout":
        return answers.hold(hold_seconds)
    if verdict.kind == "empty":
        return answers.empty()
    assert verdict.code is not None
    return answers.error(verdict.code, verdict.msg, verdict.http)


class KeyBook:
    """Every key of the scenario, found by API key or label."""

    def __init__(self, specs: Sequence[KeySpec], seed: int) -> None:
        self.keys = [KeyState(spec, seed) for spec in specs]
        self._by_api_key = {k.api_key: k for k in self.keys}
        self._by_label = {k.label: k for k in self.keys}

    @property
    def first(self) -> KeyState:
        """The scenario's first key (the one the bot uses by default)."""
        return self.keys[0]

    @property
    def labels(self) -> list[str]:
        """Every key's label."""
        return [k.label for k in self.keys]

    def find(self, api_key: str) -> KeyState | None:
        """The key with this API key, if any."""
        return self._by_api_key.get(api_key)

    def get(self, label: str | None = None) -> KeyState:
        """The key with this label (the first key for None); KeyError names the labels."""
        if label is None:
            return self.first
        try:
            return self._by_label[label]
        except KeyError:
            known = ", ".join(self._by_label)
            raise KeyError(f"no key labelled {label!r}; keys: {known}") from None
