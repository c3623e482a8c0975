"""The engine's fourth pass (issue 14 item 1): values made directly, or kept from one snapshot to
the next, are what the general way makes."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from bot.pricing.engine import _outcome, _repriced
from state.decisions import DecisionRow
from strategies.base import OwnAd, Side

OWN = OwnAd(adv_no="1", side=Side.SELL, asset="USDT", fiat="RUB", price=Decimal("93.00"),
            price_type="floating", ratio=Decimal("101.5"), min_amount=Decimal(500),
            max_amount=Decimal(50000), available=Decimal(1000), pay_methods=frozenset({"SBP"}))


@pytest.mark.parametrize("ratio", [None, Decimal("101.25")])
def test_an_ad_repriced_is_the_ad_replaced(ratio: Decimal | None) -> None:
    moved = _repriced(OWN, Decimal("92.99"), ratio)
    assert moved == replace(OWN, price=Decimal("92.99"), ratio=ratio)
    assert vars(moved) == vars(replace(OWN, price=Decimal("92.99"), ratio=ratio))
    assert OWN.price == Decimal("93.00")  # the ad it was made from is unchanged


def test_an_ad_repriced_with_a_float_is_refused_as_replace_refuses_it() -> None:
    with pytest.raises(TypeError, match="OwnAd.price must be a Decimal"):
        _repriced(OWN, 92.99, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="OwnAd.ratio must be a Decimal"):
        _repriced(OWN, Decimal("92.99"), 101.5)  # type: ignore[arg-type]


def test_a_decisions_outcome_is_the_row_replaced() -> None:
    base = DecisionRow(5.0, "sell", "1", "undercut", Decimal("93.00"), Decimal("92.99"), "held",
                       "1st by 0.01", ("tick",), 187049, {"rank": 2}, 3, 1.0)
    assert _outcome(base, "applied", "sent") == replace(base, result="applied", reason="sent")
