"""The bot on the `stormy` scenario (its 429 faults included) never gets banned.

The bot and the simulator share a driven clock (tests/support.py: run_driven): simulated hours in a few
real seconds, with the latency faults in simulated time. bench/bans.py runs a whole day.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_driven

pytestmark = pytest.mark.slow  # an hour and a half of stormy, every request through the bot

HOURS = 1.5


async def test_stormy_with_its_429s_gets_no_ban(tmp_path: Path) -> None:
    tally = await run_driven(tmp_path / "bot.db", scenario="stormy", hours=HOURS)
    print(f"\n{tally}")
    assert tally.faults_429 >= 3, "too few 429s to prove anything"
    assert tally.rate_limited >= tally.faults_429  # each one reached the bot, none was missed
    assert tally.bans == 0
