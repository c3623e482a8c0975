"""`python run.py run` killed with SIGKILL at random points while orders flow.

The simulator runs in this test at speed 1 (the daemon lives on real time). The
kill points are chosen at random among: the n-th exchange request of a run, the
n-th chat frame (after the exchange stored it, or lost on the way), and a random
moment. After every restart, and at the end, each order has exactly one greeting
and one message per status, no frame was sent twice, and every transition is stored.
It runs twice: with every send echoed, and with half the echoes dropped (the exchange does
not always echo: the bot takes a send without an error frame as sent and confirms it from
the chat history) and the exchange's other habits on (business errors wrapped in -9000,
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
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulator.app import Simulator, run_simulator
from tests.e2e.desk import REACTIONS, scenario, sim_post, until

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
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


class Killer:
    """Kills the bot process from inside the simulator when the armed trigger comes round."""

    def __init__(self, sim: Simulator) -> None:
        self.pid: int | None = None
        self.kind, self.left = "", 0
        self.fired = asyncio.Event()
        self.frames: list[dict[str, Any]] = []  # every text frame the exchange processed
        world = sim.world
        handle, receive = world.handle, world.chatlog.receive

        def on_request(endpoint: str, query: dict[str, str], body: Any) -> Any:
            self._tick("rest")
            return handle(endpoint, query, body)

        def on_frame(text: str, now_ms: int, has_order: Any) -> Any:
            if self._tick("chat_lost"):
                return []  # the frame never reached the exchange
            answer = receive(text, now_ms, has_order)
            frame = json.loads(text)
            if frame.get("type") == "text":
                self.frames.append(frame)
            self._tick("chat")
            return answer

        world.handle = on_request  # type: ignore[method-assign]
        world.chatlog.receive = on_frame  # type: ignore[method-assign]

    def arm(self, pid: int, kind: str, count: int) -> None:
        self.pid, self.kind, self.left = pid, kind, count
        self.fired.clear()

    def _tick(self, kind: str) -> bool:
        if self.pid is None or kind != self.kind:
            return False
        self.left -= 1
        if self.left > 0:
            return False
        self.kill()
        return True

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.pid = None
            self.fired.set()


async def start_bot(sim: Simulator, tmp: Path, log: Any) -> asyncio.subprocess.Process:
    env = {**os.environ, "P2PBOT_BASE_URL": sim.base_url, "P2PBOT_API_KEY": sim.api_key,
           "P2PBOT_API_SECRET": sim.api_secret or "", "P2PBOT_DB": str(tmp / "bot.db"),
           "P2PBOT_CONFIG": str(tmp / "bot.toml")}
    return await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run.py"), "run", cwd=tmp, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("echo_drop", ["0", "0.5"], ids=["echoed", "echoes-dropped"])
async def test_sigkill_at_random_points_loses_no_reaction_and_duplicates_none(
        tmp_path, echo_drop: str) -> None:
    rng = random.Random(SEED)
    texts = {"greeting": "Hi {nickname}, order {order_no}: pay {total} {fiat} by {pay_method}.",
             "paid": "Paid noted: {order_no}.", "completed": "Thanks for {order_no}!",
             "cancelled": "Cancelled {order_no}."}
    (tmp_path / "bot.toml").write_text(CONFIG.format(**texts))
    db = tmp_path / "bot.db"
    kinds: Counter[str] = Counter()
    with (tmp_path / "bot.log").open("ab") as log:
        chat = {"echo_drop_probability": echo_drop}
        # with echoes dropped, the exchange's other habits too: -9000 wrappers and clientType
        realism = {} if echo_drop == "0" else {"wrap_business_errors": True,
                                               "require_client_type": True}
        async with run_simulator(scenario(speed=1, orders=ORDERS, chat=chat,
                                          realism=realism)) as sim:
            killer = Killer(sim)
            for _ in range(KILLS):
                proc = await start_bot(sim, tmp_path, log)
                kind = rng.choice(["rest", "rest", "chat", "chat_lost", "moment"])
                killer.arm(proc.pid, kind, rng.randint(1, 8) if kind == "rest" else rng.randint(1, 2))
                limit = rng.uniform(0.4, 1.5) if kind == "moment" else 2.5
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(killer.fired.wait(), timeout=limit)
                kinds[kind if killer.fired.is_set() else f"{kind} (timed out)"] += 1
                killer.kill()
                await proc.wait()
                _no_repeats(sim.world.chatlog.sent, killer.frames)
            book = sim.world.orders
            book.cfg = book.cfg.model_copy(update={"rate_per_hour": Decimal(0)})
            for order in list(book.orders.values()):  # the simulator waits >= 30 s to cancel
                if order.status == 1 and order.next_status == 6:
                    await sim_post(sim, f"/_sim/world/orders/{order.order_no}/status", {"status": 6})
            proc = await start_bot(sim, tmp_path, log)
            try:
                await until(lambda: _settled(sim, db), limit=30, what="all orders final and sent")
            finally:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), timeout=15)
            history = {no: [s for _, s in o.history] for no, o in sim.world.orders.orders.items()}
            sent = [s for s in sim.world.chatlog.sent if s["accepted"]]
            frames = killer.frames
            dropped = sim.world.chatlog.echoes_dropped
    print(f"\nkills: {dict(kinds)}; orders {len(history)}; messages {len(sent)}; "
          f"echoes dropped {dropped}")
    assert dropped or echo_drop == "0"
    _check(db, history, sent, frames, texts)


def _no_repeats(sent: list[dict[str, Any]], frames: list[dict[str, Any]]) -> None:
    """After every kill: no message accepted twice for an order, no frame sent twice."""
    said = Counter((s["orderNo"], s["content"]) for s in sent if s["accepted"])
    assert not [k for k, n in said.items() if n > 1], "a message was sent twice"
    assert not [u for u, n in Counter(f["uuid"] for f in frames).items() if n > 1]


def _settled(sim: Simulator, db: Path) -> bool:
    if not db.exists() or any(o.status in (1, 2, 3) for o in sim.world.orders.orders.values()):
        return False
    try:
        open_orders = query(db, "SELECT COUNT(*) FROM orders WHERE status IN (1, 2, 3)")[0][0]
        busy = query(db, "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending', 'sent')"
                     )[0][0]
        known = query(db, "SELECT COUNT(*) FROM orders")[0][0]
    except sqlite3.OperationalError:
        return False
    return open_orders == 0 and busy == 0 and known == len(sim.world.orders.orders)


def _check(db: Path, history: dict[str, list[int]], sent: list[dict[str, Any]],
           frames: list[dict[str, Any]], texts: dict[str, str]) -> None:
    assert len(history) >= 20, "too few orders to prove anything"
    paths: dict[str, list[int]] = {}
    for no, new in query(db, "SELECT order_number, new FROM order_transitions ORDER BY id"):
        paths.setdefault(no, []).append(new)
    assert paths == history  # no transition missing, none twice, none backwards
    assert not query(db, "SELECT * FROM outbox WHERE state != 'done'")
    rows = query(db, "SELECT order_number, status, action, payload FROM outbox WHERE action = 'chat'")
    planned = Counter((no, json.loads(p)["content"]) for no, _, _, p in rows)
    delivered = Counter((s["orderNo"], s["content"]) for s in sent)
    assert delivered == planned and set(planned.values()) == {1}
    assert set(Counter(f["uuid"] for f in frames).values()) == {1}, "a frame was sent twice"
    greeted = {no for no, status, _, _ in rows if status == "new"}
    assert len(greeted) >= 0.8 * len(history)
    for no, statuses in history.items():
        want = {REACTIONS_OF[s] for s in statuses[1:]} | ({"new"} if no in greeted else set())
        got = {status for n, status, _, _ in rows if n == no}
        if no in greeted:  # seen open: every later status it was seen in has its message
            assert got <= want and "new" in got, no


REACTIONS_OF = {2: "buyer_paid", 4: "completed", 6: "cancelled"}
assert set(REACTIONS_OF.values()) <= set(REACTIONS)
