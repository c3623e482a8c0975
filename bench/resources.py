"""Bench: the daemon's memory (RSS) and idle CPU with 2 and with 50 ads.

`p2pbot run` is started as a process against the simulator (a calm USDT/RUB market at
real speed, the merchant's own ads as many as the config prices: half SELL at a fixed
price by `undercut`, half BUY by `follow_reference`), left to warm up, then watched for
a while: RSS at the end (/proc/PID/status VmRSS) and the CPU it used meanwhile
(/proc/PID/stat utime + stime) as a share of one core. Default intervals: a market
search every 10 s (one market here), orders every 15 s.

    .venv/bin/python bench/resources.py [--warm 8] [--watch 20] [--rows]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._rows import emit, wants_rows  # noqa: E402
from simulator.app import run_simulator  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")

SCENARIO = """
[sim]
description = "bench: one calm market and {n} own ads"
seed = 3
speed = 1.0
hold_seconds = 30
[[keys]]
label = "main"
[keys.permissions]
enable_reading = true
[keys.registration]
default = "registered"
[limits]
ip_weight_per_minute = 12000
[faults]
rules = []
[world]
[[world.markets]]
asset = "USDT"
fiat = "RUB"
reference = "92.50"
volatility = "0.0005"
competitors = 20
bots = 3
bot_reaction_seconds = 5
decoys = 2
churn_per_hour = 6
"""

OWN_AD = """
[[world.own_ads]]
asset = "USDT"
fiat = "RUB"
side = "{side}"
price_type = "fixed"
price = "{price}"
min = "1000"
max = "50000"
surplus = "1500"
pay_methods = ["Tinkoff", "SBP"]
"""

AD = """
[[ads]]
name = "ad{i}"
adv_no = "{adv_no}"
strategy = "{strategy}"
[ads.params]
{params}
[ads.guards]
floor = "80.00"
ceiling = "99.00"
"""


def scenario(folder: Path, n: int) -> Path:
    """A scenario with `n` own ads, half SELL, half BUY."""
    text = SCENARIO.format(n=n) + "".join(
        OWN_AD.format(side="SELL" if i % 2 == 0 else "BUY",
                      price="93.40" if i % 2 == 0 else "91.60") for i in range(n))
    path = folder / f"bench-{n}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config(folder: Path, ads: dict[str, str]) -> Path:
    """The bot's config: every own ad by its id; SELL by undercut, BUY by follow_reference."""
    # the status page on a port free now, as in production, without depending on 8080
    text = f"[bot]\n\n[web]\nport = {free_port()}\n" + "".join(
        AD.format(i=i, adv_no=adv_no, strategy="undercut" if side == "SELL" else "follow_reference",
                  params='step = "0.01"' if side == "SELL" else 'margin = "-0.50"')
        for i, (adv_no, side) in enumerate(sorted(ads.items())))
    path = folder / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    """The resident set of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(n: int, warm: float, watch: float) -> tuple[float, float]:
    """(RSS in MB, CPU share of one core) of `p2pbot run` with `n` ads."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with run_simulator(scenario(folder, n), speed=1) as sim:
            ads = {ad.adv_no: ad.side for ad in sim.world.account.ads.values()}  # type: ignore[attr-defined]
            env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
            env.update(P2PBOT_BASE_URL=sim.base_url, P2PBOT_API_KEY=sim.api_key,
                       P2PBOT_API_SECRET=sim.api_secret or "", P2PBOT_DB=str(folder / "bench.db"),
                       P2PBOT_CONFIG=str(config(folder, ads)), PYTHONPATH=str(ROOT))
            log = (folder / "bot.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import sys; from p2pbot.cli import main; sys.exit(main())",
                "--log-level", "WARNING", "run", cwd=str(folder), env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log)
            try:
                await asyncio.sleep(warm)
                if proc.returncode is not None:
                    tail = (folder / "bot.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"p2pbot run exited {proc.returncode} with {n} ads:\n{tail}")
                began, used = time.monotonic(), cpu_seconds(proc.pid)
                await asyncio.sleep(watch)
                share = (cpu_seconds(proc.pid) - used) / (time.monotonic() - began)
                return rss_mb(proc.pid), share
            finally:
                if proc.returncode is None:
                    proc.terminate()
                await proc.wait()
                log.close()


def main() -> None:
    """Measure at 2 and 50 ads and print (the rows with --rows)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=float, default=8.0, help="seconds before watching")
    parser.add_argument("--watch", type=float, default=20.0, help="seconds watched")
    parser.add_argument("--rows", action="store_true", help="print the bench table rows (JSON)")
    args = parser.parse_args()
    for n in (2, 50):
        rss, cpu = asyncio.run(measure(n, args.warm, args.watch))
        print(f"{n:>2} ads: RSS {rss:.0f} MB, CPU {cpu:.2%} of a core over {args.watch:g} s "
              f"(after {args.warm:g} s)", file=sys.stderr)
        if args.rows or wants_rows():
            how = (f"p2pbot run on the simulator (calm, real time), {n} ads in one market, "
                   f"after {args.warm:g} s, over {args.watch:g} s")
            emit(f"RSS, {n} ads", None, f"{rss:.0f} MB", None, how)
            emit(f"idle CPU, {n} ads", None, f"{cpu:.2%} of a core", None, how)


if __name__ == "__main__":
    main()
