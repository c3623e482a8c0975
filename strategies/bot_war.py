"""Bot wars and the ratchet: what `undercut` does against a rival that answers every move.

A rival is a bot when its profile (`ctx.rivals`, computed by bot.pricing.rivals from the market
the bot watched) says so: it answered our moves, fast, most times. Racing it gives the
margin away a step at a time, down to its floor. The policies (`on_bot_war`):

- "race": beat it anyway (what `undercut` does to anyone);
- "sit_behind": take the place one step behind it, so it has nothing to answer;
- "hold": do not move towards it; a move away (back to margin) is still made.

Two guards against the ratchet apply to every rival, bot or not:

- `max_follow` per `follow_window`: the ad's moves towards the takers (down for SELL,
  up for BUY) add up to at most this much in the window (`ctx.moves`, the ad's own updates);
- no flip: a move that undoes the ad's last move within `flip_window` and lands within one
  `step` of where that move started is not made (the 18.02 / 18.03 flip around a rival one
  tick away: down to beat it, back up when it steps aside, down again...).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Literal

from strategies.base import CompetitorAd, Hold, PricingContext, RivalProfile

BotWar = Literal["race", "sit_behind", "hold"]


def bot_of(ctx: PricingContext, comp: CompetitorAd) -> RivalProfile | None:
    """The competitor's profile when it is a bot, else None."""
    profile = ctx.rivals.get(comp.user_no) if comp.user_no else None
    return profile if profile is not None and profile.kind == "bot" else None


def without_decoys(ctx: PricingContext) -> PricingContext:
    """The context without the competitors whose profile says decoy."""
    kept = tuple(c for c in ctx.competitors
                 if (p := ctx.rivals.get(c.user_no)) is None or p.kind != "decoy")
    return ctx if len(kept) == len(ctx.competitors) else replace(ctx, competitors=kept)


def describe(comp: CompetitorAd, bot: RivalProfile) -> str:
    """"bot 'alpha' (answered 7 of 8 moves, within 2.0 s)", or for a bot that answered none
    "bot 'alpha' (changes its price every 10 s)"."""
    who = f"'{comp.nickname}'" if comp.nickname else comp.user_no
    if not bot.answers and bot.reprice_seconds is not None:
        return f"bot {who} (changes its price every {bot.reprice_seconds:g} s)"
    within = "" if bot.answer_seconds is None else f", within {bot.answer_seconds} s"
    return f"bot {who} (answered {bot.answers} of {bot.chances} moves{within})"


def behind(ctx: PricingContext, comp: CompetitorAd, step: Decimal) -> Decimal:
    """One `step` behind `comp` (SELL: above it; BUY: below it)."""
    return ctx.side.beat(comp.price, -step)


def advance_in_window(ctx: PricingContext, window: float) -> tuple[Decimal, Decimal]:
    """(where the ad stood when the window began, how far it moved towards takers since)."""
    side, now = ctx.side, ctx.now
    recent = [m for m in ctx.moves if now - m.at < window]
    if not recent:
        return ctx.ad.price, Decimal(0)
    start = recent[0].before
    return start, max(Decimal(0), side.ahead_by(ctx.ad.price, start))


def follow_cap(ctx: PricingContext, price: Decimal, max_follow: Decimal | None,
               window: float) -> tuple[Decimal, str]:
    """`price` limited to `max_follow` of advance within `window`, with a note when limited."""
    side = ctx.side
    if max_follow is None or not side.better(price, ctx.ad.price):
        return price, ""
    start, _ = advance_in_window(ctx, window)
    furthest = side.beat(start, max_follow)
    if not side.better(price, furthest):
        return price, ""
    return furthest, (f"; anti-ratchet: at most {max_follow} {side.ahead_word} {start} "
                      f"within {window:g} s (max_follow)")


def flip(ctx: PricingContext, price: Decimal, step: Decimal, window: float) -> Hold | None:
    """A Hold when moving to `price` undoes the last move (see module doc), else None."""
    if not ctx.moves or window <= 0:
        return None
    last = ctx.moves[-1]
    if ctx.now - last.at >= window or last.after != ctx.ad.price:
        return None
    before, now_dir = last.after - last.before, price - ctx.ad.price
    if before * now_dir >= 0 or abs(price - last.before) > step:
        return None
    ago = ctx.now - last.at
    return Hold(f"no flip: {price} would undo the move {last.before} -> {last.after} made "
                f"{ago:.0f} s ago (flip_window {window:g} s)")
