"""The plugin API: sides, the data a strategy sees, and the guard around every call."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from loguru import logger
from pydantic import BaseModel

from strategies.base import (
    CompetitorAd,
    Decision,
    Hold,
    PricingContext,
    Reference,
    Reprice,
    Side,
    safe_decide,
)
from tests.plugins_fixture.market import D, comp, ctx, own


@pytest.mark.parametrize(
    ("side", "better", "beaten", "limit", "cap", "words"),
    [
        (Side.SELL, ("92.39", "92.40"), "92.39", "floor", "ceiling", "below"),
        (Side.BUY, ("92.41", "92.40"), "92.41", "ceiling", "floor", "above"),
    ],
)
def test_side_direction(
    side: Side, better: tuple[str, str], beaten: str, limit: str, cap: str, words: str
) -> None:
    a, b = D(better[0]), D(better[1])
    assert side.better(a, b) and not side.better(b, a) and not side.better(a, a)
    assert side.ahead_by(a, b) == D("0.01") and side.ahead_by(b, a) == D("-0.01")
    assert side.beat(D("92.40"), D("0.01")) == D(beaten)
    assert side.limit(D("1"), D("2")) == (D("1") if limit == "floor" else D("2"))
    assert side.cap(D("1"), D("2")) == (D("2") if cap == "ceiling" else D("1"))
    assert (side.limit_name, side.cap_name, side.ahead_word) == (limit, cap, words)
    assert sorted([b, a], key=side.sort_key) == [a, b]


def test_side_is_a_str_enum() -> None:
    assert Side("SELL") is Side.SELL and Side.BUY == "BUY"
    assert own("BUY").side is Side.BUY


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Reprice(92.4, "x"), id="reprice-float"),  # type: ignore[arg-type]
        pytest.param(lambda: Reference(92.4), id="reference-float"),  # type: ignore[arg-type]
        pytest.param(
            lambda: CompetitorAd(
                adv_no="1", user_no="s", nickname="n", price=92.4,  # type: ignore[arg-type]
                min_amount=D("1"), max_amount=D("2"), available=D("3"),
            ),
            id="competitor-float",
        ),
        pytest.param(
            lambda: PricingContext(
                ad=own(), competitors=(), now=0.0, floor=90.0  # type: ignore[arg-type]
            ),
            id="context-float-floor",
        ),
    ],
)
def test_money_must_be_decimal(build: Any) -> None:
    with pytest.raises(TypeError, match="must be a Decimal, got float"):
        build()


@pytest.mark.parametrize("price", ["0", "-1", "NaN", "Infinity"])
def test_reprice_price_must_be_positive_and_finite(price: str) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        Reprice(Decimal(price), "x")


def test_context_is_read_only() -> None:
    context = PricingContext(
        ad=own(), competitors=[comp("alpha", "92.40")],  # type: ignore[arg-type]
        now=1.0, filtered_out={"own": 1},
    )
    assert isinstance(context.competitors, tuple)
    with pytest.raises(FrozenInstanceError):
        context.now = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        context.filtered_out["own"] = 5  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        context.ad.price = D("1")  # type: ignore[misc]


def test_context_copies_and_pickles() -> None:
    context = ctx(own(), [comp("alpha", "92.40")], filtered_out={"own": 1}, floor="90.00")
    for clone in (copy.deepcopy(context), pickle.loads(pickle.dumps(context))):
        assert clone == context
        with pytest.raises(TypeError):
            clone.filtered_out["own"] = 5  # type: ignore[index]


def test_own_ad_tick_and_quantize() -> None:
    ad = own(price="93.00")
    assert ad.tick == D("0.01")
    assert ad.quantize(D("93.8875")) == D("93.89")


# --- safe_decide -----------------------------------------------------------------------------


class Params(BaseModel):
    """Mutable on purpose: a plugin must not be able to change the engine's copy."""

    seen: list[str] = []


class Crasher:
    name: ClassVar[str] = "crasher"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = Params
    error: ClassVar[type[Exception]] = ZeroDivisionError

    def decide(self, ctx: PricingContext, params: Params) -> Decision:
        raise self.error("boom")


class Returner:
    name: ClassVar[str] = "returner"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = Params

    def __init__(self, value: Any) -> None:
        self.value = value

    def decide(self, ctx: PricingContext, params: Params) -> Any:
        params.seen.append("mutated")
        return self.value


@pytest.fixture
def errors() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lines.append, level="ERROR", format="{message}")
    yield lines
    logger.remove(handler)


def test_crash_becomes_hold_logged_once(errors: list[str]) -> None:
    reported: set[tuple[str, str]] = set()
    for _ in range(3):
        decision = safe_decide(Crasher(), ctx(own()), Params(), reported=reported)
        assert decision == Hold("strategy error: ZeroDivisionError: boom")
    assert len(errors) == 1
    assert errors[0].startswith("strategy 'crasher' failed: ZeroDivisionError: boom")
    assert "Traceback" in errors[0]


def test_each_error_type_is_logged_once(errors: list[str]) -> None:
    reported: set[tuple[str, str]] = set()

    class KeyCrasher(Crasher):
        error = KeyError

    for strategy in (Crasher(), KeyCrasher(), Crasher(), KeyCrasher()):
        safe_decide(strategy, ctx(own()), Params(), reported=reported)
    assert len(errors) == 2


def test_long_error_messages_are_cut() -> None:
    class Verbose(Crasher):
        error = ValueError

        def decide(self, ctx: PricingContext, params: Params) -> Decision:
            raise ValueError("x" * 1000)

    decision = safe_decide(Verbose(), ctx(own()), Params(), reported=set())
    assert isinstance(decision, Hold) and len(decision.reason) < 250


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"price": "92.40"}, Hold("strategy error: decide returned dict, not Reprice or Hold")),
        (None, Hold("strategy error: decide returned NoneType, not Reprice or Hold")),
        (Hold("fine"), Hold("fine")),
        (Reprice(D("92.40"), "fine"), Reprice(D("92.40"), "fine")),
    ],
)
def test_return_values(value: Any, expected: Decision, errors: list[str]) -> None:
    params = Params()
    assert safe_decide(Returner(value), ctx(own()), params, reported=set()) == expected
    assert params.seen == []  # the strategy got a copy
    assert len(errors) == (0 if expected == value else 1)


def test_float_price_in_plugin_becomes_hold() -> None:
    class FloatPricer(Crasher):
        def decide(self, ctx: PricingContext, params: Params) -> Decision:
            return Reprice(92.4, "float")  # type: ignore[arg-type]

    decision = safe_decide(FloatPricer(), ctx(own()), Params(), reported=set())
    assert decision == Hold("strategy error: TypeError: Reprice.price must be a Decimal, got float")


def test_cancellation_is_not_swallowed() -> None:
    class Cancelled(Crasher):
        def decide(self, ctx: PricingContext, params: Params) -> Decision:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        safe_decide(Cancelled(), ctx(own()), Params(), reported=set())


class _Seen:
    """Records the params object each call is handed."""

    name: ClassVar[str] = "seen"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = BaseModel

    def __init__(self) -> None:
        self.got: list[Any] = []

    def decide(self, c: Any, params: Any) -> Decision:
        self.got.append(params)
        return Hold("seen")


class _FrozenParams(BaseModel):
    model_config = {"frozen": True}
    step: Decimal = Decimal("0.01")
    names: frozenset[str] = frozenset({"a"})
    mode: str = "hold"


class _FrozenWithList(BaseModel):
    model_config = {"frozen": True}
    steps: list[Decimal] = [Decimal("0.01")]


def test_frozen_params_of_immutable_values_are_handed_as_they_are_mutable_ones_copied() -> None:
    strategy = _Seen()
    frozen, with_list, mutable = _FrozenParams(), _FrozenWithList(), Params()
    for params in (frozen, with_list, mutable):
        safe_decide(strategy, ctx(own()), params, reported=set())
    assert strategy.got[0] is frozen  # nothing in it can change: no deep copy per decision
    assert strategy.got[1] is not with_list and strategy.got[1] == with_list  # its list could
    assert strategy.got[2] is not mutable
