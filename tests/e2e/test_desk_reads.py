"""What the order desk reads of the store per poll: a poll that finds nothing new reads
neither the open orders, nor their count, nor the terminal view's rows again (they change
only when the desk writes, and it is their one writer); a write reads them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.app import run_simulator
from tests.e2e.support import SELL_ADV, START_MS, config_text, open_order, scenario, stepped_bot

KEPT = ("SELECT COUNT(*) FROM orders",  # has_open
        "FROM orders WHERE status IN (1, 2, 3) ORDER BY",  # the open orders (and per ad)
        "FROM orders ORDER BY created_at DESC",  # the view's last orders
        "SELECT order_number, state FROM outbox")  # the view's greetings


async def test_quiet_polls_read_no_order_again_and_a_new_order_is_read(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(config_text())
    async with run_simulator(scenario(speed=0), start_ms=START_MS, stepped=True) as sim, \
            stepped_bot(sim, config, tmp_path / "bot.db") as run:
        await run.run_for(60)  # started: the first polls have read what there is
        reads: list[tuple[str, tuple[Any, ...]]] = []
        fetchall = run.store.fetchall

        async def counted(sql: str, params: Any = ()) -> Any:
            reads.append((sql, tuple(params)))
            return await fetchall(sql, params)

        run.store.fetchall = counted  # type: ignore[method-assign]
        polls = run.desk.poller.ticks
        await run.run_for(300)
        assert run.desk.poller.ticks - polls == 20  # orders_interval 15 s
        kept = [(sql, params) for sql, params in reads if any(k in sql for k in KEPT)]
        # the alert watch reads the open orders once a minute on its own (bot.alerts.watch);
        # the 20 polls read nothing of the kind (before: the count or the open orders twice,
        # the last orders and their greetings, at each)
        assert len(kept) == 5 and all(params == (1000,) for _, params in kept), kept
        assert run.desk.open_by_ad == {} and run.desk.view == []

        order = await open_order(sim)
        await run.until(lambda: run.desk.open_by_ad == {SELL_ADV: 1}, 120, "the order counted")
        assert await run.desk.has_open()
        await run.until(lambda: [(r.order_number, r.greeting) for r in run.desk.view]
                        == [(order, "sent")], 120, "the greeting in the view")
