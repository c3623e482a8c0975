"""bot.pricing.floating: the ratio sent for a floating ad, its margin, and the watch on the reference."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.pricing.floating import (
    ReferenceTrack,
    choose_ratio,
    effective,
    inner_bounds,
    outside,
    ratio_for,
)
from strategies.base import Side

D = Decimal
TICK = D("0.01")


def test_the_ratio_is_rounded_toward_the_safe_side() -> None:
    # 93.00 / 92.50 = 100.5405...%: a SELL ad rounds up (never cheaper), a BUY ad down
    assert ratio_for(D("93.00"), D("92.50"), Side.SELL) == D("100.55")
    assert ratio_for(D("93.00"), D("92.50"), Side.BUY) == D("100.54")


def test_margin_pulls_the_aim_inside_and_collapses_to_the_middle_when_there_is_no_room() -> None:
    assert inner_bounds(D(88), D(93), D("0.05")) == (D("88.05"), D("92.95"))
    assert inner_bounds(D("92.99"), D(93), D("0.05")) == (D("92.995"), D("92.995"))
    assert inner_bounds(None, D(93), D("0.05")) == (None, D("92.95"))


@given(ref=st.decimals(min_value=D(50), max_value=D(150), places=2),
       target=st.decimals(min_value=D(40), max_value=D(160), places=2),
       side=st.sampled_from([Side.BUY, Side.SELL]))
def test_the_effective_price_of_the_chosen_ratio_is_inside_the_bounds(ref, target, side) -> None:
    floor, ceiling = D("60.00"), D("140.00")
    _ratio, price = choose_ratio(target, ref, side, TICK, floor, ceiling, TICK)
    assert outside(price, floor, ceiling) is None
    assert price == effective(ref, _ratio, TICK)


def test_a_reference_that_jumps_away_from_the_market_is_suspect() -> None:
    track = ReferenceTrack(max_jump=D(5))
    assert track.offer(D("92.50"), 0, None) is None
    assert track.offer(D("92.70"), 30, D("92.6")) is None
    suspect = track.offer(D("46.00"), 60, D("92.6"))
    assert suspect is not None and track.price == D("92.70")
    assert "reference 46.00 is suspect: 50.4% from the last believed 92.70" in suspect.text()
    assert "the market's median is 92.6" in suspect.text()
    # the market moving with it makes the same jump believable
    assert track.offer(D("97.50"), 90, D("97.4")) is None and track.price == D("97.50")


def test_without_market_prices_a_jumped_level_is_believed_after_three_reads() -> None:
    track = ReferenceTrack(max_jump=D(5))
    track.offer(D(100), 0, None)
    assert track.offer(D(120), 1, None) is not None
    assert track.offer(D("120.5"), 2, None) is not None
    assert track.offer(D("120.2"), 3, None) is None and track.price == D("120.2")


def test_the_typical_move_is_the_median_of_recent_moves() -> None:
    track = ReferenceTrack(max_jump=D(5))
    for i, price in enumerate(["100", "100.1", "100.4", "100.3"]):
        track.offer(D(price), i, None)
    assert track.typical_move() == D("0.1")


@pytest.mark.parametrize(("price", "said"), [(D("87.99"), "floor"), (D("93.01"), "ceiling"),
                                             (D("90"), None)])
def test_outside(price, said) -> None:
    assert outside(price, D(88), D(93)) == said


def test_moves_are_learned_from_the_ads_observed_price_while_the_reference_is_not_read() -> None:
    track = ReferenceTrack(max_jump=D(5))
    track.offer(D(100), 0, None)  # the last exchange read, long ago
    for i, implied in enumerate(["100.2", "100.5", "100.4", "100.9"]):
        track.observe_implied(D(implied), 100 + 30 * i, every=30)
    assert track.typical_move() == D("0.3")  # median of 0.3, 0.1, 0.5
    track.observe_implied(D("110"), 200, every=30)  # within the interval: not a move
    assert len(track.moves) == 3
