"""`backtest --sweep`: a grid of variants of one config, ranked by a stated objective.

Syntax:
  --sweep [AD:]KEY=V1,V2,...
                          one axis; KEY is a strategy parameter (`step`, `params.step`) or a
                          guard (`floor`, `guards.floor`); AD (an ad's name) limits it to that
                          ad; repeat --sweep for more axes
  --objective "METRIC [subject to METRIC OP NUMBER[, ...]]"
                          METRIC one of OBJECTIVE_METRICS (higher is better, `min METRIC`
                          for lower), OP one of >= <= > <; e.g.
                          "rank1_share subject to margin>=0.30"
Every variant is validated as the config file would be; a bad key or value names it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from config.loader import AdLoadError, LoadedAd, LoadedConfig, load_ad
from config.models import AdConfig, Guards
from p2pbot.backtest.report import OBJECTIVE_METRICS, Metrics

MAX_VARIANTS = 200


class SweepError(ValueError):
    """A --sweep or --objective that cannot be used: the message says which and why."""


@dataclass(frozen=True)
class Axis:
    """One swept key and its values."""

    table: str  # params or guards
    key: str
    values: tuple[str, ...]
    ad: str | None = None  # only this ad (its name); None: every ad that has the key

    @property
    def name(self) -> str:
        """The axis as given on the command line (without the table)."""
        return f"{self.ad}:{self.key}" if self.ad else self.key


def parse_axis(text: str) -> Axis:
    """KEY=V1,V2,... as an axis; SweepError on anything else."""
    key, eq, values = text.partition("=")
    ad, colon, key = key.strip().rpartition(":")
    key = key.strip()
    if colon and not ad.strip():
        raise SweepError(f"--sweep {text!r}: name the ad before ':' (e.g. sell-usdt:floor=92,93)")
    if not eq or not key or not values.strip():
        raise SweepError(f"--sweep {text!r}: write KEY=V1,V2,... (e.g. step=0.01,0.02)")
    table, dot, name = key.partition(".")
    if not dot:
        table, name = ("guards" if key in Guards.model_fields else "params"), key
    if table not in ("params", "guards") or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SweepError(f"--sweep {text!r}: KEY is a strategy parameter (step, params.step) or a "
                         f"guard (floor, guards.floor)")
    vals = tuple(v.strip() for v in values.split(","))
    if any(not v for v in vals):
        raise SweepError(f"--sweep {text!r}: an empty value")
    return Axis(table, name, vals, ad.strip() or None)


@dataclass(frozen=True)
class Objective:
    """What to maximise (or minimise) and the conditions a variant must meet."""

    metric: str
    lower: bool  # minimise
    conditions: tuple[tuple[str, str, Decimal], ...]
    text: str

    def allows(self, m: Metrics) -> bool:
        """Whether `m` meets every condition."""
        return all(_compare(Decimal(str(m.value(k))), op, v) for k, op, v in self.conditions)

    def score(self, m: Metrics) -> float:
        """Higher is better."""
        value = m.value(self.metric)
        return -value if self.lower else value


def _compare(a: Decimal, op: str, b: Decimal) -> bool:
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]


_COND = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*(-?[0-9.]+)\s*$")


def parse_objective(text: str) -> Objective:
    """"[min] METRIC [subject to COND[, COND]]"; SweepError naming what is wrong."""
    head, _, tail = text.partition("subject to")
    words = head.split()
    lower = bool(words) and words[0] in ("min", "max") and words.pop(0) == "min"
    if len(words) != 1 or words[0] not in OBJECTIVE_METRICS:
        raise SweepError(f"--objective {text!r}: start with one metric of "
                         f"{', '.join(OBJECTIVE_METRICS)} (min METRIC to minimise)")
    conditions = []
    for part in [p for p in re.split(r",|\band\b", tail) if p.strip()] if tail else []:
        m = _COND.match(part)
        if m is None or m.group(1) not in OBJECTIVE_METRICS:
            raise SweepError(f"--objective: condition {part.strip()!r}: write METRIC>=NUMBER with "
                             f"METRIC one of {', '.join(OBJECTIVE_METRICS)}")
        try:
            conditions.append((m.group(1), m.group(2), Decimal(m.group(3))))
        except InvalidOperation:
            raise SweepError(f"--objective: {m.group(3)!r} is not a number") from None
    if tail and not conditions:
        raise SweepError(f"--objective {text!r}: nothing after 'subject to'")
    return Objective(words[0], lower, tuple(conditions), text.strip())


def variants(base: LoadedConfig, axes: Sequence[Axis]) -> list[tuple[str, LoadedConfig]]:
    """Every combination of the axes applied to every ad of `base`, validated."""
    combos = list(itertools.product(*(a.values for a in axes)))
    if len(combos) > MAX_VARIANTS:
        raise SweepError(f"--sweep: {len(combos)} variants; at most {MAX_VARIANTS}")
    for axis in axes:
        labels = [ad.label for ad in base.ads]
        if axis.ad is not None and axis.ad not in labels:
            raise SweepError(f"--sweep {axis.ad}:{axis.key}: no ad named {axis.ad!r} in "
                             f"{base.path} (its ads: {', '.join(labels)})")
        if axis.table == "params" and not any(_takes(ad, axis) for ad in base.ads):
            names = sorted({ad.strategy.name for ad in base.ads})
            raise SweepError(f"--sweep {axis.key}: no ad of {base.path} has a strategy with the "
                             f"parameter {axis.key!r} ({', '.join(names)})")
    out = []
    for combo in combos:
        name = " ".join(f"{a.name}={v}" for a, v in zip(axes, combo, strict=True))
        ads = tuple(_variant(base, ad.config, [(a, v) for a, v in zip(axes, combo, strict=True)
                                               if _takes(ad, a)], name) for ad in base.ads)
        loaded = [load_one(base, i, ad, name) for i, ad in enumerate(ads)]
        app = base.app.model_copy(update={"ads": ads})
        out.append((name, LoadedConfig(base.path, app, tuple(loaded))))
    return out


def _takes(ad: LoadedAd, axis: Axis) -> bool:
    """Whether the axis applies to this ad (a parameter its strategy has; every guard)."""
    if axis.ad is not None and axis.ad != ad.label:
        return False
    return axis.table == "guards" or axis.key in ad.strategy.Params.model_fields


def _variant(base: LoadedConfig, ad: AdConfig, changes: Sequence[tuple[Axis, str]],
             name: str) -> AdConfig:
    raw: dict[str, Any] = ad.model_dump(mode="json", exclude_none=True)
    raw["params"] = dict(ad.params)
    for axis, value in changes:
        raw.setdefault(axis.table, {})[axis.key] = typed(axis, value)
    try:
        return AdConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SweepError(f"--sweep {name}: {base.path}: [[ads]] {ad.label}: {where}: "
                         f"{err['msg']}") from None


def load_one(base: LoadedConfig, index: int, ad: AdConfig, name: str) -> Any:
    """The ad with its strategy and params validated, or SweepError naming the key."""
    try:
        return load_ad(index, ad)
    except AdLoadError as exc:
        said = "; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in exc.problems)
        raise SweepError(f"--sweep {name}: {base.path}: [[ads]] {ad.label}: {said}") from None


INTEGER_GUARDS = frozenset({"max_updates"})


def typed(axis: Axis, value: str) -> Any:
    """The value as the config file would hold it: a whole number for integer guards."""
    if axis.table == "guards" and axis.key in INTEGER_GUARDS and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def rank(objective: Objective, results: Sequence[Metrics]) -> list[Metrics]:
    """The variants that meet the conditions, best first."""
    ok = [m for m in results if objective.allows(m)]
    return sorted(ok, key=objective.score, reverse=True)


def snippet(axes: Sequence[Axis], best: str, base: LoadedConfig) -> str:
    """The best variant's swept keys as TOML to paste under each [[ads]] entry."""
    values = dict(part.split("=", 1) for part in best.split(" "))
    lines = [f"# best of the sweep for {base.path.name}"]
    for ad in sorted({a.ad for a in axes}, key=lambda x: x or ""):
        lines.append(f"# under [[ads]] name = \"{ad}\"" if ad else "# under each [[ads]] entry")
        for table in ("params", "guards"):
            keys = [a for a in axes if a.table == table and a.ad == ad]
            if keys:
                lines.append(f"[ads.{table}]")
                for a in keys:
                    v = typed(a, values[a.name])
                    lines.append(f"{a.key} = {v}" if isinstance(v, int) else f'{a.key} = "{v}"')
    return "\n".join(lines)
