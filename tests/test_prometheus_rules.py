"""deploy/prometheus/p2pbot.rules.yml: promtool's own check and unit tests, only metrics the
bot exports, and a runbook line in docs/operations.md for every alert."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from simulator.app import Simulator
from tests.support import live_metric_names, metric_names

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "p2pbot.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "p2pbot.rules.test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
# the conditions issue 17 asks an alert for, by the alert that covers each
ASKED = {"P2PBotCapabilityLost", "P2PBotRepricingHeld", "P2PBotAdOffTargetRank",
         "P2PBotRateLimitHigh", "P2PBotBanned", "P2PBotChatSocketDown",
         "P2PBotOrderPaidNotReleased", "P2PBotNotReady", "P2PBotStoreGrowing"}

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool not on PATH (Debian: apt-get install prometheus)")


def rules() -> list[dict[str, object]]:
    """Every rule of the file."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_fire_each_alert_and_only_then() -> None:
    done = subprocess.run(["promtool", "test", "rules", RULE_TESTS.name], capture_output=True,
                          text=True, timeout=120, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    assert tested == {r["alert"] for r in rules()}


def test_every_asked_condition_has_an_alert_with_a_summary_and_a_runbook_line() -> None:
    found = {str(r["alert"]): r for r in rules()}
    assert ASKED <= set(found)
    doc = OPERATIONS.read_text(encoding="utf-8")
    for name, rule in found.items():
        notes = rule["annotations"]
        assert isinstance(notes, dict) and notes["summary"], name
        assert notes["runbook"] == f"docs/operations.md#{name.lower()}", name
        assert re.search(rf"^#+ {name}$", doc, re.M), f"no runbook heading for {name}"


async def test_rules_name_only_metrics_the_bot_exports(fast_sim: Simulator, tmp_path: Path) -> None:
    exported = await live_metric_names(fast_sim, tmp_path)
    for rule in rules():
        names = metric_names(str(rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']} reads {names - exported}, not exported"
