"""The order desk killed at random points while orders flow: nothing lost, nothing twice.

Two tests share the orders, the configuration and the judge:
- `test_kills_at_random_points_...`: 20 kills of the real Bot in this process, on the
  simulator's stepped clock (tests.e2e.support: `Lives.kill` ends a life the way SIGKILL
  ends a process, see its docstring). The kill points are chosen by a seed among: the
  n-th exchange request of a life (the exchange did it, the answer never comes back),
  the n-th chat frame (after the exchange stored it, or lost on the way), just before or
  just after the n-th commit to the store, and a moment. The same seed gives the same
  kills, orders and messages on a slow or a fast machine.
- `test_sigkill_...` (slow): `python run.py run` as a real process on real time, killed
  with a real SIGKILL at the same kinds of points (no commit points: they are inside the
  process), fewer times. Each process is forked from a process that has imported the bot
  (tests/zygote.py), while the one before it runs, and waits on its stdin for its go: a
  restart costs no interpreter start-up. Its two
  echo modes (below) run side by side in one test: both mostly wait on real time.
After every kill, and at the end, each order has exactly one greeting and one message per
status, no frame was sent twice, and every transition is stored. Each runs twice: with
every send echoed, and with half the echoes dropped (the exchange does not always echo:
the bot takes a send without an error frame as sent and confirms it from the chat
history) and the exchange's other habits on (business errors wrapped in -9000,
clientType required).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.chat.session import ChatTimings
from simulator.app import Simulator, run_simulator
from tests import zygote
from tests.e2e.support import (
    REACTIONS,
    START_MS,
    Life,
    Lives,
    Stepper,
    loop_watch,
    scenario,
    sim_post,
    until,
)

KILLS = 20  # in-process, on the stepped clock
REAL_KILLS = 8  # real SIGKILLs of a real process, on real time
ENOUGH = 24  # orders the store knows before the real-time run closes (the judge wants 20)
SEED = int(os.environ.get("P2PBOT_CRASH_SEED", "20250706"))
CONFIG = """
[bot]
orders_interval = 1
[capabilities]
probe_first = 1
probe_jitter = 0
[orders.on.new]
chat = "{greeting}"
notify = true
[orders.on.buyer_paid]
chat = "{paid}"
notify = true
[orders.on.completed]
chat = "{completed}"
[orders.on.cancelled]
chat = "{cancelled}"
[web]
enabled = false
"""
ORDERS = {"rate_per_hour": 3000, "rank_decay": "1", "pay_seconds": [1, 4],
          "release_seconds": [1, 4], "cancel_probability": "0.15", "timeout_probability": "0",
          "appeal_probability": "0"}
TEXTS = {"greeting": "Hi {nickname}, order {order_no}: pay {total} {fiat} by {pay_method}.",
         "paid": "Paid noted: {order_no}.", "completed": "Thanks for {order_no}!",
         "cancelled": "Cancelled {order_no}."}
ECHOES = pytest.mark.parametrize("echo_drop", ["0", "0.5"], ids=["echoed", "echoes-dropped"])
# the bot's chat timings as `run` has them (no [chat] table in CONFIG)
TIMINGS = ChatTimings()


def crash_scenario(echo_drop: str, *, speed: float) -> Any:
    """The desk's quiet market with orders flowing fast; with echoes dropped, the exchange's
    other habits too: -9000 wrappers and clientType required."""
    realism = {} if echo_drop == "0" else {"wrap_business_errors": True,
                                           "require_client_type": True}
    return scenario(speed=speed, orders=ORDERS, chat={"echo_drop_probability": echo_drop},
                    realism=realism)


class Triggers:
    """Counts the exchange's requests and chat frames (and the store's commits) and fires
    `fire()` when the armed one comes round; keeps every text frame the exchange processed."""

    def __init__(self, sim: Simulator) -> None:
        self.kind, self.left = "", 0
        self.frames: list[dict[str, Any]] = []
        self.fire: Any = lambda: None
        world = sim.world
        handle, receive = world.handle, world.chatlog.receive

        def on_request(endpoint: str, query: dict[str, str], body: Any) -> Any:
            answer = handle(endpoint, query, body)  # the exchange did it; no answer comes back
            self.tick("rest")
            return answer

        def on_frame(text: str, now_ms: int, has_order: Any) -> Any:
            if self.tick("chat_lost"):
                return []  # the frame never reached the exchange
            answer = receive(text, now_ms, has_order)
            frame = json.loads(text)
            if frame.get("type") == "text":
                self.frames.append(frame)
            self.tick("chat")
            return answer

        world.handle = on_request  # type: ignore[method-assign]
        world.chatlog.receive = on_frame  # type: ignore[method-assign]

    def arm(self, kind: str, count: int) -> None:
        """Fire at the `count`-th event of `kind` from now."""
        self.kind, self.left = kind, count

    def disarm(self) -> None:
        """No trigger."""
        self.kind = ""

    def tick(self, kind: str) -> bool:
        """One event of `kind`; whether it fired."""
        if kind != self.kind:
            return False
        self.left -= 1
        if self.left > 0:
            return False
        self.kind = ""
        self.fire()
        return True


def pick(rng: random.Random, kinds: list[str]) -> tuple[str, int, float]:
    """The next kill, as the original crash test drew it: (kind, count, wait limit in s)."""
    kind = rng.choice(kinds)
    count = rng.randint(1, 8) if kind in ("rest", "commit_before", "commit_after") \
        else rng.randint(1, 2)
    return kind, count, rng.uniform(0.4, 1.5) if kind == "moment" else 2.5


def order_rate(sim: Simulator, per_hour: Any) -> None:
    """Set the simulator's rate of new orders."""
    book = sim.world.orders
    book.cfg = book.cfg.model_copy(update={"rate_per_hour": Decimal(per_hour)})


async def cancel_the_waiting(sim: Simulator) -> None:
    """Closing time: no new orders, and the orders the simulator would cancel only after
    30 s are cancelled now."""
    order_rate(sim, 0)
    for order in list(sim.world.orders.orders.values()):
        if order.status == 1 and order.next_status == 6:
            await sim_post(sim, f"/_sim/world/orders/{order.order_no}/status", {"status": 6})



@pytest.mark.slow
@ECHOES
async def test_kills_at_random_points_lose_no_reaction_and_duplicate_none(
        tmp_path: Path, inline_store: None, echo_drop: str) -> None:
    rng = random.Random(SEED)
    config = tmp_path / "bot.toml"
    config.write_text(CONFIG.format(**TEXTS))
    db = tmp_path / "bot.db"
    kinds: Counter[str] = Counter()
    async with run_simulator(crash_scenario(echo_drop, speed=0), start_ms=START_MS,
                             stepped=True) as sim:
        lives = Lives(sim, config, db, SEED, TIMINGS)
        triggers = Triggers(sim)
        fired: list[str] = []

        def fire() -> None:
            fired.append(triggers.kind)
            lives.kill("trigger")

        def hook(life: Life) -> None:
            assert life.store is not None
            life.store.db.on_commit = lambda when: triggers.tick(f"commit_{when}")

        triggers.fire, lives.on_life = fire, hook
        stepper = Stepper(sim)
        with loop_watch(lives):
            for _ in range(KILLS):
                lives.start()
                kind, count, limit = pick(rng, ["rest", "rest", "chat", "chat_lost", "moment",
                                                "commit_before", "commit_after"])
                fired.clear()
                triggers.arm(kind, count)
                deadline = sim.clock.now_ms() + int(limit * 1000)
                while not fired and sim.clock.now_ms() < deadline:
                    await stepper.to(min(sim.clock.now_ms() + 100, deadline))
                triggers.disarm()
                kinds[kind if fired or kind == "moment" else f"{kind} (timed out)"] += 1
                lives.kill(kind)
                await lives.bury()
                _no_repeats(sim.world.chatlog.sent, triggers.frames)
                # a restart takes a moment in which the exchange goes on
                await stepper.to(sim.clock.now_ms() + rng.randint(300, 1500))
            await cancel_the_waiting(sim)
            life = lives.start()
            deadline = sim.clock.now_ms() + 60_000
            while not _settled(sim, db):
                assert sim.clock.now_ms() < deadline, "orders still open or unsent"
                await stepper.to(sim.clock.now_ms() + 500)
            await lives.stop()
            assert life.error is None, life.error
        history = {no: [s for _, s in o.history] for no, o in sim.world.orders.orders.items()}
        sent = [s for s in sim.world.chatlog.sent if s["accepted"]]
        dropped = sim.world.chatlog.echoes_dropped
    print(f"\nkills: {dict(kinds)}; orders {len(history)}; messages {len(sent)}; "
          f"echoes dropped {dropped}")
    assert len(lives.kills) == KILLS
    assert sum(n for k, n in kinds.items() if "timed out" not in k) >= KILLS // 2
    assert dropped or echo_drop == "0"
    _check(db, history, sent, triggers.frames)


# --- real SIGKILLs of a real process --------------------------------------------------------

# `run` with its imports done before it is told to go (a line on stdin): the next process
# starts while the current one runs, so its start-up is not on the test's clock
async def spawn(sim: Simulator, tmp: Path, log: Any) -> zygote.Forked:
    """A `run` process, forked from the test's zygote and waiting for its go."""
    env = {**os.environ, "P2PBOT_BASE_URL": sim.base_url, "P2PBOT_API_KEY": sim.api_key,
           "P2PBOT_API_SECRET": sim.api_secret or "", "P2PBOT_DB": str(tmp / "bot.db"),
           "P2PBOT_CONFIG": str(tmp / "bot.toml")}
    return await zygote.spawn("run", cwd=tmp, env=env, stdin=zygote.PIPE, stdout=log, stderr=log,
                              hold=True)


async def go(proc: zygote.Forked) -> None:
    """Let a spawned process run."""
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()


def sigkill(pid: int | None) -> None:
    """SIGKILL, if the process still exists."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
async def test_sigkill_at_random_points_loses_no_reaction_and_duplicates_none(
        tmp_path: Path) -> None:
    """Both echo modes side by side, each with its own simulator, store and processes: the
    runs spend their time waiting on real time, so one test takes the time of the longer."""

    async def one(echo_drop: str, name: str) -> None:
        (tmp_path / name).mkdir()
        try:
            await _sigkill_run(tmp_path / name, echo_drop)
        except BaseException as exc:
            exc.add_note(f"in the {name} run (echo_drop_probability = {echo_drop})")
            raise

    async with asyncio.TaskGroup() as tg:
        tg.create_task(one("0", "echoed"))
        tg.create_task(one("0.5", "echoes-dropped"))


async def _sigkill_run(tmp_path: Path, echo_drop: str) -> None:
    rng = random.Random(SEED)
    (tmp_path / "bot.toml").write_text(CONFIG.format(**TEXTS))
    db = tmp_path / "bot.db"
    kinds: Counter[str] = Counter()
    with (tmp_path / "bot.log").open("ab") as log:
        async with run_simulator(crash_scenario(echo_drop, speed=1)) as sim:
            triggers = Triggers(sim)
            fired = asyncio.Event()
            pid: list[int | None] = [None]

            def fire() -> None:
                sigkill(pid[0])
                fired.set()

            triggers.fire = fire
            order_rate(sim, 0)
            started = False
            spare = await spawn(sim, tmp_path, log)
            try:
                for _ in range(REAL_KILLS):
                    proc, spare = spare, await spawn(sim, tmp_path, log)
                    kind, count, limit = pick(rng, ["rest", "rest", "chat", "chat_lost",
                                                    "moment"])
                    fired.clear()
                    pid[0] = proc.pid
                    triggers.arm(kind, count)
                    await go(proc)
                    if not started:  # orders flow once the store exists: none is older
                        await until(lambda: _has_store(db) or fired.is_set(), what="the store")
                        if _has_store(db):
                            order_rate(sim, ORDERS["rate_per_hour"])
                            started = True
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(fired.wait(), timeout=limit)
                    triggers.disarm()
                    kinds[kind if fired.is_set() or kind == "moment" else f"{kind} (timed out)"] += 1
                    sigkill(proc.pid)
                    code = await proc.wait()
                    assert code == -signal.SIGKILL, f"the bot ended by itself ({code}): see bot.log"
                    _no_repeats(sim.world.chatlog.sent, triggers.frames)
                await go(spare)
                try:  # the last life takes orders until enough were seen, however fast the
                    # machine made the lives before it; then closing time
                    await until(lambda: _known(db) >= ENOUGH, limit=60, what="enough orders")
                    await cancel_the_waiting(sim)
                    await until(lambda: _settled(sim, db, complete=False), limit=60,
                                what="all orders final and sent")
                finally:
                    spare.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(spare.wait(), timeout=15)
            finally:
                if spare.returncode is None:
                    spare.kill()
                    await spare.wait()
            history = {no: [s for _, s in o.history] for no, o in sim.world.orders.orders.items()}
            sent = [s for s in sim.world.chatlog.sent if s["accepted"]]
            dropped = sim.world.chatlog.echoes_dropped
    print(f"\nkills: {dict(kinds)}; orders {len(history)}; messages {len(sent)}; "
          f"echoes dropped {dropped}")
    assert dropped or echo_drop == "0"
    _check(db, history, sent, triggers.frames, complete=False)


# --- the judge ------------------------------------------------------------------------------


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute(sql).fetchall()


def _no_repeats(sent: list[dict[str, Any]], frames: list[dict[str, Any]]) -> None:
    """After every kill: no message accepted twice for an order, no frame sent twice."""
    said = Counter((s["orderNo"], s["content"]) for s in sent if s["accepted"])
    assert not [k for k, n in said.items() if n > 1], "a message was sent twice"
    assert not [u for u, n in Counter(f["uuid"] for f in frames).items() if n > 1]


def _known(db: Path) -> int:
    """How many orders the store knows."""
    try:
        return int(query(db, "SELECT COUNT(*) FROM orders")[0][0])
    except sqlite3.OperationalError:
        return 0


def _has_store(db: Path) -> bool:
    try:
        return bool(query(db, "SELECT COUNT(*) FROM meta WHERE key = 'store_created_at'")[0][0])
    except sqlite3.OperationalError:
        return False


def _settled(sim: Simulator, db: Path, *, complete: bool = True) -> bool:
    """Every order final at the exchange and in the store, nothing left to send; `complete`:
    and every order of the exchange known to the store."""
    if not db.exists() or any(o.status in (1, 2, 3) for o in sim.world.orders.orders.values()):
        return False
    try:
        open_orders = query(db, "SELECT COUNT(*) FROM orders WHERE status IN (1, 2, 3)")[0][0]
        busy = query(db, "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending', 'sent')"
                     )[0][0]
        known = query(db, "SELECT COUNT(*) FROM orders")[0][0]
    except sqlite3.OperationalError:
        return False
    return open_orders == 0 and busy == 0 and (known == len(sim.world.orders.orders)
                                               or not complete)


def _check(db: Path, history: dict[str, list[int]], sent: list[dict[str, Any]],
           frames: list[dict[str, Any]], *, complete: bool = True) -> None:
    """The end: every transition stored, every planned message delivered once, none twice.

    `complete` (the stepped clock): every order of the exchange is known and at least 80 %
    were greeted. On real time these measure the machine, not the bot: on a loaded machine
    a bot that is down half the time and slow to start sees more orders begin and end
    unseen (and pushed off the one page of ended orders it reads), or paid before it could
    greet them. Then the orders the bot knows are judged: each with its whole path.
    """
    paths: dict[str, list[int]] = {}
    for no, new in query(db, "SELECT order_number, new FROM order_transitions ORDER BY id"):
        paths.setdefault(no, []).append(new)
    if complete:
        assert len(history) >= 20, "too few orders to prove anything"
        assert paths == history  # no transition missing, none twice, none backwards
    else:
        assert len(paths) >= 20, "too few orders seen to prove anything"
        assert {no: history.get(no) for no in paths} == paths  # the same, for those it knows
    assert not query(db, "SELECT * FROM outbox WHERE state != 'done'")
    rows = query(db, "SELECT order_number, status, action, payload FROM outbox WHERE action = 'chat'")
    planned = Counter((no, json.loads(p)["content"]) for no, _, _, p in rows)
    delivered = Counter((s["orderNo"], s["content"]) for s in sent)
    assert delivered == planned and set(planned.values()) == {1}
    assert set(Counter(f["uuid"] for f in frames).values()) == {1}, "a frame was sent twice"
    greeted = {no for no, status, _, _ in rows if status == "new"}
    if complete:
        assert len(greeted) >= 0.8 * len(history)
    for no, statuses in history.items():
        want = {REACTIONS_OF[s] for s in statuses[1:]} | ({"new"} if no in greeted else set())
        got = {status for n, status, _, _ in rows if n == no}
        if no in greeted:  # seen open: every later status it was seen in has its message
            assert got <= want and "new" in got, no


REACTIONS_OF = {2: "buyer_paid", 4: "completed", 6: "cancelled"}
assert set(REACTIONS_OF.values()) <= set(REACTIONS)
