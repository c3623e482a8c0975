"""Replay is faithful: the bot run on the stepped simulator, recorded, and replayed with the same
config gives the same decisions (same prices, same holds) at the same times."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat.session import ChatTimings
from bot.recording import data
from config.loader import load_config
from p2pbot.backtest.runner import replay
from p2pbot.backtest.world import build
from p2pbot.cli import main
from simulator.app import run_simulator
from state.db import Store
from state.recording import RecordingLog
from tests.e2e.support import SELL_AD, Lives, Stepper, loop_watch, write_config

pytestmark = pytest.mark.slow  # a recorded run of the bot, then its replay


START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
HOURS = 1.0


async def record(tmp_path, body: str, scenario: str = "price_war", seed: int = 7,
                 hours: float = HOURS, bot: str = ""):  # type: ignore[no-untyped-def]
    """Run the bot for `hours` on the stepped simulator: the config, the store, the requests."""
    config = write_config(tmp_path, body, bot)
    db = tmp_path / "bot.db"
    async with run_simulator(scenario, start_ms=START_MS, stepped=True, seed=seed) as sim:
        lives = Lives(sim, config, db, seed, ChatTimings())
        with loop_watch(lives):
            life = lives.start()
            await Stepper(sim).to(START_MS + int(hours * 3600_000))
            await lives.stop()
            assert life.error is None, life.error
        requests = [(r["endpoint"], r.get("status"), r.get("at_ms")) for r in sim.requests()]
    return config, db, requests


async def entries_of(db):  # type: ignore[no-untyped-def]
    store = await Store.open(db)
    try:
        return [(e.at, e.kind, e.body) async for e in RecordingLog(store).read()]
    finally:
        await store.close()


def key(d) -> tuple:  # type: ignore[no-untyped-def]
    return (d["result"], d["target"], d["reason"])


async def test_replay_of_a_recorded_run_with_the_same_config_reproduces_every_decision(
        tmp_path, inline_store) -> None:  # type: ignore[no-untyped-def]
    config, db, _ = await record(tmp_path, SELL_AD.format(floor="91.00", ceiling="96.00"))
    out = tmp_path / "day.jsonl.gz"  # exported as a merchant shares it: pseudonymised
    argv = ["export", "--db", str(db), "--from", "2025-12-31", "--out", str(out)]
    assert await asyncio.to_thread(main, argv) == 0
    exported = data.read(out)
    assert exported.header["pseudonymised"] is True
    history = build(exported.entries)
    assert len(history.steps) > 250  # a search every 10 s for an hour
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


async def test_recording_costs_no_request(tmp_path, inline_store) -> None:  # type: ignore[no-untyped-def]
    """Every recorded snapshot is a search the bot made for pricing anyway; nothing else is asked.

    (Two runs with recording on and off do not send the very same sequence: the recorder's
    writer wakes on the clock too, which reorders tasks woken at the same instant.)"""
    body = SELL_AD.format(floor="91.00", ceiling="96.00")
    runs = {}
    for name, table in (("on", ""), ("off", "\n[recording]\nenabled = false\n")):
        (tmp_path / name).mkdir()
        runs[name] = await record(tmp_path / name, body + table, hours=0.5)
    (_, on_db, on), (_, off_db, off) = runs["on"], runs["off"]
    searched = [r for r in on if r[0] == "search" and r[1] == 200]
    markets = [e for e in await entries_of(on_db) if e[1] == "market"]
    # a search may be a probe of the registry, or its snapshot replaced by a newer one on the bus
    assert len(searched) > 150 and 0.95 * len(searched) <= len(markets) <= len(searched)
    assert {e for e, _, _ in on} == {e for e, _, _ in off}  # no endpoint of its own
    assert await entries_of(off_db) == []
