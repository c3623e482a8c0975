"""The engine's fourth pass (issue 14 item 1): values made directly, or kept from one snapshot to
the next, are what the general way makes."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import replace
from decimal import ROUND_CEILING, Decimal

import pytest

from bot.binance.search import SearchAd, SearchAdvertiser, SearchRow
from bot.pricing import guards, rivals
from bot.pricing.engine import _outcome, _repriced
from bot.pricing.market_book import MarketBook
from state.decisions import DecisionRow
from strategies.base import CompetitorAd, OwnAd, Side
from strategies.filters import RULES, CompetitorFilters

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


def _row(adv_no: str, user_no: str) -> SearchRow:
    ad = SearchAd(adv_no, Decimal("92.00"), None, Decimal(100), Decimal(20000), Decimal(500),
                  frozenset({"SBP"}))
    return SearchRow(ad, SearchAdvertiser(user_no, "peer", True, 100, Decimal("0.99")))


def test_our_ids_in_a_book_are_our_ad_ids_and_the_users_showing_them() -> None:
    ours = frozenset(f"{n:020d}" for n in range(1000))
    rows = [_row("a1", "u1"), _row(f"{7:020d}", "me"), _row("a2", "")]
    first, second = MarketBook(rows, ours), MarketBook(list(reversed(rows)), ours)
    assert first.own_ids == second.own_ids == ours | {"me"}
    assert second.own_ids is first.own_ids  # made once for the same users
    assert MarketBook([_row("a1", "u1")], ours).own_ids == ours  # none of ours shown: no user
    replaced = frozenset(ours | {"x"})
    assert MarketBook(rows, replaced).own_ids == replaced | {"me"}  # new ad ids: made again
    assert MarketBook([_row("x", "other")], replaced).own_ids == replaced | {"other"}


def test_a_rivals_median_is_the_statistics_median() -> None:
    rng = random.Random(3)
    for n in range(0, 40):
        values = [Decimal(rng.choice(("100", "500.00000000", "1000", "92.015", "0.1", "7")))
                  * rng.choice((1, 3, -1)) for _ in range(n)]
        expected = Decimal(statistics.median(sorted(values))) if values else None
        got = rivals._median(iter(values))
        assert got == expected and str(got) == str(expected)


def _ceil_in_decimals(n: int, since: float, window: float) -> int:
    return int((Decimal(n) * Decimal(str(since)) / Decimal(str(window)))
               .to_integral_value(ROUND_CEILING))


def test_the_budgets_ceiling_is_the_decimal_one_near_whole_numbers_too() -> None:
    rng = random.Random(11)
    cases = [(300, 12.0, 3600.0), (300, 12.000000000000002, 3600.0), (300, 11.999999999999998, 3600.0),
             (1, 0.0, 3600.0), (7, -0.0, 60.0), (3, 0.1 + 0.2, 0.3), (10, 0.3, 0.1), (5, 1e300, 1e-300),
             (5, 1e-300, 1e300), (2, 2.0 ** 60, 1.0), (1, 5.0, 3), (1, 5, 3.0)]  # type: ignore[list-item]
    for _ in range(20000):
        n, window = rng.randint(1, 400), rng.choice((3600.0, 1800.0, 600.0, 7200.0, 86400.0, 0.7))
        whole = rng.randint(0, 2 * n)  # a quotient at or about a whole number, and anywhere
        since = rng.choice((whole * window / n, rng.uniform(0, window), float(rng.randint(0, 3600)),
                            math.nextafter(whole * window / n, math.inf),
                            math.nextafter(whole * window / n, -math.inf)))
        cases.append((n, since, window))
    for n, since, window in cases:
        assert guards._ceil_ratio(n, since, window) == _ceil_in_decimals(n, since, window), (
            n, since, window)


def _rival_row(user: str, price: Decimal) -> CompetitorAd:
    return CompetitorAd(adv_no=f"ad-{user}", user_no=user, nickname=f"nick-{user}", price=price,
                        min_amount=Decimal(2000), max_amount=Decimal(50000),
                        available=Decimal(1000), month_orders=321, completion_rate=Decimal("0.97"))


@pytest.mark.slow  # 600 snapshots a side: a quarter second each (docs/testing.md)
@pytest.mark.parametrize("side", list(Side))
def test_a_profile_from_what_it_derived_before_is_the_profile_made_afresh(side: Side) -> None:
    """Snapshots every few seconds, rivals repricing and answering our moves, the window and
    the event cap dropping the oldest: each profile equals the one derived from scratch."""
    rng = random.Random(21)
    book = rivals.RivalBook(side, rivals.RivalSettings(window=300.0, max_events=6, max_rivals=8))
    prices = {f"u{n}": Decimal("92.00") + Decimal(n) / 100 for n in range(12)}
    ours, at = Decimal("92.05"), 0.0
    for _ in range(600):
        at += rng.choice((1.0, 3.0, 10.0, 45.0))
        for user in rng.sample(sorted(prices), 3):
            prices[user] += Decimal(rng.choice((-2, -1, 1, 2))) / 100
        shown = sorted(rng.sample(sorted(prices), rng.randint(0, 10)), key=prices.__getitem__)
        book.observe(at, [_rival_row(u, prices[u]) for u in shown], ours)
        if rng.random() < 0.3:
            ours += Decimal(rng.choice((-3, -1, 1, 3))) / 100
            book.our_move(at, ours)
        for r in book.rivals.values():
            kept = book._profile(r)
            r.derived.clear()
            fresh = book._profile(r)
            assert kept == fresh and kept.to_json() == fresh.to_json()


def _screened_rule_by_rule(table: CompetitorFilters, ads: list[CompetitorAd],
                           own_ids: frozenset[str]) -> tuple[str | None, ...]:
    """`screen` as the rules table defines it: ours by ids, else the first rule on that drops it."""
    rules = [rule for rule in RULES if not rule.per_ad and rule.active(table)]
    return tuple("own" if ad.adv_no in own_ids or ad.user_no in own_ids else
                 next((rule.reason for rule in rules if rule.drops(table, ad, None)), None)
                 for ad in ads)


def test_the_screen_is_the_rules_tables_whatever_the_table() -> None:
    rng = random.Random(8)
    users = [f"u{n}" for n in range(8)]
    for _ in range(300):
        table = CompetitorFilters(
            min_completion_rate=Decimal(rng.choice(("0", "0.9", "0.97"))),
            min_month_orders=rng.choice((0, 10, 200)), merchants_only=rng.random() < 0.3,
            block_users=frozenset(rng.sample(users, rng.randint(0, 2))),
            allow_users=frozenset(rng.sample(users, rng.randint(0, 5)) if rng.random() < 0.3 else ()),
            decoy_max_amount=Decimal(rng.choice((0, 1000, 30000))),
            decoy_min_available=Decimal(rng.choice((0, 50000))),
            min_available=Decimal(rng.choice((0, 100, 700))))
        ads = [CompetitorAd(adv_no=f"a{n}", user_no=rng.choice(users), nickname="", price=Decimal(92),
                            min_amount=Decimal(100), max_amount=Decimal(rng.choice((800, 20000, 150000))),
                            available=Decimal(rng.choice((50, 500, 1000))),
                            is_merchant=rng.random() < 0.5, month_orders=rng.choice((3, 120, 1520)),
                            completion_rate=Decimal(rng.choice(("0.85", "0.95", "0.99"))))
               for n in range(rng.randint(0, 12))]
        own_ids = frozenset(rng.sample([*users, "a1", "a2"], rng.randint(0, 3)))
        assert table.screen(ads, own_ids) == _screened_rule_by_rule(table, ads, own_ids)
        again = table.model_copy()  # an equal table, another object: its own rules, the same
        assert again.screen(ads, own_ids) == table.screen(ads, own_ids)
