"""Replay is faithful: the bot run on the stepped simulator, recorded, and replayed with the same
config gives the same decisions (same prices, same holds) at the same times."""

from __future__ import annotations

import aiosqlite
import pytest

from bot.chat import ChatTimings
from bot.replay.runner import replay
from bot.replay.world import build
from config.loader import load_config
from simulator.app import run_simulator
from state.db import Store
from state.recording import RecordingLog
from tests.e2e.helpers import SELL_AD, write_config
from tests.e2e.virtual import Lives, Stepper, inline_sqlite, loop_watch

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
HOURS = 2.0


@pytest.fixture
def inline_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's SQLite in the loop's thread (tests.e2e.virtual.InlineConnection)."""
    monkeypatch.setattr(aiosqlite, "connect", inline_sqlite)


async def record(tmp_path, body: str, scenario: str = "price_war", seed: int = 7,
                 hours: float = HOURS):  # type: ignore[no-untyped-def]
    """Run the bot for `hours` on the stepped simulator; the recorded rows and the config."""
    config = write_config(tmp_path, body)
    db = tmp_path / "bot.db"
    async with run_simulator(scenario, start_ms=START_MS, stepped=True, seed=seed) as sim:
        lives = Lives(sim, config, db, seed, ChatTimings())
        with loop_watch(lives):
            life = lives.start()
            await Stepper(sim).to(START_MS + int(hours * 3600_000))
            await lives.stop()
            assert life.error is None, life.error
    store = await Store.open(db)
    try:
        entries = [(e.at, e.kind, e.body) async for e in RecordingLog(store).read()]
    finally:
        await store.close()
    return config, entries


def key(d) -> tuple:  # type: ignore[no-untyped-def]
    return (d["result"], d["target"], d["reason"])


async def test_replay_of_a_recorded_run_with_the_same_config_reproduces_every_decision(
        tmp_path, inline_store) -> None:  # type: ignore[no-untyped-def]
    config, entries = await record(tmp_path, SELL_AD.format(floor="91.00", ceiling="96.00"))
    history = build(entries)
    assert len(history.steps) > 500  # a search every 10 s for two hours
    run = await replay("same", load_config(config), history)
    (ad,) = run.ads
    live = ad.recorded
    replayed = [s.row for s in ad.samples]
    assert len(replayed) == len(live)
    applied = [d for d in live if d["result"] == "applied"]
    held = [d for d in live if d["result"] == "held"]
    assert len(applied) > 20 and len(held) > 20, (len(applied), len(held))
    mismatches = [(d["at"] if "at" in d else i, key(d), (r.result, r.target and str(r.target),
                                                         r.reason))
                  for i, (d, r) in enumerate(zip(live, replayed, strict=True))
                  if key(d) != (r.result, r.target and str(r.target), r.reason)]
    assert mismatches == [], mismatches[:3]
    assert not any(s.diverged for s in ad.samples)
    print(f"\nreplayed {len(live)} decisions: {len(applied)} applied, {len(held)} held, 0 differ")
