"""Scenario files: TOML validated into pydantic models; errors name the file, key and field.

    [sim]        name, description, seed, speed (simulated s per real s), start (TOML
                 datetime; default: now), hold_seconds (how long a "timeout" holds, real s;
                 simulated s on a stepped simulator, as latency_ms is)
    [[keys]]     label, api_key, secret (HMAC) or ed25519_public_key (PEM); both generated
                 when absent. [keys.permissions]: account_access (false: -2015) and the
                 apiRestrictions flags. [keys.registration]: endpoint (or "default") =
                 "registered" | "unregistered" | {mode="unregistered", until=S} |
                 {mode="flapping", p=P, every=S}. [[keys.timeline]]: at=S, label, and
                 [keys.timeline.answers] endpoint = "ok" | -2008 | <code> | "http500" |
                 "timeout" | "empty" | {code=C, msg="...", http=H}
    [limits]     ip/uid/api_weight_per_minute, uid_endpoints, weights = {endpoint = W},
                 first_ban_seconds, max_ban_seconds
    [faults]     [[faults.rules]]: kind (latency, http5xx, timeout, drop, http429, skew,
                 malformed, html403), endpoint, count, start/end/duration (simulated s),
                 rate, and latency_ms, status, html, hold_seconds, skew_ms, retry_after
    [realism]    the real exchange's habits, each off unless switched on (RealismSpec):
                 read_lag_seconds, read_lag_endpoints; wrap_business_errors, wrap_http;
                 quantity_conflict_rate, quantity_conflict_codes, quantity_conflict_clears;
                 require_client_type; c2c_weight_header
    [world]      passed verbatim to World.from_config (simulator/world/core.py owns its keys)

Times (`until`, `at`, `start`, `end`) are simulated seconds after the scenario started.
"""

from __future__ import annotations

import secrets
import string
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from bot.binance.endpoints import ENDPOINTS

SCENARIO_DIR = Path(__file__).parent / "scenarios"
_ALNUM = string.ascii_letters + string.digits


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the field."""


class UnknownScenario(ScenarioError):
    """No scenario of that name; the message lists the available ones."""


def generate_credential() -> str:
    """A random 64-character key or secret, shaped like Binance's."""
    return "".join(secrets.choice(_ALNUM) for _ in range(64))


def _known_endpoint(name: str) -> str:
    if name not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")
    return name


def _endpoint_or_default(name: str) -> str:
    return name if name == "default" else _known_endpoint(name)


EndpointName = Annotated[str, AfterValidator(_known_endpoint)]
EndpointOrDefault = Annotated[str, AfterValidator(_endpoint_or_default)]


class Strict(BaseModel):
    """Unknown keys are errors; values do not change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- registration: how one key's endpoint answers ------------------------------------


class Registered(Strict):
    """The endpoint works for this key."""

    mode: Literal["registered"] = "registered"


class Unregistered(Strict):
    """-2008, for ever or until `until` simulated seconds after the scenario start."""

    mode: Literal["unregistered"] = "unregistered"
    until: float | None = Field(default=None, ge=0)


class Flapping(Strict):
    """Registered with probability `p`, re-drawn every `every` simulated seconds (seeded)."""

    mode: Literal["flapping"] = "flapping"
    p: float = Field(default=0.5, ge=0, le=1)
    every: float = Field(default=60.0, gt=0)


def _behaviour_from_text(value: Any) -> Any:
    return {"mode": value} if isinstance(value, str) else value


Behaviour = Annotated[
    Registered | Unregistered | Flapping,
    Field(discriminator="mode"),
    BeforeValidator(_behaviour_from_text),
]

VerdictKind = Literal["ok", "unregistered", "error", "http500", "timeout", "empty"]
_VERDICT_ALIASES = {"registered": "ok", "working": "ok", "-2008": "unregistered"}


class Verdict(Strict):
    """What an endpoint answers in a timeline phase: ok (served), -2008, an error code,
    HTTP 500, a timeout (held), or an empty HTTP 200."""

    kind: VerdictKind
    code: int | None = None
    msg: str | None = None
    http: int | None = Field(default=None, ge=100, le=599)

    @model_validator(mode="after")
    def _code_for_errors(self) -> Verdict:
        if self.kind == "error" and self.code is None:
            raise ValueError("an 'error' answer needs a code")
        return self


def _verdict_from_short(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int):
        return {"kind": "unregistered"} if value == -2008 else {"kind": "error", "code": value}
    if isinstance(value, str):
        return {"kind": _VERDICT_ALIASES.get(value, value)}
    if isinstance(value, Mapping) and "kind" not in value and "code" in value:
        return {"kind": "error", **value}
    return value


PhaseAnswer = Annotated[Verdict, BeforeValidator(_verdict_from_short)]


class Phase(Strict):
    """From `at` simulated seconds after the start, these endpoints answer this way."""

    at: float = Field(ge=0)
    label: str = ""
    answers: dict[EndpointName, PhaseAnswer] = Field(default_factory=dict)


class Permissions(Strict):
    """The key's settings as `apiRestrictions` reports them; `account_access = false`: -2015."""

    account_access: bool = True
    ip_restrict: bool = False
    enable_reading: bool = True
    enable_withdrawals: bool = False
    enable_internal_transfer: bool = False
    enable_margin: bool = False
    enable_futures: bool = False
    permits_universal_transfer: bool = False
    enable_vanilla_options: bool = False
    enable_spot_and_margin_trading: bool = False
    enable_portfolio_margin_trading: bool = False


def load_public_key(pem: str) -> ed25519.Ed25519PublicKey:
    """An Ed25519 public key from PEM text; ValueError otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ValueError("ed25519_public_key is not a PEM public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"ed25519_public_key holds a {type(key).__name__}, not an Ed25519 key")
    return key


class KeySpec(Strict):
    """One API key: credentials (HMAC secret or Ed25519 public key), permissions, registration."""

    label: str = Field(min_length=1)
    api_key: str = Field(default_factory=generate_credential, min_length=1)
    secret: str | None = None
    ed25519_public_key: str | None = None
    permissions: Permissions = Field(default_factory=Permissions)
    registration: dict[EndpointOrDefault, Behaviour] = Field(default_factory=dict)
    timeline: list[Phase] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _generate_secret(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        if not data.get("secret") and not data.get("ed25519_public_key"):
            return {**data, "secret": generate_credential()}
        return data

    @model_validator(mode="after")
    def _check(self) -> KeySpec:
        if self.ed25519_public_key is not None:
            load_public_key(self.ed25519_public_key)
        times = [phase.at for phase in self.timeline]
        if times != sorted(set(times)):
            raise ValueError("timeline phases must have strictly increasing 'at'")
        return self


# --- limits and faults ------------------------------------------------------------


class LimitsSpec(Strict):
    """Request weight per simulated minute, and the 418 ban ladder."""

    ip_weight_per_minute: int = Field(default=12000, ge=1)
    uid_weight_per_minute: int = Field(default=180000, ge=1)
    api_weight_per_minute: int = Field(default=6000, ge=1)
    uid_endpoints: list[EndpointName] = Field(default_factory=list)
    weights: dict[EndpointName, int] = Field(default_factory=dict)
    first_ban_seconds: int = Field(default=120, ge=1)
    max_ban_seconds: int = Field(default=259200, ge=1)


FaultKind = Literal[
    "latency", "http5xx", "timeout", "drop", "http429", "skew", "malformed", "html403", "reshape"
]


class FaultSpec(Strict):
    """One fault rule: what, for which endpoint, for how many requests or which simulated window."""

    kind: FaultKind
    endpoint: EndpointName | None = None
    count: int | None = Field(default=None, ge=1)
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    duration: float | None = Field(default=None, gt=0)
    rate: float = Field(default=1.0, gt=0, le=1)
    latency_ms: int = Field(default=0, ge=0)
    status: int = Field(default=500, ge=500, le=599)
    html: bool = False
    hold_seconds: float | None = Field(default=None, gt=0)
    skew_ms: int = 0
    retry_after: int = Field(default=5, ge=1)
    rename: dict[str, str] = Field(default_factory=dict)  # reshape: keys renamed inside `data`
    null_data: bool = False  # reshape: `data: null`
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        if self.end is not None and self.duration is not None:
            raise ValueError("give 'end' or 'duration', not both")
        if self.end is not None and self.start is not None and self.end <= self.start:
            raise ValueError("'end' must come after 'start'")
        if self.kind == "latency" and self.latency_ms <= 0:
            raise ValueError("a latency fault needs latency_ms > 0")
        if self.kind == "skew" and self.skew_ms == 0:
            raise ValueError("a skew fault needs a non-zero skew_ms")
        if self.kind == "reshape" and not (self.rename or self.null_data):
            raise ValueError("a reshape fault needs rename or null_data")
        return self


class FaultsSpec(Strict):
    """The scenario's fault rules."""

    rules: list[FaultSpec] = Field(default_factory=list)


QUANTITY_CODES = (187049, 187040, 187031)


class RealismSpec(Strict):
    """What the real exchange does that a tidy one would not (docs/exchange.md §11).

    Every switch is off by default; the `realistic` scenario turns them all on.

    Read-your-write lag: for `read_lag_seconds` simulated seconds after an `ads/update`
    that changed the price, the reads in `read_lag_endpoints` still show the ad as it was
    (price, ratio and place in search).
    `-9000` wrapper: with `wrap_business_errors`, every positive business code answers as
    `{"code": -9000, "msg": "<code>: <text>"}` with HTTP `wrap_http` (200 or 400).
    Quantity state: an `ads/update` is refused at `quantity_conflict_rate` (seeded) with one
    of `quantity_conflict_codes` because the ad's initAmount/surplusAmount disagree with the
    exchange's; with `quantity_conflict_clears` a read of the ad (getDetailByNo or the ads
    list) settles it, else the ad keeps refusing until the scenario is reset.
    `require_client_type`: a signed request without the `clientType: web` header gets
    -31002 from `chat/retrieveChatCredential` and -9000/187049 from `ads/update`.
    `c2c_weight_header`: which used-weight header C2C (/sapi/) answers carry: "sapi"
    (X-SAPI-USED-IP/UID-WEIGHT-1M), "mbx" (x-mbx-used-weight-1m, as one product reports) or
    "both".
    """

    # --- read-your-write lag (§11.1) ---
    read_lag_seconds: float = Field(default=0.0, ge=0, le=600)
    read_lag_endpoints: list[Literal["search", "ad_detail", "my_ads"]] = Field(
        default_factory=lambda: ["search"])  # type: ignore[arg-type]  # a Literal list
    # --- -9000 wraps the real code (§11.2); quantity state (§11.3) ---
    wrap_business_errors: bool = False
    wrap_http: Literal[200, 400] = 200
    quantity_conflict_rate: float = Field(default=0.0, ge=0, le=1)
    quantity_conflict_codes: list[int] = Field(default_factory=lambda: list(QUANTITY_CODES),
                                               min_length=1)
    quantity_conflict_clears: bool = True
    # --- clientType enforcement (§11.5) ---
    require_client_type: bool = False
    # --- used-weight headers (§7) ---
    c2c_weight_header: Literal["sapi", "mbx", "both"] = "sapi"

    @model_validator(mode="after")
    def _check(self) -> RealismSpec:
        wrong = sorted(set(self.quantity_conflict_codes) - set(QUANTITY_CODES))
        if wrong:
            raise ValueError(f"quantity_conflict_codes: {wrong} are not quantity-state codes; "
                             f"use some of {list(QUANTITY_CODES)}")
        return self


class SimSpec(Strict):
    """Seed, speed (simulated seconds per real second), optional start time, hold time."""

    name: str | None = None
    description: str = ""
    seed: int = 1
    speed: float = Field(default=1.0, ge=0)
    start: datetime | None = None
    hold_seconds: float = Field(default=30.0, gt=0)


class Scenario(Strict):
    """A whole scenario file."""

    sim: SimSpec = Field(default_factory=SimSpec)
    keys: list[KeySpec] = Field(min_length=1)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    faults: FaultsSpec = Field(default_factory=FaultsSpec)
    realism: RealismSpec = Field(default_factory=RealismSpec)
    world: dict[str, Any] = Field(default_factory=dict)
    _source: str = PrivateAttr(default="<scenario>")

    @model_validator(mode="after")
    def _unique_keys(self) -> Scenario:
        for attr in ("label", "api_key"):
            values = [getattr(k, attr) for k in self.keys]
            if len(values) != len(set(values)):
                raise ValueError(f"two keys have the same {attr}")
        return self

    @property
    def source(self) -> str:
        """Where the scenario came from (its file), for error messages."""
        return self._source

    @property
    def name(self) -> str:
        """The scenario's name (from [sim] name or the file name)."""
        return self.sim.name or "scenario"

    def with_first_key(self, api_key: str | None, api_secret: str | None) -> Scenario:
        """A copy whose first key has these credentials (a secret makes it an HMAC key)."""
        first = self.keys[0]
        update: dict[str, Any] = {}
        if api_key:
            update["api_key"] = api_key
        if api_secret:
            update.update(secret=api_secret, ed25519_public_key=None)
        keys = [first.model_copy(update=update), *self.keys[1:]]
        return self.model_copy(update={"keys": keys})


# --- loading ------------------------------------------------------------------------


def available() -> list[str]:
    """The names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """A scenario name (built in) or a path to a TOML file, as a path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise UnknownScenario(f"scenario file {path} does not exist")
        return path
    builtin = SCENARIO_DIR / f"{name_or_path}.toml"
    if not builtin.is_file():
        raise UnknownScenario(
            f"unknown scenario {str(name_or_path)!r}; available: {', '.join(available())}"
        )
    return builtin


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario by name or path."""
    path = resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    scenario = parse_scenario(data, source=str(path))
    if scenario.sim.name is None:
        sim = scenario.sim.model_copy(update={"name": path.stem})
        scenario = scenario.model_copy(update={"sim": sim})
    scenario._source = str(path)
    return scenario


def parse_scenario(data: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a decoded scenario; the error names the source, the key and the field."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe_errors(exc, source, data)) from None
    scenario._source = source
    return scenario


def describe_errors(exc: ValidationError, source: str, data: Mapping[str, Any] | None = None,
                    prefix: str = "") -> str:
    """One line per error: the source, the dotted place (with the key's label), the reason."""
    return "\n".join(
        f"{source}: {prefix}{_where(err['loc'], data or {})}: {err['msg']}" for err in exc.errors()
    )


_UNION_TAGS = frozenset({"registered", "unregistered", "flapping"})


def _where(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item not in _UNION_TAGS and "[" not in item:  # pydantic's union-member tags
            parts.append(f".{item}" if parts else item)
    text = "".join(parts) or "(top level)"
    if len(loc) >= 2 and loc[0] == "keys" and isinstance(loc[1], int):
        keys = data.get("keys")
        if isinstance(keys, list) and loc[1] < len(keys) and isinstance(keys[loc[1]], Mapping):
            label = keys[loc[1]].get("label")
            if label:
                text += f" (key {label!r})"
    return text
