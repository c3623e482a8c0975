"""The plugin loader: every way to name a strategy, and a precise message for every fault."""

from __future__ import annotations

import importlib.metadata
from decimal import Decimal
from typing import Any

import pytest

from strategies.base import Hold
from strategies.fixed import FixedParams
from strategies.loader import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    StrategyLoadError,
    StrategyParamsError,
    load_strategy,
    validate_params,
)
from strategies.undercut import Undercut, UndercutParams
from tests.plugins_fixture.market import ctx, own
from tests.plugins_fixture.plugins import Good, GoodParams

P = "tests.plugins_fixture.plugins"


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **registered: str) -> None:
    """Replace the installed entry points with `name=value` pairs in our group."""
    eps = importlib.metadata.EntryPoints(
        importlib.metadata.EntryPoint(name=name.rstrip("_"), value=value, group=ENTRY_POINT_GROUP)
        for name, value in registered.items()
    )

    def entry_points(**selection: Any) -> importlib.metadata.EntryPoints:
        assert selection == {"group": ENTRY_POINT_GROUP}
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_by_name(name: str) -> None:
    strategy = load_strategy(name)
    assert isinstance(strategy, BUILTINS[name]) and strategy.name == name


def test_module_and_class() -> None:
    strategy = load_strategy(f" {P}:Good ")
    assert isinstance(strategy, Good)
    assert strategy.decide(ctx(own()), GoodParams()) == Hold("good")


def test_dotted_attribute() -> None:
    assert isinstance(load_strategy(f"{P}:namespace.Inner"), Good)


def test_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, mine=f"{P}:Good")
    assert isinstance(load_strategy("mine"), Good)


def test_builtin_wins_over_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, undercut=f"{P}:Good")
    assert isinstance(load_strategy("undercut"), Undercut)


NOT_LOADED = [
    (f"{P}:NoParams", f"{P}:NoParams: has no 'Params' model"),
    (f"{P}:NoName", f"{P}:NoName: has no 'name' (a str)"),
    (f"{P}:NullName", f"{P}:NullName: 'name' must be a non-empty str, got None"),
    (f"{P}:EmptyName", f"{P}:EmptyName: 'name' must be a non-empty str, got ''"),
    (f"{P}:NoVersion",
     f"{P}:NoVersion: has no 'api_version' (this bot supports strategy API version 1)"),
    (f"{P}:FutureVersion",
     f"{P}:FutureVersion: built for strategy API version 2, this bot supports version 1"),
    (f"{P}:TextVersion", f"{P}:TextVersion: 'api_version' must be an int, got '1'"),
    (f"{P}:DictParams",
     f"{P}:DictParams: 'Params' must be a pydantic BaseModel subclass, got <class 'dict'>"),
    (f"{P}:DecideNotCallable", f"{P}:DecideNotCallable: has no callable 'decide'"),
    (f"{P}:NoDecide", f"{P}:NoDecide: has no callable 'decide'"),
    (f"{P}:Bare",
     f"{P}:Bare: has no 'name' (a str); has no 'api_version' (this bot supports strategy API "
     "version 1); has no 'Params' model; has no callable 'decide'"),
    (f"{P}:instance", f"{P}:instance: is a Good, not a class"),
    (f"{P}:NeedsArguments",
     f"{P}:NeedsArguments: could not be instantiated: TypeError: NeedsArguments.__init__() "
     "missing 1 required positional argument: 'client'"),
    (f"{P}:DecideTakesOnlyCtx",
     f"{P}:DecideTakesOnlyCtx: 'decide' must take (ctx, params), it takes (ctx: 'PricingContext')"
     " -> 'Decision'"),
    (f"{P}:Thing", f"{P}:Thing: 'Thing' not found in '{P}'"),
    ("my_pkg.mod:Thing", "my_pkg.mod:Thing: module 'my_pkg.mod' not found"),
    ("tests.plugins_fixture.nope:Thing",
     "tests.plugins_fixture.nope:Thing: module 'tests.plugins_fixture.nope' not found"),
    ("tests.plugins_fixture.needs_missing:X",
     "tests.plugins_fixture.needs_missing:X: module 'tests.plugins_fixture.needs_missing' failed "
     "to import: No module named 'p2pbot_no_such_dependency'"),
    ("tests.plugins_fixture.broken_import:X",
     "tests.plugins_fixture.broken_import:X: module 'tests.plugins_fixture.broken_import' failed "
     "to import: RuntimeError: boom at import"),
    ("mod:", "'mod:': expected 'module.path:ClassName'"),
    (":Thing", "':Thing': expected 'module.path:ClassName'"),
    ("a:b:c", "'a:b:c': expected 'module.path:ClassName'"),
]


@pytest.mark.parametrize(("spec", "message"), NOT_LOADED)
def test_bad_plugins_say_what_and_where(
    spec: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_entry_points(monkeypatch)
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy(spec)
    assert str(caught.value) == message


def test_unknown_name(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, other=f"{P}:Good", more=f"{P}:Good")
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy("undercat")
    assert str(caught.value) == (
        "unknown strategy 'undercat': not a built-in (fixed, follow_reference, undercut) nor an "
        f"entry point in '{ENTRY_POINT_GROUP}' (installed: more, other); "
        "name a class as 'module.path:ClassName'"
    )


def test_unknown_name_without_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch)
    with pytest.raises(StrategyLoadError, match=r"\(none installed\)"):
        load_strategy("undercat")


def test_entry_point_that_fails_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, broken="tests.plugins_fixture.broken_import:X")
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy("broken")
    assert str(caught.value) == (
        "entry point 'broken' (tests.plugins_fixture.broken_import:X): failed to load: "
        "RuntimeError: boom at import"
    )


def test_entry_point_that_is_a_bad_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, old=f"{P}:FutureVersion")
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy("old")
    assert str(caught.value) == (
        f"entry point 'old' ({P}:FutureVersion): "
        "built for strategy API version 2, this bot supports version 1"
    )


def test_entry_point_registered_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, twin=f"{P}:Good", twin_=f"{P}:NoParams")
    with pytest.raises(StrategyLoadError) as caught:
        load_strategy("twin")
    assert str(caught.value) == (
        f"strategy 'twin' is registered by several entry points: {P}:Good, {P}:NoParams"
    )


def test_entry_point_duplicates_with_one_target_are_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, twin=f"{P}:Good", twin_=f"{P}:Good")
    assert isinstance(load_strategy("twin"), Good)


# --- params ----------------------------------------------------------------------------------


def test_validate_params() -> None:
    params = validate_params(load_strategy("undercut"), {"step": 0.05, "target_rank": 2})
    assert params == UndercutParams(step=Decimal("0.05"), target_rank=2)
    assert validate_params(Undercut(), None) == UndercutParams()
    assert validate_params(load_strategy("fixed"), {"price": "92.50"}) == FixedParams(
        price=Decimal("92.50")
    )


BAD_PARAMS = [
    ("undercut", {"step": "0"}, ("step",), "undercut params: 'step': Input should be greater than 0"),
    ("undercut", {"stepp": "0.01"}, ("stepp",),
     "undercut params: 'stepp': Extra inputs are not permitted"),
    ("undercut", {"at_floor": "dig"}, ("at_floor",),
     "undercut params: 'at_floor': Input should be 'hold' or 'sit'"),
    ("fixed", {}, ("price",), "fixed params: 'price': Field required"),
    ("follow_reference", {"margin": "1", "ratio": "101"}, (),
     "follow_reference params: set exactly one of 'margin' or 'ratio'"),
]


@pytest.mark.parametrize(("name", "raw", "keys", "message"), BAD_PARAMS)
def test_bad_params_name_the_key(
    name: str, raw: dict[str, Any], keys: tuple[str, ...], message: str
) -> None:
    with pytest.raises(StrategyParamsError) as caught:
        validate_params(load_strategy(name), raw)
    assert str(caught.value) == message
    assert caught.value.keys == keys
    assert caught.value.strategy == name
