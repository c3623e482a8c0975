"""Competitor filters: each rule alone, combined, the counts, and ids rather than names."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from strategies.base import CompetitorAd
from strategies.filters import RULES, CompetitorFilters
from tests.plugins_fixture.market import D, comp, own

OWN = own("SELL", "93.00", min_amount="1000", max_amount="50000", pay=("BANK", "UPI"))
OFF = {"overlap_amount": False, "pay_methods": "any"}  # every rule off


def nicks(ads: tuple[CompetitorAd, ...]) -> list[str]:
    return [ad.nickname for ad in ads]


# (filters, the ad that should be dropped, the ad that should be kept, the reason)
RULE_CASES = [
    pytest.param(
        {"overlap_amount": True, "pay_methods": "any"},
        comp("small", "92.0", min_amount="100", max_amount="900"),
        comp("fits", "92.1", min_amount="900", max_amount="1000"),
        "overlap_amount", id="overlap_amount-below-our-min",
    ),
    pytest.param(
        {"overlap_amount": True, "pay_methods": "any"},
        comp("whale", "92.0", min_amount="60000", max_amount="90000"),
        comp("fits", "92.1", min_amount="50000", max_amount="90000"),
        "overlap_amount", id="overlap_amount-above-our-max",
    ),
    pytest.param(
        {**OFF, "min_available": "100"},
        comp("dry", "92.0", available="99.99"), comp("wet", "92.1", available="100"),
        "min_available", id="min_available",
    ),
    pytest.param(
        {"overlap_amount": False},
        comp("wise", "92.0", pay=("Wise",)), comp("upi", "92.1", pay=("UPI", "Wise")),
        "pay_methods", id="pay_methods-own",
    ),
    pytest.param(
        {"overlap_amount": False, "pay_methods": ["Wise"]},
        comp("bank", "92.0", pay=("BANK",)), comp("wise", "92.1", pay=("Wise",)),
        "pay_methods", id="pay_methods-listed",
    ),
    pytest.param(
        {**OFF, "min_completion_rate": "0.95"},
        comp("flaky", "92.0", rate="0.94"), comp("steady", "92.1", rate="0.95"),
        "min_completion_rate", id="min_completion_rate",
    ),
    pytest.param(
        {**OFF, "min_month_orders": 50},
        comp("new", "92.0", orders=49), comp("busy", "92.1", orders=50),
        "min_month_orders", id="min_month_orders",
    ),
    pytest.param(
        {**OFF, "merchants_only": True},
        comp("user", "92.0", merchant=False), comp("merchant", "92.1"),
        "merchants_only", id="merchants_only",
    ),
    pytest.param(
        {**OFF, "block_users": ["s-rival"]},
        comp("rival", "92.0"), comp("other", "92.1"),
        "block_users", id="block_users",
    ),
    pytest.param(
        {**OFF, "allow_users": ["s-friend"]},
        comp("stranger", "92.0"), comp("friend", "92.1"),
        "allow_users", id="allow_users",
    ),
    pytest.param(
        {**OFF, "decoy_max_amount": "1000"},
        comp("bait", "90.0", max_amount="999"), comp("real", "92.1", max_amount="1000"),
        "decoy_max_amount", id="decoy_max_amount",
    ),
    pytest.param(
        {**OFF, "decoy_min_available": "1000"},
        comp("bait", "90.00", available="11"), comp("real", "90.00", available="11.12"),
        "decoy_min_available", id="decoy_min_available-in-fiat",
    ),
]


@pytest.mark.parametrize(("raw", "dropped", "kept", "reason"), RULE_CASES)
def test_each_rule_alone(
    raw: dict[str, Any], dropped: CompetitorAd, kept: CompetitorAd, reason: str
) -> None:
    result = CompetitorFilters(**raw).apply([dropped, kept], OWN, set())
    assert result.kept == (kept,)
    assert result.dropped == {reason: 1}


def test_everything_off_keeps_everything() -> None:
    ads = [comp("a", "92.0", merchant=False, rate="0", orders=0, pay=(), max_amount="1")]
    assert CompetitorFilters(**OFF).apply(ads, OWN, set()).kept == tuple(ads)


def test_combined_counts_each_ad_once_under_its_first_reason() -> None:
    filters = CompetitorFilters(
        merchants_only=True, min_completion_rate=D("0.9"), decoy_max_amount=D("1000"),
        block_users=frozenset({"s-blocked"}),
    )
    ads = [
        comp("mine", "91.00", user="s-me"),
        comp("blocked", "91.10", merchant=False),  # blocked and not a merchant: counted once
        comp("user", "91.20", merchant=False),
        comp("flaky", "91.30", rate="0.5"),
        comp("bait", "91.40", max_amount="500"),  # a decoy that also misses our range
        comp("whale", "91.50", min_amount="60000", max_amount="90000"),
        comp("wise", "91.60", pay=("Wise",)),
        comp("bravo", "92.45"),
        comp("alpha", "92.40"),
    ]
    result = filters.apply(ads, OWN, {"s-me"})
    assert nicks(result.kept) == ["alpha", "bravo"]
    assert result.dropped == {
        "own": 1, "block_users": 1, "merchants_only": 1, "min_completion_rate": 1,
        "decoy_max_amount": 1, "overlap_amount": 1, "pay_methods": 1,
    }
    assert sum(result.dropped.values()) + len(result.kept) == len(ads)


def test_ids_not_names() -> None:
    twin_a = comp("alpha", "92.40", user="s-aaa", adv="1")
    twin_b = comp("alpha", "92.45", user="s-bbb", adv="2")
    blocked = CompetitorFilters(block_users=frozenset({"s-aaa"})).apply([twin_a, twin_b], OWN, set())
    assert blocked.kept == (twin_b,)
    allowed = CompetitorFilters(allow_users=frozenset({"s-aaa"})).apply([twin_a, twin_b], OWN, set())
    assert allowed.kept == (twin_a,)
    by_name = CompetitorFilters(block_users=frozenset({"alpha"})).apply([twin_a, twin_b], OWN, set())
    assert by_name.kept == (twin_a, twin_b)  # a nickname is not an id: nothing blocked


def test_block_wins_over_allow() -> None:
    filters = CompetitorFilters(block_users=frozenset({"s-x"}), allow_users=frozenset({"s-x"}))
    result = filters.apply([comp("x", "92.0")], OWN, set())
    assert result.kept == () and result.dropped == {"block_users": 1}


@pytest.mark.parametrize(
    ("ad", "own_ids"),
    [
        pytest.param(comp("me", "92.0", adv="own-1"), set(), id="this-ad"),
        pytest.param(comp("me", "92.0", adv="777"), {"777"}, id="another-own-ad"),
        pytest.param(comp("me", "92.0", user="s-me"), {"s-me"}, id="own-user"),
    ],
)
def test_own_ads_removed(ad: CompetitorAd, own_ids: set[str]) -> None:
    result = CompetitorFilters().apply([ad], OWN, own_ids)
    assert result.kept == () and result.dropped == {"own": 1}


def test_pay_methods_own_without_methods_is_no_filter() -> None:
    ad = comp("wise", "92.0", pay=("Wise",))
    assert CompetitorFilters().apply([ad], own(pay=()), set()).kept == (ad,)


@pytest.mark.parametrize(
    ("side", "expected"),
    [("SELL", ["low", "tie-1", "tie-2", "high"]), ("BUY", ["high", "tie-1", "tie-2", "low"])],
)
def test_sorted_best_first_ties_keep_exchange_order(side: str, expected: list[str]) -> None:
    ads = [comp("tie-1", "92.00"), comp("high", "93.00"), comp("tie-2", "92.00"), comp("low", "91.00")]
    result = CompetitorFilters(**OFF).apply(ads, own(side), set())
    assert nicks(result.kept) == expected


def test_rules_table_names_its_fields() -> None:
    fields = set(CompetitorFilters.model_fields)
    assert {rule.reason for rule in RULES} - {"own"} == fields


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"min_completion_rate": "95"}, "min_completion_rate"),
        ({"min_available": "-1"}, "min_available"),
        ({"pay_methods": "Wise"}, "pay_methods"),
        ({"block_user": ["s-x"]}, "block_user"),
    ],
)
def test_filters_reject(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        CompetitorFilters(**raw)
