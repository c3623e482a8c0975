"""The reaction and price-war benches run on the stepped clock (issue 14, items 4 and 6).

On the driven clock they read far above the physical limit and changed from run to run: the
clock jumped ahead while the bot's scheduler still held requests. On the stepped clock a
seed gives the same figures every time, and at a fixed 1 s market interval every move of a
competitor is answered within one interval (no timing assertion: simulated seconds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import desk, price_war


@pytest.mark.slow
async def test_desk_reacts_within_one_interval_at_1s(tmp_path: Path) -> None:
    got = await desk.run(1, 4, 5, tmp_path)
    assert got["moves"] >= 5
    assert len(got["reactions"]) == got["moves"], "every move of the competitor is answered"
    assert max(got["reactions"]) <= 1.0, got["reactions"]  # a whole interval at most
    assert got["greetings"], "orders were opened and greeted"


@pytest.mark.slow
async def test_price_war_run_is_the_same_for_a_seed() -> None:
    scenario = price_war.war()
    way = next(w for w in price_war.WAYS if w.name == "default")
    first = await price_war.run(way, 2, 0.05, scenario)
    again = await price_war.run(way, 2, 0.05, scenario)
    assert first["samples"] == 36
    assert first == again
