"""The bot on the `stormy` scenario (its 429 faults included) never gets banned.

The bot runs on the simulator's stepped clock (tests.e2e.support.run_tally: time moves only
when the bot has nothing left to do, sleepers wake in deadline order), so a 429's
Retry-After and the bot's wait for it are the same simulated time on a slow or a fast
machine. (On the driven clock it ran on before, a loaded machine let the clock jump while
requests still waited in the bot's scheduler: the bot then sent inside a Retry-After and
was banned.) bench/bans.py runs a whole day.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import run_tally
from tests.support import EXAMPLE

pytestmark = pytest.mark.slow  # an hour and a half of stormy, every request through the bot

HOURS = 1.5


async def test_stormy_with_its_429s_gets_no_ban(tmp_path: Path) -> None:
    tally = await run_tally(tmp_path / "bot.db", EXAMPLE, scenario="stormy", hours=HOURS)
    print(f"\n{tally}")
    assert tally.faults_429 >= 3, "too few 429s to prove anything"
    assert tally.rate_limited >= tally.faults_429  # each one reached the bot, none was missed
    assert tally.bans == 0
