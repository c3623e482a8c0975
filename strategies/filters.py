"""Competitor filters: which ads in the market count as competition for one of ours.

The rules are a table (`RULES`), checked in order; an ad dropped by a rule is
counted once, under the first rule that drops it, so the counts add up to the
number of ads dropped. Users are matched by id (`user_no`), never by nickname:
a nickname is display only, and two advertisers can show the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from strategies.base import CompetitorAd, OwnAd

ZERO = Decimal(0)


class CompetitorFilters(BaseModel):
    """An ad's competitor filters (its `filters` TOML table).

    Every rule is off by default except `overlap_amount` and `pay_methods = "own"`:
    an ad that no taker of ours could take instead of ours is not competition.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    overlap_amount: bool = True
    """Keep only ads whose [min, max] fiat limits overlap ours (bounds inclusive)."""
    min_available: Decimal = Field(ZERO, ge=0)
    """Drop ads with less than this much crypto available; 0 = off."""
    pay_methods: Literal["own", "any"] | frozenset[str] = "own"
    """Payment method identifiers a competitor must share at least one of: "own" = our ad's
    (no filter when our ad lists none), "any" = no filter, or a list such as ["Wise", "BANK"]."""
    min_completion_rate: Decimal = Field(ZERO, ge=0, le=1)
    """Drop advertisers whose 30-day completion rate is below this (a fraction, 0.95 = 95%)."""
    min_month_orders: int = Field(0, ge=0)
    """Drop advertisers with fewer orders than this in the last 30 days."""
    merchants_only: bool = False
    """Keep only verified merchants."""
    block_users: frozenset[str] = frozenset()
    """User ids (`userNo`, "s" + 32 hex) to ignore. Ids, not nicknames: nicknames are display only."""
    allow_users: frozenset[str] = frozenset()
    """When not empty, only these user ids count as competitors; `block_users` still wins."""
    decoy_max_amount: Decimal = Field(ZERO, ge=0)
    """Decoys: drop ads whose max limit (fiat) is below this, e.g. a 500-limit bait at the top; 0 = off."""
    decoy_min_available: Decimal = Field(ZERO, ge=0)
    """Decoys: drop ads whose available crypto is worth less than this much fiat at their price; 0 = off."""

    @field_validator("pay_methods", mode="before")
    @classmethod
    def _pay_methods_shape(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("own", "any"):
            raise ValueError(f'expected "own", "any" or a list of identifiers, got {value!r}')
        return value

    def apply(
        self, ads: Iterable[CompetitorAd], own: OwnAd, own_ids: Iterable[str] = (),
        *, screened: Sequence[str | None] | None = None, presorted: bool = False,
    ) -> FilterResult:
        """Drop own ads and ads failing a rule; the rest sorted best first for `own.side`.

        An ad is ours when its adv_no is `own.adv_no` or in `own_ids`, or its
        user_no is in `own_ids` (ad numbers and user numbers never collide).
        `screened` is `self.screen(ads)` when the caller has it (the engine screens a
        snapshot once for every ad sharing these filters); `presorted` says `ads` are
        already sorted best first for `own.side` (stably), so the sort is skipped.
        """
        ads = ads if isinstance(ads, Sequence) else tuple(ads)
        ids: frozenset[str] = own_ids if isinstance(own_ids, frozenset) else frozenset(own_ids)
        if screened is None:
            screened = self.screen(ads, ids)
        scope = _Scope(own, ids, _methods_for(self, own))
        late = _active(self)[1]
        kept: list[CompetitorAd] = []
        dropped: dict[str, int] = {}
        mine = own.adv_no
        for ad, reason in zip(ads, screened, strict=True):
            # the rules in table order: `own` first, the screened ones, then the per-ad ones
            if ad.adv_no == mine:
                reason = "own"
            elif reason is None:
                for rule in late:
                    if rule.drops(self, ad, scope):
                        reason = rule.reason
                        break
                else:
                    kept.append(ad)
                    continue
            dropped[reason] = dropped.get(reason, 0) + 1
        if not presorted:  # stable: ads at the same price keep the exchange's order
            kept.sort(key=lambda ad: own.side.sort_key(ad.price))
        return FilterResult(tuple(kept), dropped)

    def screen(self, ads: Sequence[CompetitorAd], own_ids: frozenset[str] | set[str] = frozenset()
               ) -> tuple[str | None, ...]:
        """Per ad, the first rule that drops it among those that do not depend on which of our
        ads it competes with (ours by `own_ids`, users, stats, decoys, amounts available); None
        when none does. The same for all our ads with these filters in one market snapshot, so
        the engine screens a snapshot once per filters table."""
        rules = _active(self)[0]
        found: list[str | None] = []
        for ad in ads:  # ours by ids only (`_is_own` without `own`), then the first rule
            if ad.adv_no in own_ids or ad.user_no in own_ids:
                found.append("own")
                continue
            for rule in rules:
                if rule.drops(self, ad, None):
                    found.append(rule.reason)
                    break
            else:
                found.append(None)
        return tuple(found)


@dataclass(frozen=True)
class FilterResult:
    """The competitors kept (best first) and how many ads each rule dropped."""

    kept: tuple[CompetitorAd, ...]
    dropped: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class _Scope:
    own: OwnAd
    own_ids: frozenset[str]
    methods: frozenset[str]


# id(table) -> (table, its rules on that screen, its per-ad rules but `own`): a table cannot
# change (frozen), and each is screened once per snapshot and applied once per kind of ad
_ACTIVE: dict[int, tuple[CompetitorFilters, tuple[Rule, ...], tuple[Rule, ...]]] = {}


def _active(filters: CompetitorFilters) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """The rules `filters` turns on, in table order: those `screen` checks, and the per-ad ones
    `apply` checks after it (all but `own`)."""
    got = _ACTIVE.get(id(filters))
    if got is None or got[0] is not filters:
        if len(_ACTIVE) >= 4096:  # tables replaced by reloads: forget them all
            _ACTIVE.clear()
        on = [rule for rule in RULES if rule.active(filters)]
        got = _ACTIVE[id(filters)] = (
            filters, tuple(rule for rule in on if not rule.per_ad),
            tuple(rule for rule in on if rule.per_ad and rule.reason != "own"))
    return got[1], got[2]


def _methods_for(filters: CompetitorFilters, own: OwnAd) -> frozenset[str]:
    if filters.pay_methods == "any":
        return frozenset()
    if filters.pay_methods == "own":
        return own.pay_methods
    return frozenset(filters.pay_methods)


def _is_own(ad: CompetitorAd, scope: _Scope) -> bool:
    return ((scope.own is not None and ad.adv_no == scope.own.adv_no)
            or ad.adv_no in scope.own_ids or ad.user_no in scope.own_ids)


def _no_overlap(ad: CompetitorAd, own: OwnAd) -> bool:
    return ad.min_amount > own.max_amount or ad.max_amount < own.min_amount


@dataclass(frozen=True)
class Rule:
    """One filter rule: its reason (the field that configures it), when it is on, what it drops."""

    reason: str
    active: Callable[[CompetitorFilters], bool]
    drops: Callable[[CompetitorFilters, CompetitorAd, Any], bool]  # Any: the _Scope, if needed
    per_ad: bool = False  # depends on our ad (its id, amounts, methods), not only on the filters


_ON: Callable[[CompetitorFilters], bool] = lambda f: True  # noqa: E731

RULES: tuple[Rule, ...] = (
    Rule("own", _ON, lambda f, ad, s: _is_own(ad, s), per_ad=True),
    Rule("block_users", lambda f: bool(f.block_users), lambda f, ad, s: ad.user_no in f.block_users),
    Rule("allow_users", lambda f: bool(f.allow_users), lambda f, ad, s: ad.user_no not in f.allow_users),
    Rule("merchants_only", lambda f: f.merchants_only, lambda f, ad, s: not ad.is_merchant),
    Rule(
        "min_completion_rate",
        lambda f: f.min_completion_rate > 0,
        lambda f, ad, s: ad.completion_rate < f.min_completion_rate,
    ),
    Rule(
        "min_month_orders",
        lambda f: f.min_month_orders > 0,
        lambda f, ad, s: ad.month_orders < f.min_month_orders,
    ),
    Rule(
        "decoy_max_amount",
        lambda f: f.decoy_max_amount > 0,
        lambda f, ad, s: ad.max_amount < f.decoy_max_amount,
    ),
    Rule(
        "decoy_min_available",
        lambda f: f.decoy_min_available > 0,
        lambda f, ad, s: ad.available * ad.price < f.decoy_min_available,
    ),
    Rule(
        "min_available",
        lambda f: f.min_available > 0,
        lambda f, ad, s: ad.available < f.min_available,
    ),
    Rule("overlap_amount", lambda f: f.overlap_amount, lambda f, ad, s: _no_overlap(ad, s.own),
         per_ad=True),
    Rule(
        "pay_methods",
        lambda f: f.pay_methods != "any",
        lambda f, ad, s: bool(s.methods) and not (ad.pay_methods & s.methods),
        per_ad=True,
    ),
)
"""The rules in the order they are checked: identity first, then stats, decoys, amounts, methods.
The per-ad rules are the first (`own`) and the last ones: `apply` relies on that order."""
