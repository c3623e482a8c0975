"""`fixed`: reprice to the configured price when elsewhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from strategies.base import Decision, Hold, Reprice
from strategies.fixed import Fixed, FixedParams
from tests.plugins_fixture.market import D, comp, ctx, own


@pytest.mark.parametrize(
    ("side", "current", "expected"),
    [
        ("SELL", "93.00", Reprice(D("92.50"), "fixed price 92.50")),
        ("BUY", "91.00", Reprice(D("92.50"), "fixed price 92.50")),
        ("SELL", "92.5", Hold("already at the fixed price 92.50")),
    ],
)
def test_fixed(side: str, current: str, expected: Decision) -> None:
    context = ctx(own(side, current), [comp("alpha", "90.00")])
    assert Fixed().decide(context, FixedParams(price=D("92.50"))) == expected


@pytest.mark.parametrize("raw", [{}, {"price": "0"}, {"price": "NaN"}, {"price": "1", "x": 1}])
def test_fixed_params_rejects(raw: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        FixedParams(**raw)
