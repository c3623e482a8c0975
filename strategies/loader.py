"""Strategy plugins: turn `strategy = "..."` from the config into a checked instance.

A spec is a built-in name (`undercut`), a class as `module.path:ClassName`, or
a name registered under the entry point group `p2pbot.strategies`. A plugin
declares itself: `name` (str), `api_version` (int, equal to `API_VERSION`),
`Params` (a pydantic model) and a callable `decide(ctx, params)`. Anything
wrong is a `StrategyLoadError` that says what and where.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from strategies.base import API_VERSION, Strategy
from strategies.fixed import Fixed
from strategies.follow_reference import FollowReference
from strategies.undercut import Undercut

ENTRY_POINT_GROUP = "p2pbot.strategies"

BUILTINS: dict[str, type] = {cls.name: cls for cls in (Undercut, FollowReference, Fixed)}
"""The built-in strategies by name; a built-in name wins over an entry point of the same name."""

_MISSING = object()


class StrategyLoadError(Exception):
    """A strategy spec names nothing usable.

    The config check reports the message (which names the spec and the fault)
    and the bot exits with status 2 before any request is sent.
    """


class StrategyParamsError(StrategyLoadError):
    """An ad's strategy params do not validate; same reaction as `StrategyLoadError`.

    `problems` holds (key, message) pairs; the key is "" for a rule across keys.
    """

    def __init__(self, strategy: str, problems: Sequence[tuple[str, str]]) -> None:
        self.strategy = strategy
        self.problems = tuple(problems)
        said = "; ".join(f"'{key}': {msg}" if key else msg for key, msg in self.problems)
        super().__init__(f"{strategy} params: {said}")

    @property
    def keys(self) -> tuple[str, ...]:
        """The params keys at fault, in pydantic's order."""
        return tuple(key for key, _ in self.problems if key)


def load_strategy(spec: str) -> Strategy:
    """A checked instance of the strategy that `spec` names (built-in, module:Class, entry point)."""
    spec = spec.strip()
    obj, where = _resolve(spec)
    cls = check_plugin(obj, where)
    try:
        instance = cls()
    except Exception as exc:
        raise StrategyLoadError(f"{where}: could not be instantiated: {_exc_text(exc)}") from exc
    _check_decide_signature(instance, where)
    return instance


def validate_params(strategy: Strategy | type[Strategy], raw: Mapping[str, Any] | None) -> BaseModel:
    """`raw` (the ad's params table) validated into the strategy's `Params` model."""
    try:
        return strategy.Params.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        problems = [(_loc(err["loc"]), _msg(err["msg"])) for err in exc.errors()]
        raise StrategyParamsError(strategy.name, problems) from exc


def check_plugin(obj: object, where: str) -> type[Strategy]:
    """`obj` as a strategy class, or StrategyLoadError naming every missing declaration."""
    if not isinstance(obj, type):
        raise StrategyLoadError(f"{where}: is a {type(obj).__name__}, not a class")
    problems = [problem for check in _CHECKS if (problem := check(obj))]
    if problems:
        raise StrategyLoadError(f"{where}: {'; '.join(problems)}")
    return cast("type[Strategy]", obj)


def _resolve(spec: str) -> tuple[object, str]:
    """The object a spec names, and how to name the place it came from in messages."""
    if ":" in spec:
        return _import_object(spec), spec
    if spec in BUILTINS:
        return BUILTINS[spec], spec
    return _from_entry_point(spec)


def _import_object(spec: str) -> object:
    """The attribute named by 'module.path:Name' (Name may be dotted)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or ":" in attr:
        raise StrategyLoadError(f"'{spec}': expected 'module.path:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(f"{missing}."):
            raise StrategyLoadError(f"{spec}: module '{module_name}' not found") from exc
        raise StrategyLoadError(f"{spec}: module '{module_name}' failed to import: {exc}") from exc
    except Exception as exc:  # plugin code runs on import: anything may come out
        raise StrategyLoadError(
            f"{spec}: module '{module_name}' failed to import: {_exc_text(exc)}"
        ) from exc
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            raise StrategyLoadError(f"{spec}: '{attr}' not found in '{module_name}'")
    return obj


def _from_entry_point(name: str) -> tuple[object, str]:
    """The object registered as `name` under ENTRY_POINT_GROUP."""
    registered = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    found = {ep.value: ep for ep in registered if ep.name == name}
    if not found:
        names = sorted({ep.name for ep in registered})
        installed = f" (installed: {', '.join(names)})" if names else " (none installed)"
        raise StrategyLoadError(
            f"unknown strategy '{name}': not a built-in ({', '.join(sorted(BUILTINS))}) nor an "
            f"entry point in '{ENTRY_POINT_GROUP}'{installed}; "
            "name a class as 'module.path:ClassName'"
        )
    if len(found) > 1:
        raise StrategyLoadError(
            f"strategy '{name}' is registered by several entry points: {', '.join(sorted(found))}"
        )
    ep = next(iter(found.values()))
    where = f"entry point '{name}' ({ep.value})"
    try:
        return ep.load(), where
    except Exception as exc:  # plugin code runs on import
        raise StrategyLoadError(f"{where}: failed to load: {_exc_text(exc)}") from exc


def _check_name(cls: type) -> str | None:
    name = getattr(cls, "name", _MISSING)
    if name is _MISSING:
        return "has no 'name' (a str)"
    if not isinstance(name, str) or not name:
        return f"'name' must be a non-empty str, got {name!r}"
    return None


def _check_api_version(cls: type) -> str | None:
    version = getattr(cls, "api_version", _MISSING)
    if version is _MISSING:
        return f"has no 'api_version' (this bot supports strategy API version {API_VERSION})"
    if not isinstance(version, int) or isinstance(version, bool):
        return f"'api_version' must be an int, got {version!r}"
    if version != API_VERSION:
        return (
            f"built for strategy API version {version}, "
            f"this bot supports version {API_VERSION}"
        )
    return None


def _check_params(cls: type) -> str | None:
    params = getattr(cls, "Params", _MISSING)
    if params is _MISSING:
        return "has no 'Params' model"
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        return f"'Params' must be a pydantic BaseModel subclass, got {params!r}"
    return None


def _check_decide(cls: type) -> str | None:
    if not callable(getattr(cls, "decide", None)):
        return "has no callable 'decide'"
    return None


_CHECKS: tuple[Callable[[type], str | None], ...] = (
    _check_name,
    _check_api_version,
    _check_params,
    _check_decide,
)


def _check_decide_signature(instance: Strategy, where: str) -> None:
    """`instance.decide` must accept (ctx, params)."""
    try:
        signature = inspect.signature(instance.decide)
    except (TypeError, ValueError):  # no signature to inspect (a builtin): trust it
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise StrategyLoadError(
            f"{where}: 'decide' must take (ctx, params), it takes {signature}"
        ) from None


def _loc(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _msg(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
