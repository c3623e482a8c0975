"""The strategy plugin API: what a strategy sees, what it returns, and the guard around it.

A strategy is a pure function from a `PricingContext` to a `Decision`: it never
does I/O, never sleeps and never reads the clock (`ctx.now` is the time). These
are plain frozen dataclasses, independent of the exchange's pydantic models;
the pricing engine maps exchange data into them and acts on the decision.
Every call into plugin code goes through `safe_decide`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol

from loguru import logger
from pydantic import BaseModel

API_VERSION = 1
"""The strategy API this bot implements; a plugin's `api_version` must equal it."""

PriceType = Literal["fixed", "floating"]
ReferenceSource = Literal["exchange", "derived"]
Relation = Literal["beat", "level"]
"""What a price keeps to the competitor a decision names: strictly ahead of it, or level with it."""


class Side(StrEnum):
    """The merchant's side of an ad; the one place that knows which way is "better".

    For a SELL ad (the merchant sells crypto) takers want the LOWEST price, so
    beating a competitor means going lower, towards the floor. For a BUY ad
    they want the HIGHEST price, so beating means going higher, towards the
    ceiling.
    """

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """The direction of "more attractive to takers": -1 for SELL (down), +1 for BUY (up)."""
        return -1 if self is Side.SELL else 1

    def ahead_by(self, a: Decimal, b: Decimal) -> Decimal:
        """How far price `a` is ahead of (better than) price `b`; negative when behind."""
        return (a - b) * self.sign

    def better(self, a: Decimal, b: Decimal) -> bool:
        """True when price `a` is strictly more attractive to takers than price `b`."""
        return a < b if self is Side.SELL else a > b  # ahead_by(a, b) > 0, without the arithmetic

    def beat(self, price: Decimal, step: Decimal) -> Decimal:
        """The price `step` ahead of `price` (SELL: lower, BUY: higher)."""
        return price + step * self.sign

    def sort_key(self, price: Decimal) -> Decimal:
        """A key that sorts prices best first for this side."""
        return price * self.sign * -1

    def limit(self, floor: Decimal | None, ceiling: Decimal | None) -> Decimal | None:
        """The bound that beating runs into: the floor for SELL, the ceiling for BUY."""
        return floor if self is Side.SELL else ceiling

    def cap(self, floor: Decimal | None, ceiling: Decimal | None) -> Decimal | None:
        """The bound on the profitable side: the ceiling for SELL, the floor for BUY."""
        return ceiling if self is Side.SELL else floor

    @property
    def limit_name(self) -> str:
        """What `limit()` is called in reasons: "floor" (SELL) or "ceiling" (BUY)."""
        return "floor" if self is Side.SELL else "ceiling"

    @property
    def cap_name(self) -> str:
        """What `cap()` is called in reasons: "ceiling" (SELL) or "floor" (BUY)."""
        return "ceiling" if self is Side.SELL else "floor"

    @property
    def ahead_word(self) -> str:
        """The preposition for "ahead of" in reasons: "below" (SELL) or "above" (BUY)."""
        return "below" if self is Side.SELL else "above"

    def keeps(self, relation: Relation, price: Decimal, target: Decimal) -> bool:
        """True when `price` is in `relation` to `target`: strictly ahead ("beat"), or equal ("level")."""
        return self.better(price, target) if relation == "beat" else price == target

    def position(self, price: Decimal, target: Decimal, who: str) -> str:
        """Where `price` stands against a competitor: "0.003 below 'alpha' (0.993)",
        "level with 'alpha' (0.993)" or "0.007 behind 'alpha' (0.993)"."""
        ahead = self.ahead_by(price, target)
        if ahead == 0:
            return f"level with {who} ({target})"
        word = self.ahead_word if ahead > 0 else "behind"
        return f"{abs(ahead)} {word} {who} ({target})"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _require_decimals(obj: object, *names: str, optional: tuple[str, ...] = ()) -> None:
    """Refuse floats (and anything else) where money goes: Decimal(float) is the classic bug."""
    for name in (*names, *optional):
        value = getattr(obj, name)
        if value is None and name in optional:
            continue
        if not isinstance(value, Decimal):
            raise TypeError(
                f"{type(obj).__name__}.{name} must be a Decimal, got {type(value).__name__}"
            )


@dataclass(frozen=True, kw_only=True)
class CompetitorAd:
    """A competitor's ad as a strategy sees it. `nickname` is display only: compare `user_no`."""

    adv_no: str
    user_no: str
    nickname: str
    price: Decimal
    min_amount: Decimal
    max_amount: Decimal
    available: Decimal
    pay_methods: frozenset[str] = frozenset()
    is_merchant: bool = False
    month_orders: int = 0
    completion_rate: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        _require_decimals(
            self, "price", "min_amount", "max_amount", "available", "completion_rate"
        )
        object.__setattr__(self, "pay_methods", frozenset(self.pay_methods))


_TICKS: dict[int, Decimal] = {}  # price_scale -> tick: read several times per decision


@dataclass(frozen=True, kw_only=True)
class OwnAd:
    """The merchant's own ad. Amounts are fiat limits; `available` is crypto."""

    adv_no: str
    side: Side
    asset: str
    fiat: str
    price: Decimal
    price_type: PriceType = "fixed"
    ratio: Decimal | None = None
    min_amount: Decimal
    max_amount: Decimal
    available: Decimal
    pay_methods: frozenset[str] = frozenset()
    price_scale: int = 2

    def __post_init__(self) -> None:
        _require_decimals(
            self, "price", "min_amount", "max_amount", "available", optional=("ratio",)
        )
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "pay_methods", frozenset(self.pay_methods))

    @property
    def tick(self) -> Decimal:
        """The smallest price increment at this ad's `price_scale` (0.01 for scale 2)."""
        tick = _TICKS.get(self.price_scale)
        if tick is None:
            tick = _TICKS[self.price_scale] = Decimal(1).scaleb(-self.price_scale)
        return tick

    def quantize(self, price: Decimal) -> Decimal:
        """`price` at this ad's `price_scale` (banker's rounding; the engine rounds for real)."""
        return price.quantize(self.tick)


@dataclass(frozen=True)
class Reference:
    """The reference price: from the exchange, or derived from the market while it is down.

    `age`: seconds since the exchange gave this value (0 for a derived one). `stale`: the last
    read failed and this is the last value read; a strategy may hold rather than follow it.
    """

    price: Decimal
    source: ReferenceSource = "exchange"
    age: float = 0.0
    stale: bool = False

    def __post_init__(self) -> None:
        _require_decimals(self, "price")


@dataclass(frozen=True, kw_only=True)
class PriceBand:
    """The prices the exchange accepts for this ad now, as the bot learned them from its refusals.

    `low` or `high` is None where nothing is known. `source` is "message" when a refusal
    named the bounds, "bisect" while the edge is being found between the last accepted
    and the refused price (then `high`/`low` is the next price to try, not the edge).
    The engine clamps to it anyway; a strategy may use it to explain a hold.
    """

    low: Decimal | None = None
    high: Decimal | None = None
    source: Literal["message", "bisect"] = "message"

    def __post_init__(self) -> None:
        _require_decimals(self, optional=("low", "high"))


RivalKind = Literal["bot", "decoy", "human", "unknown"]  # what a competitor profile says it is


@dataclass(frozen=True, kw_only=True)
class RivalProfile:
    """What the bot has learned about one competitor (by `user_no`) from the market it watched.

    `kind`: "bot" (answers our moves fast and often), "decoy" (limits or amount too small to
    fill a typical order), "human" (neither) or "unknown" (seen too few times). `floor` is the
    most attractive price it showed in the window: the LOWEST for a SELL-side market, the
    HIGHEST for a BUY-side one; `at_floor`: our ad has been past it for two snapshots in a
    row and it did not follow (for a bot: its price is its floor now). Counts
    (`snapshots`, `reprices`, `chances` = our moves it could answer, `answers`) are over the
    window; `answer_seconds` is the median time to answer, bounded by how often the market
    is read. Computed by bot.pricing.rivals.
    """

    user_no: str
    nickname: str = ""
    kind: RivalKind = "unknown"
    price: Decimal | None = None
    floor: Decimal | None = None
    at_floor: bool = False
    snapshots: int = 0
    near: int = 0
    top: int = 0
    reprices: int = 0
    reprices_per_hour: Decimal = Decimal(0)
    reprice_seconds: float | None = None
    median_step: Decimal | None = None
    chances: int = 0
    answers: int = 0
    answer_seconds: float | None = None
    decoy_signs: tuple[str, ...] = ()
    completion_rate: Decimal = Decimal(0)
    month_orders: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The profile with exact decimals as strings (for /api/status)."""
        return {f.name: (str(v) if isinstance(v, Decimal) else list(v) if isinstance(v, tuple)
                         else v) for f in fields(self) for v in (getattr(self, f.name),)}


@dataclass(frozen=True, slots=True)
class Move:
    """One of the ad's own applied price changes (the engine's record), oldest first."""

    at: float
    before: Decimal
    after: Decimal


@dataclass(frozen=True, kw_only=True)
class PricingContext:
    """Everything a strategy may look at for one decision about one ad.

    `competitors` are already filtered, sorted best first for the ad's side,
    with the merchant's own ads removed. `floor` and `ceiling` are the engine's
    absolute bounds (it clamps anyway), given so that a strategy can refuse to
    follow a competitor past them. `filtered_out` counts dropped ads by reason.
    `band` is the exchange's allowed price band as learned from its refusals (None
    while none is known); the engine clamps to it too. `rivals`: the profiles of this
    market's competitors by `user_no` (empty when none are known: a strategy must work
    without them). `moves`: the ad's own applied updates of the last hour (at most the last
    100), oldest first.
    """

    ad: OwnAd
    competitors: tuple[CompetitorAd, ...]
    now: float
    reference: Reference | None = None
    capabilities: frozenset[str] = frozenset()
    floor: Decimal | None = None
    ceiling: Decimal | None = None
    filtered_out: Mapping[str, int] = field(default_factory=dict, hash=False)
    band: PriceBand | None = None
    rivals: Mapping[str, RivalProfile] = field(default_factory=dict, hash=False)
    moves: tuple[Move, ...] = ()

    def __post_init__(self) -> None:
        _require_decimals(self, optional=("floor", "ceiling"))
        object.__setattr__(self, "competitors", tuple(self.competitors))
        object.__setattr__(self, "moves", tuple(self.moves))
        if isinstance(self.rivals, dict):  # a plain dict is copied; a read-only Mapping is kept
            object.__setattr__(self, "rivals", MappingProxyType(dict(self.rivals)))
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        object.__setattr__(self, "filtered_out", MappingProxyType(dict(self.filtered_out)))

    @property
    def side(self) -> Side:
        """The merchant's side of the ad."""
        return self.ad.side

    def __reduce__(self) -> tuple[Any, ...]:  # the read-only proxy cannot be pickled or copied
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["filtered_out"] = dict(self.filtered_out)
        values["rivals"] = dict(self.rivals)
        return (_rebuild_context, (values,))


def _rebuild_context(values: dict[str, Any]) -> PricingContext:
    return PricingContext(**values)


@dataclass(frozen=True)
class Reprice:
    """Set the ad's price to `price`; `competitor` is the adv_no of the ad followed, if any.

    `relation`, `target` and `target_name` say what the price means against the
    competitor the reason names (price `target`, called `target_name` in reasons):
    "beat" = strictly ahead of it, "level" = equal to it. The engine rounds the
    price to the ad's tick; with a relation it picks the side of the tick that
    keeps it whenever the floor and ceiling allow (a SELL price 0.992 against
    0.993 goes to 0.99, not 1.00), and it rewrites the reason when the price it
    sends is not `price`. Without one (None: no competitor named, as for `fixed`
    and `follow_reference`) it rounds towards the merchant's safe side.

    `ratio` (percent of the reference, as Binance writes floating ratios) says that the
    price is the reference times that ratio, whatever the reference: a floating ad is then
    set to that ratio, or left alone when it has it already, instead of to a ratio worked
    out from the price and a reference read at another moment (`follow_reference` with
    `ratio` sets it).
    """

    price: Decimal
    reason: str
    competitor: str | None = None
    relation: Relation | None = None
    target: Decimal | None = None
    target_name: str = ""
    ratio: Decimal | None = None

    def __post_init__(self) -> None:
        _require_decimals(self, "price", optional=("target", "ratio"))
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"Reprice.price must be a positive finite Decimal, got {self.price}")
        if (self.relation is None) != (self.target is None):
            raise ValueError("Reprice.relation and Reprice.target go together")
        if self.relation not in (None, "beat", "level"):
            raise ValueError(f"Reprice.relation must be 'beat', 'level' or None, got {self.relation!r}")


@dataclass(frozen=True)
class Hold:
    """Leave the ad's price as it is."""

    reason: str


Decision = Reprice | Hold


class Strategy(Protocol):
    """A pricing plugin: a class that declares itself and decides purely from its inputs."""

    name: ClassVar[str]
    api_version: ClassVar[int]
    Params: ClassVar[type[BaseModel]]

    def decide(self, ctx: PricingContext, params: Any) -> Decision:
        """Return what to do with `ctx.ad`; no I/O, no sleeping, no clock but `ctx.now`."""
        ...


_REPORTED: set[tuple[str, str]] = set()
"""(strategy, error kind) pairs already logged by this process."""

_MAX_DETAIL = 200


def _strategy_name(strategy: object) -> str:
    name = getattr(type(strategy), "name", None)
    return name if isinstance(name, str) and name else type(strategy).__name__


def _describe(exc: BaseException) -> str:
    try:
        detail = str(exc)
    except Exception:  # an exception whose __str__ fails still becomes a Hold
        detail = "<unprintable>"
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def _report_once(
    reported: set[tuple[str, str]], name: str, kind: str, text: str, exc: BaseException | None
) -> None:
    if (name, kind) in reported:
        return
    reported.add((name, kind))
    logger.opt(exception=exc).error(
        "strategy {!r} failed: {}; the ad holds its price (logged once per error type)", name, text
    )


_IMMUTABLE = (str, int, float, Decimal, bytes, Enum, type(None))


def _immutable(value: Any) -> bool:
    """True when nothing reachable from `value` can be changed: no copy is needed to hand it out."""
    if isinstance(value, _IMMUTABLE):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(v) for v in value)
    if isinstance(value, BaseModel) and value.model_config.get("frozen"):
        return all(_immutable(v) for v in value.__dict__.values()) and not value.model_extra
    return False


_CHECKED: dict[int, tuple[BaseModel, bool]] = {}  # id(params) -> (params, immutable); a few per ad


def _private(params: BaseModel) -> BaseModel:
    """The params for one call into plugin code: a deep copy, unless they cannot be changed anyway
    (a frozen model of immutable values, as the built-in strategies' are)."""
    seen = _CHECKED.get(id(params))
    if seen is None or seen[0] is not params:
        if len(_CHECKED) > 4096:  # reloads leave old params behind: forget them all, now and then
            _CHECKED.clear()
        seen = _CHECKED[id(params)] = (params, _immutable(params))
    return params if seen[1] else copy.deepcopy(params)


def safe_decide(
    strategy: Strategy,
    ctx: PricingContext,
    params: BaseModel,
    *,
    reported: set[tuple[str, str]] | None = None,
) -> Decision:
    """Call `strategy.decide`; any exception or non-Decision becomes a Hold, logged once.

    `reported` remembers which (strategy, error type) pairs were logged; it
    defaults to one set for the process. The strategy gets a deep copy of
    `params` so it cannot change the engine's (frozen params of immutable values
    are handed as they are: nothing in them can change); `ctx` is frozen already.
    """
    seen = _REPORTED if reported is None else reported
    name = _strategy_name(strategy)
    try:
        decision = strategy.decide(ctx, _private(params))
    except Exception as exc:  # plugin code: anything may come out, nothing may escape
        text = _describe(exc)
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        _report_once(seen, name, kind, text, exc)
        return Hold(f"strategy error: {text}")
    if not isinstance(decision, Reprice | Hold):
        text = f"decide returned {type(decision).__name__}, not Reprice or Hold"
        _report_once(seen, name, "bad return", text, None)
        return Hold(f"strategy error: {text}")
    return decision
