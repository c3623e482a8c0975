"""A desk of three accounts under the systemd template's layout, watched by a real Prometheus.

Three simulated exchanges (one per account), three daemons laid out by `desk init` and
started with the environment deploy/p2pbot@.service gives them, Debian's Prometheus
scraping them with their bearer tokens and evaluating deploy/prometheus/p2pbot.rules.yml
(a copy whose `for:` durations are seconds). When one simulator takes the search endpoint
away (-2008), P2PBotCapabilityLost fires for that account and no other; `desk status`
shows all three with the lost capability on the right row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.app import Simulator, run_simulator
from simulator.scenario import generate_credential
from tests.support import (
    Daemon,
    Instance,
    free_port,
    lay_out,
    run_command,
    start_daemon,
    world_factory,
)

pytestmark = [
    pytest.mark.slow,  # three daemons and a real Prometheus scraping them in real time
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="prometheus not on PATH (Debian: apt-get install prometheus)"),
]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "p2pbot.rules.yml"
ACCOUNTS = ("alice", "bob", "carol")
FOR_SECONDS = "2s"  # every rule's `for:` in the test's copy
POLL = 0.25  # seconds between reads of Prometheus's API
EDITS = {r"^dry_run = true": "dry_run = false", r"^market_interval = 10": "market_interval = 1",
         r"^my_ads_interval = 60": "my_ads_interval = 5"}


def rules_for_test(folder: Path) -> Path:
    """The rules with every `for:` shortened: the same expressions, seconds instead of minutes."""
    text = re.sub(r"(?m)^(\s+for: )\S+$", rf"\g<1>{FOR_SECONDS}", RULES.read_text(encoding="utf-8"))
    path = folder / "p2pbot.rules.yml"
    path.write_text(text, encoding="utf-8")
    return path


def prometheus_config(folder: Path, instances: list[Instance], rules: Path) -> Path:
    """One job per account (its own token); scrape and evaluate every second."""
    jobs = [{"job_name": f"p2pbot-{i.name}", "authorization": {"credentials_file": str(i.token_file)},
             "static_configs": [{"targets": [f"127.0.0.1:{i.port}"], "labels": {"account": i.name}}]}
            for i in instances]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                         "scrape_timeout": "1s"},
              "rule_files": [str(rules)], "scrape_configs": jobs}
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


@contextlib.asynccontextmanager
async def prometheus(folder: Path, config: Path) -> AsyncIterator[str]:
    """Prometheus on 127.0.0.1:<free port> until the block ends; yields its base URL."""
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        "prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        stdout=log, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def api(base: str, path: str) -> Any:
    """The `data` of a Prometheus API answer; None while it does not answer yet."""
    try:
        async with aiohttp.ClientSession() as s, s.get(base + path) as r:
            if r.status != 200:
                return None
            return (await r.json())["data"]
    except aiohttp.ClientError:
        return None


async def until(base: str, path: str, test: Any, within: float) -> Any:
    """Poll the API every POLL seconds until `test(data)` is true; the data, or TimeoutError."""
    async def poll() -> Any:
        while True:
            data = await api(base, path)
            if data is not None and test(data):
                return data
            await asyncio.sleep(POLL)

    return await asyncio.wait_for(poll(), within)


def all_up(data: Any) -> bool:
    """Every scrape target answered its last scrape."""
    targets = data["activeTargets"]
    return len(targets) == len(ACCOUNTS) and all(t["health"] == "up" for t in targets)


def firing(name: str, data: Any) -> list[dict[str, Any]]:
    """The firing alerts named `name`."""
    return [a for a in data["alerts"] if a["labels"]["alertname"] == name and a["state"] == "firing"]


@contextlib.asynccontextmanager
async def simulators(n: int) -> AsyncIterator[list[Simulator]]:
    """One real-time simulated exchange per account, each with its own key."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(run_simulator(
            "calm", speed=1, api_key=generate_credential(), api_secret=generate_credential(),
            world_factory=world_factory())) for _ in range(n)]


@contextlib.asynccontextmanager
async def desk(host: Path, sims: list[Simulator]) -> AsyncIterator[list[tuple[Instance, Daemon]]]:
    """The three accounts laid out and running as daemons, each ready (its /readyz 200)."""
    instances = [lay_out(host, name, sim, EDITS) for name, sim in zip(ACCOUNTS, sims, strict=True)]
    daemons: list[Daemon] = []
    try:
        for i in instances:
            daemons.append(await start_daemon(i.env, Path(i.env["P2PBOT_DB"]).parent))
        for d in daemons:
            await asyncio.wait_for(d.saw("first decision").wait(), 60)
        yield list(zip(instances, daemons, strict=True))
    finally:
        for d in daemons:
            await d.close()


async def test_three_accounts_scraped_and_the_capability_lost_alert_fires(tmp_path: Path) -> None:
    async with simulators(len(ACCOUNTS)) as sims, desk(tmp_path / "host", sims) as running:
        instances = [i for i, _ in running]
        config = prometheus_config(tmp_path, instances, rules_for_test(tmp_path))
        async with prometheus(tmp_path, config) as base:
            await until(base, "/api/v1/targets", all_up, 60)
            lost = "/api/v1/alerts"
            assert not firing("P2PBotCapabilityLost", await until(base, lost, lambda d: True, 30))

            sims[1].set_registration("search", "unregistered")  # bob's key loses the search
            data = await until(base, lost, lambda d: firing("P2PBotCapabilityLost", d), 60)
            alerts = firing("P2PBotCapabilityLost", data)
            assert [(a["labels"]["account"], a["labels"]["capability"]) for a in alerts] == \
                [("bob", "market")]
            assert alerts[0]["annotations"]["summary"].startswith('bob: the bot cannot use "market"')
            assert alerts[0]["annotations"]["runbook"] == "docs/operations.md#p2pbotcapabilitylost"

        args = [f"{i.name}={i.url}" for i in instances]
        tokens = [a for i in instances for a in ("--token-file", str(i.token_file))]
        status, out, err = await run_command(instances[0].env, tmp_path, "desk", "status",
                                             *args, *tokens, "--timeout", "5")
        print(out)  # the desk as the merchant sees it (shown with pytest -s)
        assert status == 3, err  # bob is not ready
        rows = {line.split()[0]: line for line in out.splitlines()[1:]}
        assert set(rows) == set(ACCOUNTS), out
        assert "market lost" in rows["bob"] and "not ready" in rows["bob"]
        for name in ("alice", "carol"):
            assert rows[name].split()[1] == "ok" and "sell" in rows[name].lower(), out
