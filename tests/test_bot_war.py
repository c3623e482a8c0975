"""`undercut` against bots (on_bot_war) and the ratchet (max_follow, no flip), from scripted
snapshot sequences: contexts in, decisions out, our ad moved by the test as the engine would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from strategies.base import Hold, Move, PricingContext, Reprice, RivalProfile
from strategies.undercut import Undercut, UndercutParams
from tests.plugins_fixture.market import NOW, D, comp, ctx, own

BOT = RivalProfile(user_no="s-alpha", nickname="alpha", kind="bot", answers=9, chances=10,
                   answer_seconds=2.0)
HUMAN = replace(BOT, kind="human", answers=0, answer_seconds=None)


def with_rivals(c: PricingContext, *profiles: RivalProfile, moves: tuple[Move, ...] = (),
                now: float = NOW) -> PricingContext:
    return replace(c, rivals={p.user_no: p for p in profiles}, moves=moves, now=now)


def decide(c: PricingContext, **params: Any) -> Reprice | Hold:
    return Undercut().decide(c, UndercutParams(**params))


SELL = ctx(own("SELL", "92.60"), [comp("alpha", "92.40"), comp("bravo", "92.50")], floor="91")


def test_without_profiles_a_bot_is_raced_as_before() -> None:
    got = decide(SELL, on_bot_war="hold")
    assert isinstance(got, Reprice) and got.price == D("92.39")


def test_race_without_a_cushion_beats_a_bot_by_a_step() -> None:
    got = decide(with_rivals(SELL, BOT), on_bot_war="race", bot_cushion=0)
    assert isinstance(got, Reprice) and got.price == D("92.39")


def test_race_beats_a_bot_by_the_cushion() -> None:
    """0.1% of 92.40 is 0.0924: 0.10 at the tick, so the bot's floor can move before we are
    beaten again."""
    got = decide(with_rivals(SELL, BOT), bot_cushion="0.1")
    assert isinstance(got, Reprice) and got.price == D("92.30")
    assert got.relation == "beat" and got.target == D("92.40") and "bot_cushion" in got.reason


def test_race_stays_put_while_ahead_within_twice_the_cushion() -> None:
    """The bot's floor rose with the market: 0.15 ahead is within 2 x 0.10, no edit."""
    ahead = replace(SELL, ad=own("SELL", "92.25"))
    got = decide(with_rivals(ahead, BOT), bot_cushion="0.1")
    assert isinstance(got, Hold) and "within 0.20" in got.reason
    far = replace(SELL, ad=own("SELL", "92.15"))
    got = decide(with_rivals(far, BOT), bot_cushion="0.1")
    assert isinstance(got, Reprice) and got.price == D("92.30")
    tight = decide(with_rivals(ahead, BOT), bot_cushion="0.1", max_gap="0.02")
    assert isinstance(tight, Reprice) and tight.price == D("92.30")  # 0.15 > 0.10 + 0.02


def test_the_default_cushion_is_0_15_percent() -> None:
    got = decide(with_rivals(SELL, BOT))  # 0.1386 at the tick, rounded up
    assert isinstance(got, Reprice) and got.price == D("92.26")


def test_the_cushion_stays_behind_the_competitor_above() -> None:
    """Target rank 2 behind 'leader' at 92.35: no room for 0.10 below the bot at 92.40."""
    c = ctx(own("SELL", "92.60"), [comp("leader", "92.35"), comp("alpha", "92.40")], floor="91")
    got = decide(with_rivals(c, BOT), target_rank=2)
    assert isinstance(got, Reprice) and got.price == D("92.39")


def test_sit_behind_sits_one_step_behind_a_bot() -> None:
    got = decide(with_rivals(SELL, BOT), on_bot_war="sit_behind")
    assert isinstance(got, Reprice) and got.price == D("92.41")
    assert "bot war" in got.reason and "'alpha'" in got.reason


def test_hold_does_not_move_towards_a_bot() -> None:
    got = decide(with_rivals(SELL, BOT), on_bot_war="hold")
    assert isinstance(got, Hold) and "bot war: holding" in got.reason


def test_hold_still_moves_back_to_margin() -> None:
    """Far ahead of the bot: moving back (up for SELL) is no race."""
    ahead = replace(SELL, ad=own("SELL", "92.00"))
    got = decide(with_rivals(ahead, BOT), on_bot_war="hold")
    assert isinstance(got, Reprice) and got.price == D("92.39")


def test_a_human_is_undercut_whatever_the_policy() -> None:
    for policy in ("sit_behind", "hold"):
        got = decide(with_rivals(SELL, HUMAN), on_bot_war=policy)
        assert isinstance(got, Reprice) and got.price == D("92.39")


def test_the_policy_is_validated() -> None:
    with pytest.raises(ValidationError, match="on_bot_war"):
        UndercutParams(on_bot_war="fight")  # type: ignore[arg-type]


def test_ignore_decoys_drops_a_decoy_by_profile() -> None:
    decoy = replace(BOT, kind="decoy", decoy_signs=("tiny max limit",))
    got = decide(with_rivals(SELL, decoy), ignore_decoys=True)
    assert isinstance(got, Reprice) and got.price == D("92.49")


def war(start: str, floor: str, steps: int, market: Callable[[int, Decimal], list[Any]],
        **params: Any) -> list[Decimal]:
    """We decide every 10 s against `market(n, our price)`; our prices after each decision."""
    price, moves, prices = D(start), [], []
    for n in range(steps):
        now = NOW + 10 * n
        c = ctx(own("SELL", str(price)), market(n, price), floor=floor)
        got = decide(with_rivals(c, moves=tuple(moves), now=now), **params)
        if isinstance(got, Reprice):
            moves.append(Move(now, price, got.price))
            price = got.price
        prices.append(price)
    return prices


def mirror_war(steps: int, **params: Any) -> list[Decimal]:
    """A mirror rival sits one tick below our ad 2 s after each of our moves."""
    return war("92.60", "91", steps, lambda n, price: [comp("mirror", str(price - D("0.01")))],
               **params)


def test_a_mirror_ratchets_the_price_down_without_a_limit() -> None:
    prices = mirror_war(60)
    assert D("92.60") - prices[-1] == D("1.20")  # two ticks every 10 s, for 10 minutes


def test_max_follow_limits_the_descent_per_window() -> None:
    prices = mirror_war(60, max_follow="0.10", follow_window=300)
    # at most 0.10 in any 300 s: 10 minutes give at most 0.20 + one window's start
    assert D("92.60") - prices[-1] <= D("0.30")
    for i in range(len(prices)):
        window = prices[max(0, i - 29):i + 1]  # 30 decisions = 300 s
        assert window[0] - window[-1] <= D("0.10") + D("0.02")
    held = mirror_war(60, max_follow="0.10", follow_window=300)
    assert held == prices  # deterministic


def flip_market(n: int) -> list[Any]:
    """The 18.02 / 18.03 flip: 'rival' sits at 18.02, one tick below 'other' at 18.04; every
    other read it steps aside to 18.05 and back."""
    aside = n % 2 == 1
    return [comp("other", "18.04"), comp("rival", "18.05")] if aside else \
        [comp("rival", "18.02"), comp("other", "18.04")]


def flip_war(**params: Any) -> list[Decimal]:
    return war("18.03", "17", 12, lambda n, price: flip_market(n), **params)


def test_without_the_flip_guard_it_flips_up_and_down() -> None:
    prices = flip_war(flip_window=0)
    assert prices[:4] == [D("18.01"), D("18.03"), D("18.01"), D("18.03")]


def test_the_flip_guard_holds_the_reversal() -> None:
    prices = flip_war()
    assert prices == [D("18.01")] * 12  # down once to beat it, then kept


def test_the_flip_guard_lets_a_reversal_through_after_the_window() -> None:
    c = ctx(own("SELL", "18.01"), flip_market(1), floor="17")
    moves = (Move(NOW, D("18.03"), D("18.01")),)
    assert isinstance(decide(with_rivals(c, moves=moves, now=NOW + 30)), Hold)
    got = decide(with_rivals(c, moves=moves, now=NOW + 200))
    assert isinstance(got, Reprice) and got.price == D("18.03")


def test_a_bad_policy_in_the_config_file_names_file_ad_and_key(tmp_path: Any) -> None:
    from config.loader import ConfigFileError, load_config

    example = (Path(__file__).resolve().parents[1] / "config" / "example.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(example.replace('step = "0.01"', 'on_bot_war = "fight"\nstep = "0.01"', 1))
    with pytest.raises(ConfigFileError) as got:
        load_config(bad)
    said = str(got.value)
    assert str(bad) in said and '"sell-usdt"' in said and "params.on_bot_war" in said
