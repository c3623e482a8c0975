"""`undercut` as tables: a market in, a decision out."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.base import Decision, Hold, Reference, Reprice, Side
from strategies.filters import CompetitorFilters
from strategies.undercut import Undercut, UndercutParams
from tests.plugins_fixture.market import D, comp, ctx, market, own

SELL3 = market("SELL", ("alpha", "92.40"), ("bravo", "92.45"), ("charlie", "92.60"))
BUY3 = market("BUY", ("alpha", "92.60"), ("bravo", "92.45"), ("charlie", "92.40"))


def decide(context: Any, **params: Any) -> Decision:
    return Undercut().decide(context, UndercutParams(**params))


CASES = [
    pytest.param(
        ctx(own("SELL", "93.00"), SELL3), {},
        Reprice(
            D("92.39"), "1st by 0.01 below 'alpha' (92.40)", "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="sell-beats-lowest",
    ),
    pytest.param(
        ctx(own("BUY", "92.00"), BUY3), {},
        Reprice(
            D("92.61"), "1st by 0.01 above 'alpha' (92.60)", "adv-alpha",
            "beat", D("92.60"), "'alpha'",
        ),
        id="buy-beats-highest",
    ),
    pytest.param(
        ctx(own("SELL", "93.00"), SELL3), {"step": "0.05"},
        Reprice(
            D("92.35"), "1st by 0.05 below 'alpha' (92.40)", "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="step",
    ),
    pytest.param(
        ctx(own("SELL", "93.00"), SELL3), {"target_rank": 2},
        Reprice(
            D("92.44"), "2nd by 0.01 below 'bravo' (92.45)", "adv-bravo",
            "beat", D("92.45"), "'bravo'",
        ),
        id="sell-rank-2-beats-2nd-stays-behind-1st",
    ),
    pytest.param(
        ctx(own("BUY", "92.00"), BUY3), {"target_rank": 3},
        Reprice(
            D("92.41"), "3rd by 0.01 above 'charlie' (92.40)", "adv-charlie",
            "beat", D("92.40"), "'charlie'",
        ),
        id="buy-rank-3",
    ),
    pytest.param(
        ctx(own("SELL", "93.00"), market("SELL", ("alpha", "92.40"), ("bravo", "92.40"))),
        {"target_rank": 2},
        Reprice(
            D("92.40"),
            "1st, level with 'alpha' (92.40): no room for 0.01 between it and 'bravo' (92.40)",
            "adv-bravo",
            "level", D("92.40"), "'alpha'",
        ),
        id="rank-2-no-room-levels-with-1st",
    ),
    pytest.param(
        ctx(own("SELL", "92.39"), SELL3), {},
        Hold("unchanged: 1st by 0.01 below 'alpha' (92.40)"),
        id="already-there",
    ),
    pytest.param(
        ctx(own("SELL", "93.00"), SELL3, ceiling="92.00"), {},
        Reprice(
            D("92.00"), "1st by 0.01 below 'alpha' (92.40); capped at the ceiling 92.00",
            "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="sell-capped-at-ceiling",
    ),
]


@pytest.mark.parametrize(("context", "params", "expected"), CASES)
def test_undercut(context: Any, params: dict[str, Any], expected: Decision) -> None:
    assert decide(context, **params) == expected


FLOOR_MARKET = market("SELL", ("cheap", "92.20"), ("alpha", "92.40"), ("bravo", "92.45"))
AT_FLOOR_MARKET = market("SELL", ("alpha", "92.30"), ("bravo", "92.45"))
BELOW_FLOOR = market("SELL", ("alpha", "92.40"), ("bravo", "92.45"))

FLOOR_CASES = [
    pytest.param(
        ctx(own("SELL", "93.00"), FLOOR_MARKET, floor="92.30"), {},
        Reprice(
            D("92.39"),
            "2nd by 0.01 below 'alpha' (92.40); skipped 1 not beatable within the floor 92.30",
            "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="sell-competitor-below-floor-not-followed",
    ),
    pytest.param(
        ctx(own("BUY", "92.00"), market("BUY", ("rich", "92.80"), ("alpha", "92.60")),
            ceiling="92.70"), {},
        Reprice(
            D("92.61"),
            "2nd by 0.01 above 'alpha' (92.60); skipped 1 not beatable within the ceiling 92.70",
            "adv-alpha",
            "beat", D("92.60"), "'alpha'",
        ),
        id="buy-competitor-above-ceiling-not-followed",
    ),
    pytest.param(
        ctx(own("SELL", "93.00"), AT_FLOOR_MARKET, floor="92.30"), {"at_floor": "hold"},
        Reprice(
            D("92.44"),
            "2nd by 0.01 below 'bravo' (92.45); skipped 1 not beatable within the floor 92.30",
            "adv-bravo",
            "beat", D("92.45"), "'bravo'",
        ),
        id="hold-mode-skips-one-sitting-on-the-floor",
    ),
    pytest.param(
        ctx(own("SELL", "93.00"), AT_FLOOR_MARKET, floor="92.30"), {"at_floor": "sit"},
        Reprice(
            D("92.30"), "at the floor 92.30, 1st level with 'alpha' (92.30)", "adv-alpha",
            "level", D("92.30"), "'alpha'",
        ),
        id="sit-mode-matches-one-sitting-on-the-floor",
    ),
    pytest.param(
        ctx(own("SELL", "94.00"), BELOW_FLOOR, floor="93.00"), {"at_floor": "hold"},
        Hold(
            "floor reached: cannot beat 'alpha' (92.40) or anyone after it by 0.01 "
            "without going below the floor 93.00"
        ),
        id="all-below-floor-hold",
    ),
    pytest.param(
        ctx(own("SELL", "94.00"), BELOW_FLOOR, floor="93.00"), {"at_floor": "sit"},
        Reprice(
            D("93.00"),
            "at the floor 93.00: every competitor from 'alpha' (92.40) down is below the floor 93.00",
        ),
        id="all-below-floor-sit",
    ),
    pytest.param(
        ctx(own("BUY", "91.00"), market("BUY", ("alpha", "92.60")), ceiling="92.00"),
        {"at_floor": "hold"},
        Hold(
            "ceiling reached: cannot beat 'alpha' (92.60) or anyone after it by 0.01 "
            "without going above the ceiling 92.00"
        ),
        id="buy-all-above-ceiling-hold",
    ),
]


@pytest.mark.parametrize(("context", "params", "expected"), FLOOR_CASES)
def test_undercut_floor(context: Any, params: dict[str, Any], expected: Decision) -> None:
    assert decide(context, **params) == expected


GAP_CASES = [
    pytest.param(
        "92.00", {"max_gap": "0.20"},
        Reprice(
            D("92.39"),
            "1st by 0.01 below 'alpha' (92.40); moved back, was 0.40 ahead (max_gap 0.20)",
            "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="far-ahead-moves-back-up",
    ),
    pytest.param(
        "92.30", {"max_gap": "0.20"},
        Hold("1st by 0.10 below 'alpha' (92.40), within max_gap 0.20"),
        id="near-enough-holds",
    ),
    pytest.param(
        "92.30", {},
        Reprice(
            D("92.39"), "1st by 0.01 below 'alpha' (92.40)", "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="no-max-gap-moves-back-at-once",
    ),
    pytest.param(
        "92.50", {"max_gap": "0.20"},
        Reprice(
            D("92.39"), "1st by 0.01 below 'alpha' (92.40)", "adv-alpha",
            "beat", D("92.40"), "'alpha'",
        ),
        id="behind-moves-up-regardless",
    ),
]


@pytest.mark.parametrize(("current", "params", "expected"), GAP_CASES)
def test_undercut_move_back(current: str, params: dict[str, Any], expected: Decision) -> None:
    assert decide(ctx(own("SELL", current), SELL3), **params) == expected


def test_undercut_move_back_buy_side() -> None:
    decision = decide(ctx(own("BUY", "93.50"), BUY3), max_gap="0.50")
    assert decision == Reprice(
        D("92.61"),
        "1st by 0.01 above 'alpha' (92.60); moved back, was 0.90 ahead (max_gap 0.50)",
        "adv-alpha",
        "beat", D("92.60"), "'alpha'",
    )


def test_undercut_ignores_filtered_decoy() -> None:
    ad = own("SELL", "93.00")
    decoy = comp("bait", "90.00", max_amount="500", available="5")
    result = CompetitorFilters(decoy_max_amount=D("1000")).apply([decoy, *SELL3], ad, set())
    context = ctx(ad, result.kept, filtered_out=result.dropped)
    assert result.dropped == {"decoy_max_amount": 1}
    assert decide(context) == Reprice(
        D("92.39"), "1st by 0.01 below 'alpha' (92.40)", "adv-alpha",
        "beat", D("92.40"), "'alpha'",
    )


REF = Reference(D("92.50"))

EMPTY_CASES = [
    pytest.param({}, {}, Hold("no competitors"), id="hold"),
    pytest.param(
        {"filtered_out": {"own": 1, "overlap_amount": 3}}, {},
        Hold("no competitors (4 filtered out: overlap_amount 3, own 1)"),
        id="hold-says-what-was-filtered",
    ),
    pytest.param(
        {"reference": REF}, {"fallback": "reference"},
        Reprice(D("92.50"), "no competitors: reference 92.50"),
        id="fallback-reference",
    ),
    pytest.param(
        {"reference": Reference(D("92.50"), "derived")}, {"fallback": "reference"},
        Reprice(D("92.50"), "no competitors: reference 92.50 (derived)"),
        id="fallback-derived-reference",
    ),
    pytest.param(
        {}, {"fallback": "reference"},
        Hold("no competitors; no reference price"),
        id="fallback-reference-missing",
    ),
    pytest.param(
        {"ceiling": "95.00"}, {"fallback": "cap"},
        Reprice(D("95.00"), "no competitors: at the ceiling 95.00"),
        id="fallback-cap-sell-is-ceiling",
    ),
    pytest.param(
        {"floor": "90.00"}, {"fallback": "cap"},
        Hold("no competitors; no ceiling set"),
        id="fallback-cap-unset",
    ),
]


@pytest.mark.parametrize(("context", "params", "expected"), EMPTY_CASES)
def test_undercut_no_competitors(
    context: dict[str, Any], params: dict[str, Any], expected: Decision
) -> None:
    assert decide(ctx(own("SELL", "93.00"), (), **context), **params) == expected


@pytest.mark.parametrize("fallback", ["hold", "reference", "cap"])
def test_undercut_market_down_is_not_an_empty_market(fallback: str) -> None:
    context = ctx(own("SELL"), (), ceiling="95.00", reference=REF, capabilities={"reference_price"})
    expected = Hold("no market data: the 'market' capability is down")
    assert decide(context, fallback=fallback) == expected


def test_undercut_fewer_competitors_than_rank() -> None:
    context = ctx(own("BUY", "92.00"), BUY3[:2], floor="91.00")
    assert decide(context, target_rank=3) == Hold("only 2 competitor(s) for rank 3")
    assert decide(context, target_rank=3, fallback="cap") == Reprice(
        D("91.00"), "only 2 competitor(s) for rank 3: at the floor 91.00"
    )


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"step": "0"}, "step"),
        ({"target_rank": 0}, "target_rank"),
        ({"at_floor": "jump"}, "at_floor"),
        ({"fallback": "panic"}, "fallback"),
        ({"stepp": "0.01"}, "stepp"),
    ],
)
def test_undercut_params_rejects(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        UndercutParams(**raw)


# --- properties: whatever the market, never past the limit and never out of place ----------

prices = st.decimals(min_value=Decimal("80"), max_value=Decimal("100"), places=2)


@given(
    side=st.sampled_from(list(Side)),
    raw=st.lists(prices, max_size=6),
    bound=st.one_of(st.none(), prices),
    step=st.sampled_from([D("0.01"), D("0.05"), D("0.5")]),
    rank=st.integers(1, 4),
    at_floor=st.sampled_from(["hold", "sit"]),
)
def test_undercut_properties(
    side: Side, raw: list[Decimal], bound: Decimal | None, step: Decimal, rank: int, at_floor: str
) -> None:
    comps = tuple(comp(f"c{i}", str(p)) for i, p in enumerate(sorted(raw, key=side.sort_key)))
    limits = {"floor": str(bound)} if side is Side.SELL else {"ceiling": str(bound)}
    context = ctx(own(side.value, "90.00"), comps, **(limits if bound is not None else {}))
    decision = decide(context, step=step, target_rank=rank, at_floor=at_floor)
    if not isinstance(decision, Reprice):
        return
    if bound is not None:
        assert not side.better(decision.price, bound)
    if decision.competitor is not None:
        j = next(i for i, c in enumerate(comps) if c.adv_no == decision.competitor)
        assert j >= rank - 1
        assert not side.better(comps[j].price, decision.price)
        if j > 0:
            assert not side.better(decision.price, comps[j - 1].price)


# --- issue 10 item 6: the decision names the competitor and the relation -------------------


def test_decision_carries_the_relation_to_the_competitor_it_names() -> None:
    off_tick = market("SELL", ("alpha", "0.993"), ("bravo", "1.01"))
    decision = decide(ctx(own("SELL", "1.05"), off_tick), step="0.001")
    assert isinstance(decision, Reprice)
    assert (decision.price, decision.relation, decision.target, decision.target_name) == (
        D("0.992"), "beat", D("0.993"), "'alpha'")
    tied = market("SELL", ("alpha", "92.40"), ("bravo", "92.40"))
    level = decide(ctx(own("SELL", "93.00"), tied), target_rank=2)
    assert isinstance(level, Reprice) and level.competitor == "adv-bravo"
    assert (level.relation, level.target, level.target_name) == ("level", D("92.40"), "'alpha'")


def test_reprice_relation_needs_its_target() -> None:
    with pytest.raises(ValueError, match="go together"):
        Reprice(D("1"), "x", relation="beat")
    with pytest.raises(ValueError, match="'beat', 'level' or None"):
        Reprice(D("1"), "x", relation="ahead", target=D("1"))  # type: ignore[arg-type]


@given(
    side=st.sampled_from(list(Side)),
    raw=st.lists(st.decimals(min_value=Decimal("90"), max_value=Decimal("95"), places=3),
                 min_size=1, max_size=5),
    step=st.sampled_from([D("0.001"), D("0.005"), D("0.01"), D("0.015")]),
    rank=st.integers(1, 3),
)
def test_rounded_price_keeps_the_relation_the_strategy_meant(
    side: Side, raw: list[Decimal], step: Decimal, rank: int
) -> None:
    """Whatever the market's decimals and the step, the price sent after rounding to the
    0.01 tick is still ahead of (or not behind, for "level") the competitor named."""
    from bot.pricing.guards import check

    @dataclass
    class Open:  # no bound, no pacing in the way
        floor: Decimal | None = None
        ceiling: Decimal | None = None
        reference_band: Decimal | None = None
        min_change: Decimal = D(0)
        max_step: Decimal | None = None
        max_drift_per_hour: Decimal | None = None
        max_updates: int = 1000
        update_window: float = 3600.0
        min_interval: float = 0.0

    comps = tuple(comp(f"c{i}", str(p)) for i, p in enumerate(sorted(raw, key=side.sort_key)))
    ad = own(side.value, "80.00" if side is Side.BUY else "99.00")
    decision = decide(ctx(ad, comps), step=step, target_rank=rank)
    if not isinstance(decision, Reprice) or decision.relation is None:
        return
    v = check(decision, ad=ad, limits=Open(), reference=None, now=0.0, updates=[])
    assert v.price is not None and decision.target is not None
    ahead = side.ahead_by(v.price, decision.target)
    assert ahead > 0 if decision.relation == "beat" else ahead >= 0
    assert v.price == v.price.quantize(D("0.01"))
