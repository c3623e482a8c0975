"""Start-up time to the first pricing decision (Bot.first_decision), against the simulator.

Two figures, each over a few runs on a fresh store:
- in-process: Bot.start() + Bot.run() until the first decision (the bot's own work);
- `python run.py run` as a process: from spawning it to its "first decision" log line
  (imports, settings, lock, integrity check, key check, start, first decision).

    .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rows import emit, wants_rows  # noqa: E402
from bot.app import Bot  # noqa: E402
from bot.binance.client import SignedClient  # noqa: E402
from bot.binance.signing import HmacSigner  # noqa: E402
from config.loader import load_config  # noqa: E402
from simulator.app import Simulator, run_simulator  # noqa: E402
from state.db import Store  # noqa: E402

CONFIG = ROOT / "config" / "example.toml"


async def in_process(sim: Simulator, folder: Path) -> float:
    """Seconds from Bot.start() to the first decision."""
    store = await Store.open(folder / "bench.db")
    client = SignedClient(sim.base_url, api_key=SecretStr(sim.api_key),
                          signer=HmacSigner(SecretStr(sim.api_secret or "")))
    stop = asyncio.Event()
    try:
        began = time.perf_counter()
        bot = Bot(load_config(CONFIG), client, store)
        await bot.start()
        task = asyncio.create_task(bot.run(stop))
        await asyncio.wait_for(bot.first_decision.wait(), 30)
        took = time.perf_counter() - began
        stop.set()
        await task
        return took
    finally:
        await client.close()
        await store.close()


async def as_process(sim: Simulator, folder: Path) -> tuple[float, float]:
    """(seconds from spawn to the first-decision line, the bot's own figure)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    env.update(P2PBOT_BASE_URL=sim.base_url, P2PBOT_API_KEY=sim.api_key,
               P2PBOT_API_SECRET=sim.api_secret or "", P2PBOT_DB=str(folder / "bench.db"),
               P2PBOT_CONFIG=str(CONFIG))
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run.py"), "--log-format", "json", "run", cwd=str(folder),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    try:
        async for line in proc.stderr:
            message = json.loads(line)["message"]
            if message.startswith("first decision"):
                took = time.perf_counter() - began
                return took, float(message.split()[2])
        raise RuntimeError("the bot stopped before its first decision")
    finally:
        proc.terminate()
        await proc.wait()


def line(name: str, values: list[float]) -> str:
    """min / median / max in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    return (f"{name:<48} min {ms[0]:7.0f} ms   median {statistics.median(ms):7.0f} ms   "
            f"max {ms[-1]:7.0f} ms   ({len(ms)} runs)")


async def main(runs: int, rows: bool = False) -> None:
    """Measure and print."""
    logger.remove()
    inside, spawned, own = [], [], []
    async with run_simulator("calm", speed=1) as sim:
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                inside.append(await in_process(sim, Path(tmp)))
            with tempfile.TemporaryDirectory() as tmp:
                total, reported = await as_process(sim, Path(tmp))
                spawned.append(total)
                own.append(reported)
    print("start to first pricing decision (simulator, calm scenario, config/example.toml)")
    print(line("in-process: Bot.start() -> first decision", inside))
    print(line("process: spawn -> first decision log line", spawned))
    print(line("process: run() entry -> first decision (logged)", own))
    if rows:
        how = f"calm scenario, config/example.toml, median of {runs}"
        for figure, values in (("start to first decision, in-process", inside),
                               ("start to first decision, process spawn", spawned)):
            emit(figure, None, f"{statistics.median(values) * 1000:.0f} ms", None, how)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="default 5; 3 with --rows")
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    rows = args.rows or wants_rows()
    asyncio.run(main(args.runs or (3 if rows else 5), rows))
