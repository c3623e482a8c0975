"""The adaptive market cadence's pure planner (issue 14, item 3): moves -> fast, quiet -> slow,
a failing search -> slow, and the market reads' cap planned across all markets."""

from __future__ import annotations

import pytest

from bot.pricing.cadence import (
    CAPPED,
    FAILING,
    MOVING,
    QUIET,
    RANK_LOST,
    SLOWING,
    Band,
    Cadence,
    Pace,
    plan,
    signals,
    want,
)

BAND = Band(fast=1.0, slow=10.0, market_share=0.5)


def test_a_move_or_a_lost_rank_asks_for_the_fast_end() -> None:
    assert want(10.0, moved=True, rank_lost=False, failed=False, band=BAND) == Pace(1.0, MOVING)
    assert want(10.0, moved=False, rank_lost=True, failed=False, band=BAND) == Pace(1.0, RANK_LOST)


def test_quiet_reads_slow_down_to_the_slow_end_and_stay_there() -> None:
    seen, interval = [], 1.0
    for _ in range(6):
        pace = want(interval, moved=False, rank_lost=False, failed=False, band=BAND)
        seen.append((pace.interval, pace.reason))
        interval = pace.interval
    assert seen == [(2.0, SLOWING), (4.0, SLOWING), (8.0, SLOWING), (10.0, QUIET), (10.0, QUIET),
                    (10.0, QUIET)]


def test_it_stays_fast_while_the_last_move_is_recent_then_slows_down() -> None:
    cadence = Cadence(BAND, budget=lambda: 6000.0)
    cadence.add("m", "m")
    cadence.read("m", [("r1", "93.00")], 0.0)
    cadence.read("m", [("r1", "92.90")], 1.0)  # a move at 1 s
    paces = [cadence.read("m", [("r1", "92.90")], t) for t in (2.0, 20.0, 30.9, 31.0, 33.0)]
    assert [(p.interval, p.reason) for p in paces] == [
        (1.0, MOVING), (1.0, MOVING), (1.0, MOVING), (2.0, SLOWING), (4.0, SLOWING)]


def test_a_failing_search_sits_at_the_slow_end_even_when_it_was_moving() -> None:
    assert want(1.0, moved=True, rank_lost=True, failed=True, band=BAND) == Pace(10.0, FAILING)


def test_under_the_cap_every_market_keeps_what_it_asked() -> None:
    wants = {"a": Pace(1.0, MOVING), "b": Pace(10.0, QUIET)}
    assert plan(wants, weight=1, cap_per_minute=3000) == wants


@pytest.mark.parametrize("markets", [10, 100, 1000])
def test_many_markets_are_each_slower_and_never_above_the_cap(markets: int) -> None:
    cap = 0.5 * 6000  # the default share of the default budget: 3000 weight a minute
    wants = {i: Pace(1.0, MOVING) for i in range(markets)}
    planned = plan(wants, weight=1, cap_per_minute=cap)
    spend = sum(60 / p.interval for p in planned.values())
    assert spend <= cap * (1 + 1e-9)
    if markets * 60 > cap:  # 60 a minute each at 1 s: more than the cap holds
        assert spend == pytest.approx(cap)
        assert all(p.reason.startswith(CAPPED) for p in planned.values())
        assert len({round(p.interval, 6) for p in planned.values()}) == 1  # an even share
    else:
        assert all(p == Pace(1.0, MOVING) for p in planned.values())


def test_the_cap_slows_the_fast_markets_first_and_leaves_the_quiet_ones() -> None:
    wants = {"quiet": Pace(10.0, QUIET), **{f"busy{i}": Pace(1.0, MOVING) for i in range(3)}}
    planned = plan(wants, weight=1, cap_per_minute=66)  # quiet spends 6; 60 left for three
    assert planned["quiet"] == Pace(10.0, QUIET)
    assert all(planned[f"busy{i}"].interval == pytest.approx(3.0) for i in range(3))
    assert sum(60 / p.interval for p in planned.values()) == pytest.approx(66)


def test_the_cap_wins_over_the_slow_end() -> None:
    wants = {i: Pace(10.0, QUIET) for i in range(20)}  # 120 a minute at the slow end
    planned = plan(wants, weight=1, cap_per_minute=60)
    assert all(p.interval == pytest.approx(20.0) for p in planned.values())


def test_signals_a_move_in_the_top_rows_and_a_rank_lost() -> None:
    before = [("r1", "93.00"), ("me", "93.10"), ("r2", "93.20")]
    assert signals(None, before, {"me"}) == (False, False)  # the first read: nothing to compare
    assert signals(before, list(before), {"me"}) == (False, False)
    moved = [("r1", "92.90"), ("me", "93.10"), ("r2", "93.20")]
    assert signals(before, moved, {"me"}) == (True, False)
    lost = [("r1", "93.00"), ("r3", "93.05"), ("me", "93.10"), ("r2", "93.20")]
    assert signals(before, lost, {"me"}) == (True, True)
    gone = [("r1", "93.00"), ("r2", "93.20")]
    assert signals(before, gone, {"me"}) == (True, True)


def test_a_failing_market_never_starves_the_others() -> None:
    cadence = Cadence(Band(fast=1.0, slow=10.0, market_share=0.5), budget=lambda: 140.0)
    for key in ("ok", "broken"):  # a cap of 70 a minute: both at 1 s would need 120
        cadence.add(key, key)
    rows = [("r1", "93.00")]
    cadence.read("ok", rows, 0.0)
    cadence.failed("broken")
    cadence.read("ok", [("r1", "92.00")], 1.0)  # moving
    assert cadence.markets["broken"].pace == Pace(10.0, FAILING)
    assert cadence.interval("ok") == pytest.approx(1.0)  # 60 + 6 <= 70: the cap holds both
    assert cadence.weight_per_minute() <= 70 + 1e-9
    assert cadence.snapshot()["broken"] == {"interval": 10.0, "why": FAILING}


# --- the config: [cadence], and what [bot] market_interval becomes ---------------------------


def _band(tmp_path, text: str) -> Band:  # type: ignore[no-untyped-def]
    from tests.test_config import load

    return load(tmp_path, text).app.band()


def test_the_default_band_and_what_market_interval_maps_to(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _band(tmp_path, "") == Band(fast=1.0, slow=10.0, market_share=0.5)
    # a file from before the band keeps its fixed interval; with a [cadence] table it is the slow end
    assert _band(tmp_path, "[bot]\nmarket_interval = 30\n") == Band(30.0, 30.0, 0.5)
    assert _band(tmp_path, "[bot]\nmarket_interval = 30\n[cadence]\n") == Band(1.0, 30.0, 0.5)
    assert _band(tmp_path, "[bot]\nmarket_interval = 0.5\n[cadence]\n") == Band(0.5, 0.5, 0.5)
    assert _band(tmp_path, "[bot]\nmarket_interval = 30\n[cadence]\nslow = 20\nfast = 2\n"
                 "market_share = 0.25\n") == Band(2.0, 20.0, 0.25)


@pytest.mark.parametrize(("text", "said"), [
    ("[cadence]\nfast = 20\n", "[cadence] → fast: must not exceed the slow end "
                               "([bot] market_interval = 10 s)"),
    ("[cadence]\nfast = 5\nslow = 3\n", "[cadence] → fast: must not exceed the slow end (slow = 3 s)"),
    ("[cadence]\nfast = 0.1\n", "[cadence] → fast: Input should be greater than or equal to 0.2"),
    ("[cadence]\nslow = 7200\n", "[cadence] → slow: Input should be less than or equal to 3600"),
    ("[cadence]\nmarket_share = 0\n",
     "[cadence] → market_share: Input should be greater than or equal to 0.05"),
    ("[cadence]\nmarket_share = 1.5\n",
     "[cadence] → market_share: Input should be less than or equal to 1"),
    ("[cadence]\nfast = \"1\"\n", "[cadence] → fast: Input should be a number, got \"1\""),
    ("[cadence]\nfastest = 1\n", "[cadence] → fastest: unknown key (did you mean 'fast'? allowed: fast, slow, market_share, calm)"),
    ("[cadence]\ncalm = -1\n", "[cadence] → calm: Input should be greater than or equal to 0"),
])
def test_a_bad_cadence_is_named_by_table_and_key(tmp_path, text: str, said: str) -> None:  # type: ignore[no-untyped-def]
    from tests.test_config import problems

    assert problems(tmp_path, text) == [said]


def test_a_bad_cadence_exits_2_before_any_request(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from p2pbot.cli import main

    path = tmp_path / "bot.toml"
    path.write_text("[cadence]\nfast = 30\nslow = 10\n", encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 2
    assert f"{path}: [cadence] → fast: must not exceed the slow end" in capsys.readouterr().err
