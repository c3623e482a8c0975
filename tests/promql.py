"""Metric names in PromQL expressions, and the names a bot's live /metrics exposes: the
alert rules and the dashboard may only name what the bot exports."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from simulator.app import Simulator
from tests.ops import bot_on_sim, write_config

KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                      "and", "or", "unless", "offset", "inf", "nan", "atan2"})
MADE_BY_PROMETHEUS = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:$.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (functions, keywords, labels, durations left out)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = _GROUPING.sub("", text)
    names = set()
    for match in _NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every series name a /metrics text can carry: from its TYPE lines (so a labelled
    counter without samples yet counts), with the suffixes of histograms and summaries."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(maxsplit=3)
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
        elif kind == "summary":
            names.update(f"{name}{s}" for s in ("_sum", "_count"))
        elif kind == "counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
    return names


async def live_metric_names(sim: Simulator, tmp: Path) -> set[str]:
    """The names on the live /metrics of a bot (with its order desk) on the simulator."""
    config = write_config(tmp / "bot.toml", market_interval=2)
    async with bot_on_sim(sim, config, tmp / "bot.db") as r:
        assert r.web is not None
        async with aiohttp.ClientSession() as s, s.get(r.web.url + "/metrics") as resp:
            assert resp.status == 200
            return exported_names(await resp.text()) | MADE_BY_PROMETHEUS
