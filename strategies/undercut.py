"""`undercut`: beat the competitor at a target rank by one step, within the engine's bounds.

Ranks count the filtered competitors best first (`ctx.competitors`). To sit at
rank N we beat the Nth competitor by `step` and stay behind (or level with) the
(N-1)th. A competitor that cannot be beaten by `step` without crossing the limit
(the floor for a SELL ad, the ceiling for a BUY ad) is never followed: we skip
to the next one down the list, and when none is left we hold or sit at the
limit (`at_floor`). Every direction question is asked of `Side`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from strategies.base import (
    CompetitorAd,
    Decision,
    Hold,
    PricingContext,
    Relation,
    Reprice,
    ordinal,
)
from strategies.bot_war import (
    BotWar,
    behind,
    bot_of,
    describe,
    flip,
    follow_cap,
    without_decoys,
)

MARKET = "market"
"""The capability that searches competitors' ads: without it, no competitors means no data."""


class UndercutParams(BaseModel):
    """Parameters of `undercut` (the ad's `params` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    step: Decimal = Field(Decimal("0.01"), gt=0)
    """How far ahead of the competitor we beat (fiat per unit): lower for SELL, higher for BUY."""
    target_rank: int = Field(1, ge=1)
    """The position to take among the filtered competitors: 1 = first (beat the best one)."""
    max_gap: Decimal | None = Field(None, gt=0)
    """While we hold the target rank, stay put as long as we are at most this far ahead of the
    competitor we beat; further ahead, move back to one `step` ahead of it to keep the margin.
    None: always sit exactly one `step` ahead (move back at once)."""
    at_floor: Literal["hold", "sit"] = "hold"
    """When no competitor from the target rank down can be beaten within the floor (SELL) or
    ceiling (BUY): "hold" the current price, or "sit" at that bound. With "sit", a competitor
    less than one step from the bound is also matched by sitting at the bound."""
    fallback: Literal["hold", "reference", "cap"] = "hold"
    """With fewer competitors than `target_rank` (none at all, say): "hold"; "reference": go to
    the reference price (hold without one); "cap": go to the bound on the profitable side, the
    ceiling for a SELL ad or the floor for a BUY ad (hold when it is not set). Applies only
    while the "market" capability is up: an empty market we cannot see is not an empty market."""
    on_bot_war: BotWar = "race"
    """Against a competitor the bot's profiles call a bot (it answers our moves within seconds,
    most times): "race" beats it by `bot_cushion`; "sit_behind" sits one step behind it; "hold"
    does not move towards it (see strategies.bot_war)."""
    bot_cushion: Decimal = Field(Decimal("0.15"), ge=0, lt=10)
    """With "race": beat a bot by this percentage of its price (at least one `step`), and stay
    put while ahead of it by at most the cushion plus `max_gap` (plus the cushion again when
    `max_gap` is not set): a bot at its floor cannot answer, and its floor moves with the
    market. 0: beat it by `step`, like anyone."""
    max_follow: Decimal | None = Field(None, gt=0)
    """Anti-ratchet: how far the ad may move towards the takers (down for SELL, up for BUY) in
    `follow_window` seconds, in all. None: no limit."""
    follow_window: float = Field(300.0, gt=0, le=86_400)
    """The window of `max_follow`, in seconds."""
    ignore_decoys: bool = False
    """Leave out the competitors the bot's profiles call decoys (limits or amount too small to
    fill a typical order), on top of the ad's filters."""
    flip_window: float = Field(120.0, ge=0, le=86_400)
    """No flip: a move that undoes the ad's last move made less than this many seconds ago and
    lands within one `step` of where that move started is held. 0: off."""


@dataclass(slots=True)
class _Target:
    """Where a decision is heading before the bounds and the bot-war policy. Never changed once
    made, but not frozen: one is made for every decision, and a frozen one costs three times
    as much to make."""

    price: Decimal
    reason: str
    index: int | None  # the competitor followed, if any
    named: CompetitorAd | None = None  # the competitor the reason places us against, if any


class Undercut:
    """Beat the competitor at `target_rank` by `step`; never follow one past the floor/ceiling."""

    name: ClassVar[str] = "undercut"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = UndercutParams

    def decide(self, ctx: PricingContext, params: UndercutParams) -> Decision:
        """Reprice one step ahead of the competitor at the target rank, or hold (see module doc)."""
        if params.ignore_decoys and ctx.rivals:
            ctx = without_decoys(ctx)
        if len(ctx.competitors) < params.target_rank:
            return _fallback(ctx, params)
        target = _find_target(ctx, params)
        if isinstance(target, Hold):
            return target
        target = _bot_war(ctx, params, target)
        if isinstance(target, Hold):
            return target
        return _finish(ctx, params, target)


def _bot_war(ctx: PricingContext, p: UndercutParams, target: _Target) -> _Target | Hold:
    """Against a bot (by its profile), apply `on_bot_war`."""
    if target.index is None or (p.on_bot_war == "race" and not p.bot_cushion):
        return target
    comp = ctx.competitors[target.index]
    bot = bot_of(ctx, comp)
    if bot is None:
        return target
    side, who = ctx.side, describe(comp, bot)
    if p.on_bot_war == "race":
        return _race(ctx, p, target, comp, who)
    if p.on_bot_war == "hold":
        if side.better(target.price, ctx.ad.price):
            return Hold(f"bot war: holding, not racing {who} (on_bot_war = hold)")
        return target
    price = behind(ctx, comp, p.step)
    reason = f"bot war: one {p.step} behind {who} (on_bot_war = sit_behind)"
    return _Target(price, reason, target.index, comp)


def _race(ctx: PricingContext, p: UndercutParams, target: _Target, comp: CompetitorAd,
          who: str) -> _Target | Hold:
    """Beat a bot by the cushion; hold while ahead of it by at most twice the cushion."""
    side, j = ctx.side, target.index
    assert j is not None
    cushion = max(p.step, (comp.price * p.bot_cushion / 100).quantize(ctx.ad.tick, ROUND_UP))
    ahead = side.ahead_by(ctx.ad.price, comp.price)
    above = ctx.competitors[j - 1] if j > 0 else None
    band = cushion + (cushion if p.max_gap is None else p.max_gap)
    if 0 < ahead <= band and (above is None or not side.better(ctx.ad.price, above.price)):
        return Hold(f"bot war: {_ordinal(j + 1)}, {ahead} {side.ahead_word} {who}, within "
                    f"{band} (the cushion {cushion}, bot_cushion {p.bot_cushion}%, + "
                    f"{'the cushion again' if p.max_gap is None else 'max_gap'})")
    price = side.beat(comp.price, cushion)
    if above is not None and side.better(price, above.price):
        return target  # no room for the cushion below the one above: as for anyone
    reason = (f"{_ordinal(j + 1)} by {cushion} {side.ahead_word} {who} "
              f"(bot_cushion {p.bot_cushion}%)")
    return _Target(price, reason, j, comp)


def _find_target(ctx: PricingContext, p: UndercutParams) -> _Target | Hold:
    """The first competitor from the target rank down that we can beat within the limit."""
    side, comps = ctx.side, ctx.competitors
    limit = side.limit(ctx.floor, ctx.ceiling)
    first = p.target_rank - 1
    for j in range(first, len(comps)):
        price = side.beat(comps[j].price, p.step)
        if limit is not None and side.better(price, limit):
            if p.at_floor == "hold" or side.better(comps[j].price, limit):
                continue
            price = limit  # "sit": the limit still matches or beats this one
        return _place(ctx, p, j, price, skipped=j - first)
    return _nothing_beatable(ctx, p, comps[first], limit)


def _place(ctx: PricingContext, p: UndercutParams, j: int, price: Decimal, skipped: int) -> _Target:
    """Stay behind the competitor ranked above the one we beat, and say where we are."""
    side, comps = ctx.side, ctx.competitors
    limit = side.limit(ctx.floor, ctx.ceiling)
    named = comps[j]
    if j > 0 and side.better(price, comps[j - 1].price):
        above = named = comps[j - 1]
        price = above.price
        reason = (
            f"{_ordinal(j)}, level with {_who(above)} ({above.price}): no room for "
            f"{p.step} between it and {_who(comps[j])} ({comps[j].price})"
        )
    else:
        reason = f"{_ordinal(j + 1)} {_relation(ctx, price, comps[j])}"
        if price == limit:
            reason = f"at the {side.limit_name} {limit}, {reason}"
    if skipped:
        reason += f"; skipped {skipped} not beatable within the {side.limit_name} {limit}"
    return _Target(price, reason, j, named)


def _nothing_beatable(
    ctx: PricingContext, p: UndercutParams, first: CompetitorAd, limit: Decimal | None
) -> _Target | Hold:
    """Every competitor from the target rank down is past (or within a step of) the limit."""
    side = ctx.side
    if limit is None:  # unreachable: without a limit everyone can be beaten
        return Hold(f"no competitor to beat from rank {p.target_rank}")
    where = f"{side.ahead_word} the {side.limit_name} {limit}"
    if p.at_floor == "sit":
        reason = (
            f"at the {side.limit_name} {limit}: every competitor from "
            f"{_who(first)} ({first.price}) down is {where}"
        )
        return _Target(limit, reason, None)
    return Hold(
        f"{side.limit_name} reached: cannot beat {_who(first)} ({first.price}) or anyone "
        f"after it by {p.step} without going {where}"
    )


def _fallback(ctx: PricingContext, p: UndercutParams) -> Decision:
    """Fewer competitors than the target rank: hold, follow the reference, or go to the cap."""
    n = len(ctx.competitors)
    if MARKET not in ctx.capabilities:
        return Hold(f"no market data: the '{MARKET}' capability is down")
    why = "no competitors" if n == 0 else f"only {n} competitor(s) for rank {p.target_rank}"
    why += _filtered_note(ctx.filtered_out)
    if p.fallback == "reference":
        ref = ctx.reference
        if ref is None:
            return Hold(f"{why}; no reference price")
        derived = " (derived)" if ref.source == "derived" else ""
        return _finish(ctx, p, _Target(ref.price, f"{why}: reference {ref.price}{derived}", None))
    if p.fallback == "cap":
        side = ctx.side
        cap = side.cap(ctx.floor, ctx.ceiling)
        if cap is None:
            return Hold(f"{why}; no {side.cap_name} set")
        return _finish(ctx, p, _Target(cap, f"{why}: at the {side.cap_name} {cap}", None))
    return Hold(why)


def _finish(ctx: PricingContext, p: UndercutParams, target: _Target) -> Decision:
    """Keep the target within both bounds, then hold if nothing changes or we are near enough."""
    price, note = _clamp(ctx, target.price)
    price, capped = follow_cap(ctx, price, p.max_follow, p.follow_window)
    reason = target.reason + note + capped
    if price == ctx.ad.price:
        return Hold(f"unchanged: {reason}")
    gap = _gap_check(ctx, p, target)
    if isinstance(gap, Hold):
        return gap
    flipped = flip(ctx, price, p.step, p.flip_window)
    if flipped is not None:
        return flipped
    followed = None if target.index is None else ctx.competitors[target.index].adv_no
    named = target.named
    if named is None or ctx.side.ahead_by(price, named.price) < 0:  # capped behind it: no relation
        return Reprice(price, reason + gap, followed)
    relation: Relation = "level" if price == named.price else "beat"
    return Reprice(price, reason + gap, followed, relation, named.price, _who(named))


def _clamp(ctx: PricingContext, price: Decimal) -> tuple[Decimal, str]:
    """`price` moved inside [floor, ceiling], with a note when it moved."""
    side = ctx.side
    cap, limit = side.cap(ctx.floor, ctx.ceiling), side.limit(ctx.floor, ctx.ceiling)
    if cap is not None and side.better(cap, price):
        return cap, f"; capped at the {side.cap_name} {cap}"
    if limit is not None and side.better(price, limit):
        return limit, f"; held at the {side.limit_name} {limit}"
    return price, ""


def _gap_check(ctx: PricingContext, p: UndercutParams, target: _Target) -> Hold | str:
    """Hold while we keep the rank within `max_gap`; else a note when we move back from far ahead."""
    if p.max_gap is None or target.index is None:
        return ""
    side, comps, current = ctx.side, ctx.competitors, ctx.ad.price
    beaten = comps[target.index]
    ahead = side.ahead_by(current, beaten.price)
    if ahead <= 0:
        return ""  # behind it: move up to beat it
    if target.index > 0 and side.better(current, comps[target.index - 1].price):
        return ""  # ahead of the rank above as well: move back into place
    if ahead > p.max_gap:
        return f"; moved back, was {ahead} ahead (max_gap {p.max_gap})"
    if _clamp(ctx, current)[1]:
        return ""  # current price is outside the bounds: move anyway
    return Hold(
        f"{_ordinal(target.index + 1)} {_relation(ctx, current, beaten)}, within max_gap {p.max_gap}"
    )


def _relation(ctx: PricingContext, price: Decimal, other: CompetitorAd) -> str:
    """'by 0.01 below 'alpha' (92.40)' or 'level with 'alpha' (92.40)'."""
    ahead = ctx.side.ahead_by(price, other.price)
    if ahead == 0:
        return f"level with {_who(other)} ({other.price})"
    return f"by {ahead} {ctx.side.ahead_word} {_who(other)} ({other.price})"


def _who(ad: CompetitorAd) -> str:
    """A competitor for a reason: its nickname (display only), else its user id."""
    return f"'{ad.nickname}'" if ad.nickname else ad.user_no


_ordinal = ordinal


def _filtered_note(filtered_out: Mapping[str, int]) -> str:
    """' (5 filtered out: overlap_amount 3, own 2)', or '' when nothing was filtered."""
    total = sum(filtered_out.values())
    if not total:
        return ""
    parts = sorted(filtered_out.items(), key=lambda item: (-item[1], item[0]))
    return f" ({total} filtered out: {', '.join(f'{k} {v}' for k, v in parts)})"
