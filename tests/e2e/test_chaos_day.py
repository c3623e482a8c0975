"""The chaos day: `stormy` with orders raised, 24 kills, both ads priced, on a stepped clock.

The simulator runs the `stormy` scenario (every fault kind at modest rates, flapping
endpoints, the exchange's clock running ahead for five minutes) with orders raised to
about 60 an hour and a smaller market (8 competitors, one a repricing bot: the world
moves in one-second steps, and a step of the 25-ad market costs more than the bot's work
in it). Its clock is stepped by the test (simulator.clock: each sleeper of the bot and of
the simulator wakes when the clock reaches its deadline, in order; the loop is run until
quiet between two moves). The real Bot runs in the test's loop on that
clock: a simulated day takes seconds, and the same seed gives the same day.

The bot is killed 24 times at seeded random points: at the n-th exchange request it
sends (the exchange has done it; the answer never comes back), at the n-th chat frame
(stored by the exchange, or lost on the way), just before or just after the n-th commit
to its store, or at a moment. Half of the kills land in the first requests after a
restart, the rest at random times of the day. A kill (tests.e2e.support.Lives.kill)
models SIGKILL: at that instant the store connection is closed without a commit (SQLite
rolls the open transaction back, as it does for a process that died), the client sends
nothing more, the chat socket is cut without a close frame, and every task of the bot is
cancelled. No graceful stop runs: no bus settle, no outbox finishing; whatever the
cancelled tasks do on their way out can no longer reach the store, the exchange or the
socket. A new Bot is then built on the same store file and started. What this does not
model: a kill between two instructions of one step (only effects crossing the process
boundary matter, and those all happen at an await, so the await points are the kill
points), and a half-written request or frame (on loopback a request leaves whole or not
at all: the cancellation point stands for both cases).

The judge is the simulator's own record (what was sent, each order's statuses, each ad's
price); the bot's store only tells which statuses it saw, which decides what is owed:
- no message twice: at most one message per configured reaction (new, buyer_paid,
  completed) of each status the order reached, none for a status it never reached;
- none missing: the messages owed (see `_owed`: each status the bot saw the order in,
  under the desk's rules) were all delivered, and the path of statuses the bot stored
  for each order is the exchange's own;
- no 418 (IP ban) answer in the simulator's request log. While the bot still sends
  again inside a 429's Retry-After (the stormy 429 fault), it is banned: the test then
  ends as xfail once everything else that a ban leaves judgeable has been asserted
  (a banned bot sends nothing for the ban's length, so `missing` is judged only without);
- no ad update that left an ad outside its floor/ceiling: the exchange's own ad is
  checked right after each update it accepted (the floating BUY ad included: its
  ratio 101.5 pushes it against its ceiling all day);
- the share of time the floating ad spent outside its bounds between updates (sampled
  once a simulated minute) is reported, not asserted: the reference moves it without
  any update from the bot.

    .venv/bin/python -m pytest -q -s tests/e2e/test_chaos_day.py
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.chat.session import ChatTimings
from bot.orders.track import REACTION_OF
from simulator.app import Simulator, run_simulator
from simulator.gateway import RequestLog
from simulator.scenario import SCENARIO_DIR, Scenario, parse_scenario
from tests.e2e.support import (
    Life,
    Lives,
    Stepper,
    every_life,
    loop_watch,
    settle,
)

pytestmark = pytest.mark.slow  # a simulated day and its closing, 24 kills

SEED = int(os.environ.get("P2PBOT_CHAOS_SEED", "20251125"))
START_MS = 1_751_796_000_000
DAY_MS = 24 * 3600 * 1000
CLOSING_MS = 3 * 3600 * 1000  # after the day: no new orders, the open ones run out
KILLS = 24
ORDERS_PER_AD_HOUR = 30  # two ads: about 60 orders an hour
SELL_AD, BUY_AD = "12000000000000000001", "12000000000000000002"
SELL_GUARDS = (Decimal("91.00"), Decimal("95.00"))
BUY_GUARDS = (Decimal("88.00"), Decimal("93.00"))
TEXTS = {"new": "Hi {nickname}, order {order_no}: pay {total} {fiat} by {pay_method}.",
         "buyer_paid": "Paid noted: {order_no}.", "completed": "Thanks for {order_no}!"}
KIND_OF = {"Hi ": "new", "Paid noted": "buyer_paid", "Thanks for": "completed"}

CONFIG = f"""
[bot]
market_interval = 120
reference_interval = 120
my_ads_interval = 300
orders_interval = 120

[capabilities]
probe_first = 5
probe_cap = 60
probe_jitter = 0

[[ads]]
name = "sell"
adv_no = "{SELL_AD}"
strategy = "undercut"
[ads.params]
step = "0.01"
[ads.filters]
min_completion_rate = "0"
decoy_max_amount = "1000"
[ads.guards]
floor = "{SELL_GUARDS[0]}"
ceiling = "{SELL_GUARDS[1]}"
max_updates = 30
min_interval = 10

[[ads]]
name = "buy"
adv_no = "{BUY_AD}"
strategy = "follow_reference"
[ads.params]
ratio = "101.5"
[ads.guards]
floor = "{BUY_GUARDS[0]}"
ceiling = "{BUY_GUARDS[1]}"
max_updates = 30
min_interval = 10

[orders]
stuck_after_minutes = 60

[orders.on.new]
chat = "{TEXTS['new']}"
[orders.on.buyer_paid]
chat = "{TEXTS['buyer_paid']}"
[orders.on.completed]
chat = "{TEXTS['completed']}"

[chat]
outbox_expiry_minutes = 30

[web]
enabled = false
"""


def stormy(seed: int) -> Scenario:
    """`stormy` as shipped, with orders raised, known ad numbers and no real-time pings."""
    raw = tomllib.loads((SCENARIO_DIR / "stormy.toml").read_text(encoding="utf-8"))
    raw["sim"]["seed"] = seed
    world = raw["world"]
    world["markets"] = [{**world["markets"][0], "competitors": 8, "bots": 1, "decoys": 1}]
    world["own_ads"][0]["adv_no"], world["own_ads"][1]["adv_no"] = SELL_AD, BUY_AD
    world["orders"] = {**world["orders"], "rate_per_hour": ORDERS_PER_AD_HOUR, "rank_decay": "1",
                       "pay_seconds": [30, 600], "release_seconds": [30, 900],
                       "appeal_seconds": [300, 1200]}
    world["chat"] = {**world["chat"], "ping_interval_seconds": 0}
    return parse_scenario(raw, "stormy (chaos day)")


class Killer:
    """Arms one kill per life, at a seeded random point, and fires it from inside."""

    KINDS = ("request", "request", "frame", "frame_lost", "commit_before", "commit_after",
             "moment")

    def __init__(self, sim: Simulator, lives: Lives, rng: random.Random) -> None:
        self.lives, self.rng = lives, rng
        self.kind, self.left, self.not_before, self.at = "", 0, 0, 0
        self.fired = False
        self.kinds: Counter[str] = Counter()
        world = sim.world
        handle, receive = world.handle, world.chatlog.receive  # type: ignore[attr-defined]

        def on_request(endpoint: str, query: dict[str, str], body: Any) -> Any:
            answer = handle(endpoint, query, body)
            self._tick("request", world.clock.now_ms())  # type: ignore[attr-defined]
            return answer

        def on_frame(text: str, now_ms: int, has_order: Any) -> Any:
            if '"text"' in text and self._tick("frame_lost", now_ms):
                return []  # the frame never reached the exchange
            answer = receive(text, now_ms, has_order)
            if '"text"' in text:
                self._tick("frame", now_ms)
            return answer

        world.handle = on_request  # type: ignore[attr-defined]
        world.chatlog.receive = on_frame  # type: ignore[attr-defined]

    def arm(self, now_ms: int, early: bool) -> None:
        """The next kill: early (in the first events of a life) or some time later."""
        self.kind = self.rng.choice(self.KINDS)
        self.left = self.rng.randint(1, 3 if self.kind.startswith("frame") else 8)
        self.not_before = now_ms if early else now_ms + self.rng.randint(5 * 60_000, 90 * 60_000)
        self.at = self.not_before + (self.rng.randint(0, 60_000) if early else 0)
        self.fired = False

    def disarm(self) -> None:
        """No more kills."""
        self.kind = ""

    def on_commit(self, when: str) -> None:
        """The store's hook (tests.e2e.support.InlineConnection.on_commit)."""
        self._tick(f"commit_{when}", self.lives.sim.clock.now_ms())

    def moment(self, now_ms: int) -> None:
        """Called at every step: fires a `moment` kill once its time has come."""
        if self.kind == "moment" and now_ms >= self.at:
            self._fire()

    def _tick(self, kind: str, now_ms: int) -> bool:
        if kind != self.kind or now_ms < self.not_before:
            return False
        self.left -= 1
        if self.left > 0:
            return False
        self._fire()
        return True

    def _fire(self) -> None:
        self.kinds[self.kind] += 1
        self.lives.kill(self.kind)
        self.kind, self.fired = "", True


class Judge:
    """What the test measures on the exchange's side while the day runs."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.account = sim.world.account  # type: ignore[attr-defined]
        self.bad_updates: list[tuple[int, str, Decimal]] = []
        self.updates: Counter[str] = Counter()
        self.samples = 0
        self.outside = 0
        guards = {SELL_AD: SELL_GUARDS, BUY_AD: BUY_GUARDS}
        update = self.account.update_ad

        def checked(body: Any, now_ms: int) -> Any:
            answer = update(body, now_ms)
            adv_no = str(body.get("advNo"))
            ad = self.account.ads[adv_no]
            low, high = guards[adv_no]
            self.updates[adv_no] += 1
            if not low <= ad.price <= high:
                self.bad_updates.append((now_ms, adv_no, ad.price))
            return answer

        self.account.update_ad = checked

    def sample(self) -> None:
        """Once a simulated minute: is the floating ad inside its bounds right now?"""
        ad = self.account.ads[BUY_AD]
        self.samples += 1
        self.outside += not BUY_GUARDS[0] <= ad.price <= BUY_GUARDS[1]


async def run_day(tmp: Path, seed: int) -> dict[str, Any]:
    """The whole day and its closing; the figures."""
    rng = random.Random(f"{seed}:kills")
    config = tmp / "bot.toml"
    config.write_text(CONFIG, encoding="utf-8")
    timings = ChatTimings(keepalive=60, silence=20, ack=30, rest_poll=30)
    async with run_simulator(stormy(seed), start_ms=START_MS, stepped=True) as sim:
        sim.gateway.log = RequestLog(maxlen=2_000_000)
        lives = Lives(sim, config, tmp / "bot.db", seed, timings)
        killer = Killer(sim, lives, rng)
        judge = Judge(sim)

        def hook(life: Life) -> None:
            assert life.store is not None
            life.store.db.on_commit = killer.on_commit  # type: ignore[attr-defined]

        lives.on_life = hook
        stepper = Stepper(sim)
        with loop_watch(lives):
            lives.start()
            killer.arm(sim.clock.now_ms(), early=False)
            end = START_MS + DAY_MS
            next_sample = START_MS
            closing = False
            while sim.clock.now_ms() < end + CLOSING_MS:
                now = sim.clock.now_ms()
                if now >= end and not closing:
                    closing = True
                    killer.disarm()
                    book = sim.world.orders  # type: ignore[attr-defined]
                    book.cfg = book.cfg.model_copy(update={"rate_per_hour": Decimal(0)})
                await stepper.to(min(now + 60_000, next_sample + 60_000))
                killer.moment(sim.clock.now_ms())
                if sim.clock.now_ms() >= next_sample:
                    judge.sample()
                    next_sample += 60_000
                if killer.fired:
                    await lives.bury()
                    await stepper.to(sim.clock.now_ms() + rng.randint(1_000, 20_000))
                    lives.start()
                    if len(lives.kills) < KILLS and not closing:
                        killer.arm(sim.clock.now_ms(), early=rng.random() < 0.5)
                    else:
                        killer.disarm()
                    killer.fired = False
                if closing and _settled(sim, tmp / "bot.db"):
                    break
            await settle()
            await lives.stop()
        return _figures(sim, tmp / "bot.db", lives, killer, judge, stepper)


def _settled(sim: Simulator, db: Path) -> bool:
    """Every order final at the exchange, and nothing left to send or follow in the store."""
    if any(o.status in (1, 2, 3) for o in sim.world.orders.orders.values()):  # type: ignore[attr-defined]
        return False
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        busy = conn.execute("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')")
        open_ = conn.execute("SELECT COUNT(*) FROM orders WHERE status IN (1, 2, 3)")
        return busy.fetchone()[0] == 0 and open_.fetchone()[0] == 0


def _figures(sim: Simulator, db: Path, lives: Lives, killer: Killer, judge: Judge,
             stepper: Stepper) -> dict[str, Any]:
    history = {no: [s for _, s in o.history]
               for no, o in sim.world.orders.orders.items()}  # type: ignore[attr-defined]
    sent = [s for s in sim.world.chatlog.sent if s["accepted"]]  # type: ignore[attr-defined]
    got: Counter[tuple[str, str]] = Counter()
    for s in sent:
        kind = next((k for prefix, k in KIND_OF.items() if s["content"].startswith(prefix)), "?")
        assert s["orderNo"] in s["content"], s
        got[(s["orderNo"], kind)] += 1
    owed, allowed = _owed(history, _transitions(db))
    statuses = Counter(r["status"] for r in sim.requests())
    return {
        "life_errors": [f"life {life.number}: {life.error!r}" for life in every_life(lives)
                        if life.error is not None],
        "orders": len(history), "messages": len(sent), "owed": len(owed),
        "kills": len(lives.kills), "kill_kinds": dict(killer.kinds), "steps": stepper.steps,
        "paths_differ": sorted(no for no, path in _paths(db).items() if path != history.get(no))
        + sorted(set(history) - set(_paths(db))),
        "duplicates": sorted(k for k, n in got.items() if n > 1),
        "missing": sorted(owed - set(got)), "unexpected": sorted(set(got) - allowed),
        "requests": sum(statuses.values()), "http": dict(statuses),
        "bans": statuses.get(418, 0), "updates": dict(judge.updates),
        "bad_updates": judge.bad_updates,
        "floating_outside": round(judge.outside / judge.samples, 4) if judge.samples else 0.0,
        "ended_h": round((sim.clock.now_ms() - START_MS) / 3_600_000, 2),
    }


def _transitions(db: Path) -> list[tuple[str, int, float, int]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT order_number, new, at, inferred FROM order_transitions "
                            "ORDER BY id").fetchall()


def _paths(db: Path) -> dict[str, list[int]]:
    paths: dict[str, list[int]] = {}
    for no, new, _, _ in _transitions(db):
        paths.setdefault(no, []).append(new)
    return paths


def _owed(history: dict[str, list[int]], transitions: list[tuple[str, int, float, int]],
          ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(the messages owed, the messages allowed), as (order number, reaction) pairs.

    Allowed: one message per configured reaction of each status the order reached (the
    simulator's history). Owed, of those: each status the bot saw the order in while it was
    in it (stored from a read or a chat frame, not inferred), as the desk's rules react:
    `new` for an order that went on to be paid (one cancelled from trading may go
    ungreeted: its greeting waits for the order's details), `buyer_paid` and `completed`
    for an order the bot knew before that status (an order first seen completed gets no
    late messages).
    """
    seen: dict[str, list[tuple[int, float, int]]] = {}
    for no, new, at, inferred in transitions:
        seen.setdefault(no, []).append((new, at, inferred))
    allowed = {(no, REACTION_OF[s]) for no, path in history.items() for s in path
               if REACTION_OF.get(s) in TEXTS}
    owed: set[tuple[str, str]] = set()
    for no, path in history.items():
        steps = seen.get(no, [])
        first = min((at for _, at, _ in steps), default=None)
        direct = {new: at for new, at, inferred in steps if not inferred}
        if direct.keys() & {1, 2, 3} and 2 in path:
            owed.add((no, "new"))
        for status in (2, 4):
            if status in direct and first is not None and first < direct[status]:
                owed.add((no, REACTION_OF[status]))
    return owed, allowed



async def test_a_stormy_day_with_24_kills_loses_no_reaction_and_doubles_none(
        tmp_path: Path, inline_store: None) -> None:
    fig = await run_day(tmp_path, SEED)
    print(f"\nchaos day (seed {SEED}):", {k: len(v) if isinstance(v, list) else v
                                         for k, v in fig.items()})
    assert fig["life_errors"] == []
    assert fig["kills"] >= 20
    assert fig["orders"] >= 600, "the day was too quiet to prove anything"
    assert fig["duplicates"] == []
    assert fig["unexpected"] == []
    assert fig["bad_updates"] == []
    assert all(fig["updates"].get(ad, 0) > 0 for ad in (SELL_AD, BUY_AD))
    assert fig["bans"] == 0
    assert fig["paths_differ"] == []
    assert fig["missing"] == []
