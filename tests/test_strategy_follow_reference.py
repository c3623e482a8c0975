"""`follow_reference` as a table: a reference in, a decision out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from strategies.base import Decision, Hold, Reference, Reprice
from strategies.follow_reference import FollowReference, FollowReferenceParams
from tests.plugins_fixture.market import D, ctx, own

EXCHANGE = Reference(D("92.50"))
DERIVED = Reference(D("92.50"), "derived")

CASES = [
    pytest.param(EXCHANGE, {"margin": "0.30"}, Reprice(D("92.80"), "reference 92.50 +0.30"),
                 id="margin-above"),
    pytest.param(Reference(D("92.50")), {"margin": "-0.25"},
                 Reprice(D("92.25"), "reference 92.50 -0.25"), id="margin-below"),
    pytest.param(EXCHANGE, {"ratio": "101.5"},
                 Reprice(D("93.8875"), "reference 92.50 +1.5%", ratio=D("101.5")), id="ratio-above"),
    pytest.param(EXCHANGE, {"ratio": "98"}, Reprice(D("90.65"), "reference 92.50 -2%", ratio=D("98")),
                 id="ratio-below"),
    pytest.param(DERIVED, {"ratio": "101.5"},
                 Reprice(D("93.8875"), "reference 92.50 (derived) +1.5%",
                         ratio=D("101.5")), id="derived-use"),
    pytest.param(DERIVED, {"ratio": "101.5", "on_derived": "hold"},
                 Hold("reference 92.50 is derived (on_derived = hold)"), id="derived-hold"),
    pytest.param(Reference(D("92.50"), age=95.0, stale=True), {"margin": "0.30"},
                 Reprice(D("92.80"), "reference 92.50 (stale: last read) +0.30"), id="stale"),
    pytest.param(None, {"margin": "0"}, Hold("no reference price"), id="no-reference"),
    pytest.param(EXCHANGE, {"margin": "0.50"}, Hold("unchanged: reference 92.50 +0.50"),
                 id="unchanged"),
    pytest.param(EXCHANGE, {"ratio": "100.54"}, Hold("unchanged: reference 92.50 +0.54%"),
                 id="unchanged-at-the-ads-scale"),
]


@pytest.mark.parametrize(("reference", "params", "expected"), CASES)
def test_follow_reference(
    reference: Reference | None, params: dict[str, Any], expected: Decision
) -> None:
    context = ctx(own("SELL", "93.00"), reference=reference)
    assert FollowReference().decide(context, FollowReferenceParams(**params)) == expected


def test_follow_reference_buy_side_is_the_same_arithmetic() -> None:
    context = ctx(own("BUY", "90.00"), reference=EXCHANGE)
    decision = FollowReference().decide(context, FollowReferenceParams(ratio=D("99")))
    assert decision == Reprice(D("91.575"), "reference 92.50 -1%", ratio=D("99"))


@pytest.mark.parametrize(
    "raw",
    [{}, {"margin": "0.1", "ratio": "101"}, {"ratio": "0"}, {"margin": "0.1", "on_derived": "x"}],
)
def test_follow_reference_params_rejects(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FollowReferenceParams(**raw)
