"""Read the TOML file into an AppConfig and load every ad's strategy; never sends a request.

Every problem becomes one line that names the file, the table and the key:
`config/x.toml: [[ads]] #2 "buy-usdt" → guards.floor: Input should be a valid decimal`.
TOML floats are parsed as `Decimal`, so `floor = 90.10` is exactly Decimal("90.10").
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.models import AdConfig, AppConfig, FieldProblem, show_value
from strategies.base import Strategy
from strategies.loader import (
    StrategyLoadError,
    StrategyParamsError,
    load_strategy,
    validate_params,
)

Loc = tuple[str | int, ...]

SECRETS_IN_ENV = {
    "telegram_token": "P2PBOT_TELEGRAM_TOKEN",
    "api_key": "P2PBOT_API_KEY",
    "api_secret": "P2PBOT_API_SECRET",
    "secret": "P2PBOT_API_SECRET",
    "private_key": "P2PBOT_PRIVATE_KEY_FILE",
    "private_key_password": "P2PBOT_PRIVATE_KEY_PASSWORD",
}
"""Keys someone may try to put in the file, and the variable that holds them instead."""


class ConfigFileError(Exception):
    """The file is missing, not TOML, or invalid; `problems` has one line per fault.

    Every line names the file, the table and the key. The bot exits with
    status 2 before sending any request.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class LoadedAd:
    """One `[[ads]]` entry with its strategy loaded and its params validated."""

    index: int  # 0-based position in the file; messages say #index+1
    config: AdConfig
    strategy: Strategy
    params: BaseModel

    @property
    def label(self) -> str:
        """The ad's name, else its selector."""
        return self.config.label


@dataclass(frozen=True)
class LoadedConfig:
    """The validated file: the models, and per ad the strategy instance and its params."""

    path: Path
    app: AppConfig
    ads: tuple[LoadedAd, ...]


def load_config(path: Path) -> LoadedConfig:
    """Read, validate and resolve `path`; raises ConfigFileError naming file, table and key."""
    raw = read_toml(path)
    try:
        app = AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigFileError([describe(path, raw, err) for err in exc.errors()]) from None
    problems: list[str] = []
    ads: list[LoadedAd] = []
    for i, ad in enumerate(app.ads):
        try:
            ads.append(load_ad(i, ad))
        except AdLoadError as exc:
            problems += [_line(path, raw, ("ads", i, *loc), msg) for loc, msg in exc.problems]
    if problems:
        raise ConfigFileError(problems)
    return LoadedConfig(path, app, tuple(ads))


class AdLoadError(Exception):
    """An ad's strategy did not load or its params did not validate: (location, message) pairs."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(msg for _, msg in self.problems))


def load_ad(index: int, ad: AdConfig) -> LoadedAd:
    """The ad with its strategy instance and validated params, or AdLoadError."""
    try:
        strategy = load_strategy(ad.strategy)
    except StrategyLoadError as exc:
        raise AdLoadError([(("strategy",), str(exc))]) from exc
    try:
        params = validate_params(strategy, ad.params)
    except StrategyParamsError as exc:
        raise AdLoadError([_param_problem(strategy, k, m) for k, m in exc.problems]) from exc
    return LoadedAd(index, ad, strategy, params)


def _param_problem(strategy: Strategy, key: str, message: str) -> tuple[Loc, str]:
    loc: Loc = ("params", *_split(key))
    if message == "Extra inputs are not permitted" and len(loc) == 2:
        allowed = list(strategy.Params.model_fields)
        close = difflib.get_close_matches(str(loc[1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        message = f"unknown parameter of {strategy.name} ({hint}allowed: {', '.join(allowed)})"
    return loc, message


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file (floats as Decimal), or ConfigFileError for a missing or malformed one."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigFileError(
            [f"{path}: no such file (pass --config PATH or set P2PBOT_CONFIG)"]
        ) from None
    except IsADirectoryError:
        raise ConfigFileError([f"{path}: is a directory, not a TOML file"]) from None
    except OSError as exc:
        raise ConfigFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError([f"{path}: {_syntax(str(exc))}"]) from None


_AT = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def _syntax(message: str) -> str:
    """'Invalid value (at line 3, column 7)' as 'line 3, column 7: TOML syntax error: Invalid value'."""
    m = _AT.match(message)
    if m is None:
        return f"TOML syntax error: {message}"
    return f"line {m['line']}, column {m['col']}: TOML syntax error: {m['what']}"


# --- turning a pydantic error into one line ---------------------------------------------


def describe(path: Path, raw: Mapping[str, Any], err: ErrorDetails) -> str:
    """One pydantic error as 'FILE: TABLE → KEY: problem'."""
    loc: Loc = tuple(err["loc"])
    error = (err.get("ctx") or {}).get("error")
    if isinstance(error, FieldProblem):
        return _line(path, raw, loc + error.key, str(error))
    if err["type"] == "extra_forbidden":
        return _line(path, raw, loc, _unknown(loc))
    return _line(path, raw, loc, _message(err))


_SHAPES = {"model_type": "a table", "dict_type": "a table", "model_attributes_type": "a table",
           "tuple_type": "an array", "list_type": "an array"}


def _message(err: ErrorDetails) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return "missing (required)"
    error = (err.get("ctx") or {}).get("error")
    if kind == "value_error" and error is not None:
        return str(error)
    msg = f"should be {_SHAPES[kind]}" if kind in _SHAPES else err["msg"]
    if kind in _SHAPES and err["loc"] == ("ads",):
        msg = "should be an array of tables: write each ad as [[ads]]"
    if kind in _SHAPES or kind in ("enum", "literal_error") or kind.endswith(("_type", "_parsing")):
        return f"{msg}, got {show_value(value)}"
    return msg


def _unknown(loc: Loc) -> str:
    key, model = loc[-1], _model_at(loc[:-1])
    if isinstance(key, str) and key in SECRETS_IN_ENV:
        return f"secrets never go in this file: set {SECRETS_IN_ENV[key]} in the environment"
    if model is None:
        return "unknown key"
    word = getattr(model, "unknown_word", "key")
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {word} ({hint}allowed: {', '.join(allowed)})"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class validating the value at `loc`, following field annotations."""
    current: Any = AppConfig
    for part in loc:
        current = _step(_strip_optional(current), part)
        if current is None:
            return None
    current = _strip_optional(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _step(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else field.annotation
    origin = get_origin(annotation)
    if origin in (tuple, list) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict:
        return get_args(annotation)[1]
    return None


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _line(path: Path, raw: Mapping[str, Any], loc: Loc, problem: str) -> str:
    """'FILE: TABLE → KEY: problem' for a location in the file."""
    table, key = where(raw, loc)
    if not table:
        return f"{path}: {key}: {problem}" if key else f"{path}: {problem}"
    return f"{path}: {table} → {key}: {problem}" if key else f"{path}: {table}: {problem}"


def where(raw: Mapping[str, Any], loc: Loc) -> tuple[str, str]:
    """The TOML table header and the dotted key (within it) that `loc` points at."""
    if not loc:
        return "", ""
    if loc[0] == "ads" and len(loc) >= 2 and isinstance(loc[1], int):
        return _ad_header(raw, loc[1]), _dotted(loc[2:])
    if len(loc) == 1:
        return "", _dotted(loc)
    node: Any = raw.get(str(loc[0]))
    depth = 1
    while depth < len(loc) - 1 and isinstance(node, dict) and isinstance(node.get(loc[depth]), dict):
        node = node[loc[depth]]
        depth += 1
    return f"[{_dotted(loc[:depth])}]", _dotted(loc[depth:])


def _ad_header(raw: Mapping[str, Any], index: int) -> str:
    ads = raw.get("ads")
    entry = ads[index] if isinstance(ads, list) and index < len(ads) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    return f'[[ads]] #{index + 1} "{name}"' if isinstance(name, str) and name else f"[[ads]] #{index + 1}"


def _dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _split(key: str) -> Loc:
    """A strategies.loader params key ('a.0.b') back into a location; '' is the table itself."""
    return tuple(int(p) if p.isdigit() else p for p in key.split(".")) if key else ()
