"""deploy/kubernetes/: the manifests `p2pbot desk kube` renders from a values file, validated
offline against the Kubernetes schemas (kubernetes-validate), per account; bad values name
their field; the readiness probe's command; the Containerfile."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from bot.accounts.kube import SECRETS, UID, RenderError, manifest_json, manifests
from config.secret_files import SECRET_FILES
from p2pbot.cli import main
from simulator.app import Simulator
from simulator.scenario import generate_credential
from tests.support import bot_on_sim, capability_state, run_command, write_config

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
VALUES = KUBE / "values.example.toml"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
VERSIONS = ("1.28", kubernetes_validate.latest_version())  # oldest supported and newest known


def by_kind(items: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Objects of one kind by their app.kubernetes.io/instance label (the account)."""
    return {o["metadata"]["labels"]["app.kubernetes.io/instance"]: o for o in items
            if o["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_offline(version: str) -> None:
    items = manifests(VALUES)
    assert {o["kind"] for o in items} == {"ConfigMap", "Service", "StatefulSet"}
    for item in items:
        kubernetes_validate.validate(item, version, strict=True)  # raises on any bad field


def test_a_schema_violation_is_caught() -> None:
    sts = by_kind(manifests(VALUES), "StatefulSet")["alice"]
    sts["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecond"] = 10
    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
        kubernetes_validate.validate(sts, VERSIONS[-1], strict=True)


def test_each_account_gets_its_own_statefulset_store_secret_and_probes() -> None:
    items = manifests(VALUES)
    sets, services = by_kind(items, "StatefulSet"), by_kind(items, "Service")
    configs = by_kind(items, "ConfigMap")
    assert set(sets) == set(services) == set(configs) == {"alice", "bob"}
    claims = {}
    for name, sts in sets.items():
        spec = sts["spec"]
        assert spec["replicas"] == 1 and spec["serviceName"] == services[name]["metadata"]["name"]
        claim = spec["volumeClaimTemplates"][0]
        claims[name] = claim["spec"]["resources"]["requests"]["storage"]
        pod = spec["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == f"p2pbot-{name}"
        assert volumes["config"]["configMap"]["name"] == configs[name]["metadata"]["name"]
        (c,) = pod["spec"]["containers"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["runAsUser"] == UID != 0
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        ready = c["readinessProbe"]["exec"]["command"]
        assert ready[:3] == ["p2pbot", "desk", "ready"] and f"{SECRETS}/web_token" in ready
        env = {e["name"]: e["value"] for e in c["env"]}
        for setting in ("api_key", "api_secret", "web_token"):
            assert env[SECRET_FILES[setting]] == f"{SECRETS}/{setting}"  # the *_FILE variables
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts[SECRETS]["readOnly"] is True and "/var/lib/p2pbot" in mounts
        assert env["P2PBOT_DB"].startswith("/var/lib/p2pbot/")
        assert 'host = "0.0.0.0"' in configs[name]["data"]["p2pbot.toml"]
    assert claims == {"alice": "1Gi", "bob": "2Gi"}


def test_the_committed_rendering_is_the_current_one() -> None:
    committed = (KUBE / "desk.example.json").read_text(encoding="utf-8")
    assert committed == manifest_json(manifests(VALUES)), (
        "re-render: p2pbot desk kube deploy/kubernetes/values.example.toml "
        "> deploy/kubernetes/desk.example.json")


def _values(tmp: Path, edit: tuple[str, str] | None = None, config: str | None = None) -> Path:
    """A copy of the example values (and its account configs), with one textual edit."""
    shutil.copytree(KUBE / "accounts", tmp / "accounts")
    text = VALUES.read_text(encoding="utf-8")
    if edit is not None:
        text, n = re.subn(edit[0], edit[1], text, count=1, flags=re.M)
        assert n == 1, edit
    if config is not None:
        (tmp / "accounts" / "alice.toml").write_text(config, encoding="utf-8")
    path = tmp / "values.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "field"), [
    ((r'^secret = "p2pbot-alice".*$', ""), "accounts[0].secret: Field required"),
    ((r"^probe_interval = 10", "probe_interval = -5"),
     "probe_interval: Input should be greater than or equal to 1"),
    ((r'^secret = "p2pbot-bob"', 'secret = "Not_A_Name"'), "accounts[1].secret: String should match"),
    ((r'^storage = "1Gi"', 'storage = "plenty"'), "storage: String should match"),
    ((r'^name = "bob"', 'name = "alice"'), "two accounts are named 'alice'"),
    ((r'^image = .*$', ""), "image: Field required"),
    ((r"^port = 8080", "port = 8081"), "accounts[0].config"),
    ((r"^namespace", "namespaces"), "namespaces: Extra inputs are not permitted"),
])
def test_a_bad_value_fails_the_render_naming_its_field(tmp_path: Path, edit: tuple[str, str],
                                                       field: str) -> None:
    with pytest.raises(RenderError) as err:
        manifests(_values(tmp_path, edit))
    assert str(err.value).startswith(str(tmp_path / "values.toml")) and field in str(err.value)


@pytest.mark.parametrize(("config", "said"), [
    ('[web]\nhost = "127.0.0.1"\nport = 8080\n', '[web] host must be "0.0.0.0"'),
    ('[web]\nhost = "0.0.0.0"\nport = 8080\n[bot]\nmarket_interval = -1\n', "market_interval"),
    ("[web\n", "accounts[0].config"),
])
def test_an_account_config_that_cannot_run_in_a_pod_fails_the_render(tmp_path: Path, config: str,
                                                                     said: str) -> None:
    with pytest.raises(RenderError, match=re.escape(said)):
        manifests(_values(tmp_path, config=config))


def test_desk_kube_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["desk", "kube", str(VALUES)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "List" and len(doc["items"]) == 6
    assert main(["desk", "kube", str(_values(tmp_path, (r"^probe_interval = 10", "probe_interval = -1")))]) == 2
    assert "probe_interval" in capsys.readouterr().err


@pytest.mark.slow
async def test_the_readiness_probe_command_asks_readyz_with_the_token(fast_sim: Simulator,
                                                                      tmp_path: Path) -> None:
    token = "ready-" + generate_credential()[:24]
    good = tmp_path / "token"
    good.write_text(token)
    good.chmod(0o600)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    wrong.chmod(0o600)
    config = write_config(tmp_path / "bot.toml", market_interval=2)
    env = {"PATH": "/usr/bin:/bin"}
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=token) as r:
        assert r.web is not None
        for name in r.bot.cfg.capabilities.essential:
            await capability_state(r.bot, name, "enabled")
        ok = await run_command(env, tmp_path, "desk", "ready", r.web.url, "--token-file", str(good))
        refused = await run_command(env, tmp_path, "desk", "ready", r.web.url, "--token-file",
                                    str(wrong))
        fast_sim.set_registration("search", "unregistered")
        await capability_state(r.bot, "market", "disabled")
        down = await run_command(env, tmp_path, "desk", "ready", r.web.url, "--token-file", str(good))
    assert ok[0] == 0, ok
    assert refused[0] == 1 and "401" in refused[2]
    assert down[0] == 1 and "503" in down[2] and "market" in down[2]


def test_the_containerfile_builds_from_the_wheel_and_runs_unprivileged() -> None:
    lines = [ln.strip() for ln in CONTAINERFILE.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and "python:3.11" in froms[0]
    text = "\n".join(lines)
    assert "pip wheel" in text and re.search(r"pip install .*p2pbot-\*\.whl", text)
    assert f"USER {UID}:{UID}" in lines and f"--uid {UID}" in text
    assert 'ENTRYPOINT ["p2pbot"]' in lines
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
