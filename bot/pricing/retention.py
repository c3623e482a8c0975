"""Keeping the store's size flat over months: decisions older than the retention are deleted.

The cleanup is incremental: one pass deletes at most `batch` rows (a short write
transaction that never holds the store for long), and while passes come back full
the next one follows after a short pause; once caught up it runs once an hour.
"""

from __future__ import annotations

from loguru import logger

from bot.clock import Clock
from state.decisions import DecisionLog

DAY = 86400.0
BATCH = 500  # rows deleted per pass at most
PAUSE = 1.0  # seconds between passes while there is a backlog
INTERVAL = 3600.0  # seconds between passes once caught up


def next_delay(deleted: int, batch: int = BATCH) -> float:
    """A full pass means more is waiting: come back soon; otherwise in an hour."""
    return PAUSE if deleted >= batch else INTERVAL


class DecisionRetention:
    """Deletes decisions last made more than `days` ago, a batch at a time."""

    def __init__(self, log: DecisionLog, clock: Clock, days: int, batch: int = BATCH) -> None:
        self.log = log
        self.clock = clock
        self.days = days
        self.batch = batch
        self.deleted = 0  # in all, since start

    async def prune_once(self) -> int:
        """One pass: at most `batch` rows older than the retention; returns how many went."""
        cutoff = self.clock.time() - self.days * DAY
        deleted = await self.log.prune(cutoff, self.batch)
        self.deleted += deleted
        return deleted

    async def run(self) -> None:
        """Prune until cancelled."""
        while True:
            deleted = await self.prune_once()
            if deleted:
                logger.debug("retention: deleted {} decisions older than {} days", deleted, self.days)
            await self.clock.sleep(next_delay(deleted, self.batch))
