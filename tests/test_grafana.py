"""deploy/grafana/p2pbot-desk.json: every expression names only metrics the bot exports (read
from a live /metrics), and the dashboard covers what issue 17 asks per account."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from simulator.app import Simulator
from tests.support import live_metric_names, metric_names

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "p2pbot-desk.json"
# per account: capabilities, prices and ranks, decisions, orders, weight, latency
COVERS = {"capabilities": "p2pbot_capability_up", "prices": "p2pbot_ad_price",
          "ranks": "p2pbot_ad_rank", "decisions": "p2pbot_price_updates_applied_total",
          "orders": "p2pbot_orders", "weight": "p2pbot_rate_limit_budget_used_ratio",
          "latency": "p2pbot_request_latency_seconds_bucket"}


def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, also those inside collapsed rows."""
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def expressions(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for p in panels(doc["panels"]):
        for t in p.get("targets", []):
            yield p["title"], t["expr"]
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)  # its label is no metric
            yield f"variable {var['name']}", inner.group(1) if inner else query


def test_every_panel_reads_something_and_the_desk_filters_by_account() -> None:
    doc = dashboard()
    shown = [p for p in panels(doc["panels"]) if p["type"] != "row"]
    assert shown and all(p.get("targets") for p in shown)
    assert {v["name"] for v in doc["templating"]["list"]} == {"datasource", "account"}
    for where, expr in expressions(doc):
        if not where.startswith("variable"):
            assert 'account=~"$account"' in expr, where


def test_the_dashboard_covers_each_account_asked_for() -> None:
    read = set().union(*(metric_names(e) for _, e in expressions(dashboard())))
    missing = {what: metric for what, metric in COVERS.items() if metric not in read}
    assert not missing


async def test_every_expression_names_a_metric_the_bot_exports(fast_sim: Simulator,
                                                                tmp_path: Path) -> None:
    exported = await live_metric_names(fast_sim, tmp_path)
    for where, expr in expressions(dashboard()):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= exported, f"{where}: {sorted(names - exported)} not exported by the bot"
