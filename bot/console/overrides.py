"""Console changes on top of the TOML file: applied, and validated, exactly like the file.

An override is stored (state.overrides) and laid over the config each time the config is
loaded or reloaded: an ad's `enabled` (a pause), its guards' `floor` and `ceiling`, its
strategy's `step`; the bot's `kill_switch` (pause all). The ad with the change is validated
again as a whole (config.models.AdConfig, then its strategy's params), so a value the file
could not hold is refused with the same reason. An override the file no longer admits (the
ad was removed, its new ceiling is below the stored floor) is skipped and said, not fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from loguru import logger
from pydantic import ValidationError

from config.loader import AdLoadError, LoadedAd, LoadedConfig, load_ad
from config.models import AdConfig, FieldProblem
from state.db import Store
from state.overrides import BOT_SCOPE, Override, OverrideStore

AD_KEYS: dict[str, tuple[str, ...]] = {
    "enabled": ("enabled",),
    "floor": ("guards", "floor"),
    "ceiling": ("guards", "ceiling"),
    "step": ("params", "step"),
}
"""What the console may change on an ad, and where it lives in `[[ads]]`."""
SETTABLE = ("floor", "ceiling", "step")
BOT_KEYS = ("kill_switch",)


class OverrideRefused(ValueError):
    """The change cannot be made: the message says why, as the config check would."""


def _problem(err: Any) -> str:
    error = (err.get("ctx") or {}).get("error")
    loc = tuple(err["loc"]) + (error.key if isinstance(error, FieldProblem) else ())
    where = ".".join(str(p) for p in loc)
    said = str(error) if error is not None else err["msg"]
    return f"{where}: {said}" if where else said


def decimal_text(value: str) -> Decimal:
    """A price or step as typed ("90.5"), or OverrideRefused."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise OverrideRefused(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise OverrideRefused(f"{value!r} is not a number")
    return number


def current(ad: LoadedAd, key: str) -> Any:
    """The value an ad has now for one of AD_KEYS (None when unset)."""
    node: Any = ad.config.model_dump()
    for part in AD_KEYS[key]:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def override_ad(ad: LoadedAd, changes: dict[str, str]) -> LoadedAd:
    """The ad with `changes` (key -> text) applied and validated, or OverrideRefused."""
    raw = ad.config.model_dump()
    for key, value in changes.items():
        if key not in AD_KEYS:
            raise OverrideRefused(f"'{key}' cannot be changed from the console")
        if key == "step" and "step" not in ad.strategy.Params.model_fields:
            raise OverrideRefused(f"the {ad.strategy.name} strategy of ad {ad.label} has no step")
        *parents, leaf = AD_KEYS[key]
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value == "true" if key == "enabled" else decimal_text(value)
    try:
        config = AdConfig.model_validate(raw)
    except ValidationError as exc:
        raise OverrideRefused("; ".join(_problem(e) for e in exc.errors())) from None
    try:
        return load_ad(ad.index, config)
    except AdLoadError as exc:
        raise OverrideRefused("; ".join(f"{'.'.join(map(str, loc))}: {msg}"
                                        for loc, msg in exc.problems)) from None


def apply_overrides(loaded: LoadedConfig, overrides: Iterable[Override]
                    ) -> tuple[LoadedConfig, list[str]]:
    """The config with every override laid over it, and a line for each one skipped."""
    rows = list(overrides)
    problems: list[str] = []
    app = loaded.app
    for o in rows:
        if o.scope == BOT_SCOPE and o.key == "kill_switch":
            app = app.model_copy(update={"bot": app.bot.model_copy(
                update={"kill_switch": o.value == "true"})})
    ads = list(loaded.ads)
    known = {ad.config.selector for ad in ads}
    for i, ad in enumerate(ads):
        changes = {o.key: o.value for o in rows if o.scope == ad.config.selector}
        if not changes:
            continue
        try:
            ads[i] = override_ad(ad, changes)
        except OverrideRefused as exc:
            problems.append(f"ad {ad.label}: the console's changes {describe_changes(changes)} "
                            f"are not applied: {exc}")
    for scope in sorted({o.scope for o in rows} - known - {BOT_SCOPE}):
        problems.append(f"the console's changes for {scope} are not applied: no such ad in the "
                        "file (/clear forgets them)")
    app = app.model_copy(update={"ads": tuple(ad.config for ad in ads)})
    return LoadedConfig(loaded.path, app, tuple(ads)), problems


def describe_changes(changes: dict[str, str]) -> str:
    """`floor = 90.5, enabled = false` for messages."""
    return ", ".join(f"{k} = {v}" for k, v in sorted(changes.items()))


def describe(rows: Sequence[Override], loaded: LoadedConfig) -> list[str]:
    """One line per override, naming the ad by its label: for check-config, /overrides."""
    labels = {ad.config.selector: ad.label for ad in loaded.ads}
    lines = []
    for o in rows:
        who = "the bot" if o.scope == BOT_SCOPE else f"ad {labels.get(o.scope, o.scope)}"
        by = f" (by {o.set_by})" if o.set_by else ""
        lines.append(f"{who}: {o.key} = {o.value}{by}")
    return lines


async def overlay(store: Store, loaded: LoadedConfig) -> LoadedConfig:
    """The config the bot runs: the file and the console's stored overrides (skips logged)."""
    rows = await OverrideStore(store).all()
    if not rows:
        return loaded
    merged, problems = apply_overrides(loaded, rows)
    for line in problems:
        logger.warning("{}", line)
    logger.info("console overrides on top of {}: {}", loaded.path,
                "; ".join(describe(rows, loaded)))
    return merged
