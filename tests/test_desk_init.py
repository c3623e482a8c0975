"""The systemd template `deploy/p2pbot@.service` and `p2pbot desk init NAME`."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.accounts import layout
from bot.accounts.layout import init
from config.loader import load_config
from p2pbot.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "p2pbot@.service"
SINGLE = ROOT / "deploy" / "p2pbot.service"
# what differs between the single unit and the template: the paths of one account
PER_ACCOUNT = {"Description", "Documentation", "WorkingDirectory", "LoadCredential",
               "Environment", "StateDirectory", "RuntimeDirectoryPreserve"}


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lines in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, eq, value = line.partition("=")
        assert eq and current, f"{path.name}: not a unit line: {raw!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    """Every value of `key` in a section."""
    return [v for k, v in section if k == key]


def test_template_keeps_type_notify_and_all_the_hardening() -> None:
    template, single = unit(TEMPLATE), unit(SINGLE)
    service = template["Service"]
    assert values(service, "Type") == ["notify"] and values(service, "WatchdogSec") == ["30"]
    for key, value in single["Service"]:
        if key not in PER_ACCOUNT:
            assert (key, value) in service, f"{key}={value} of p2pbot.service is missing"


def test_template_paths_are_per_instance_and_the_key_lock_is_shared() -> None:
    service = unit(TEMPLATE)["Service"]
    env = dict(v.split("=", 1) for v in values(service, "Environment"))
    assert env["P2PBOT_CONFIG"] == "/etc/p2pbot/%i/p2pbot.toml"
    assert env["P2PBOT_DB"] == "/var/lib/p2pbot/%i/p2pbot.db"
    assert values(service, "StateDirectory") == ["p2pbot/%i"]
    creds = dict(v.split(":", 1) for v in values(service, "LoadCredential"))
    assert creds == {name: f"/etc/p2pbot/%i/credentials/{name}"
                     for name in ("api_key", "api_secret", "web_token")}
    # one lock folder for every instance, never removed while another instance holds a lock
    assert env["XDG_RUNTIME_DIR"] == "/run/p2pbot" and values(service, "RuntimeDirectory") == ["p2pbot"]
    assert values(service, "RuntimeDirectoryPreserve") == ["yes"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_template_verifies_with_systemd_analyze(tmp_path: Path) -> None:
    # the ExecStart binary must exist for verify: point it at one that does
    text = TEMPLATE.read_text(encoding="utf-8").replace("/opt/p2pbot/.venv/bin/p2pbot", "/bin/true")
    (tmp_path / "p2pbot@.service").write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "p2pbot@alice.service")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_desk_init_lays_out_an_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "etc"
    assert main(["desk", "init", "alice", "--root", str(root)]) == 0
    assert "p2pbot@alice" in capsys.readouterr().out
    folder = root / "alice"
    assert _mode(folder) == 0o700 and _mode(folder / "credentials") == 0o700
    for name in ("api_key", "api_secret", "web_token"):
        assert _mode(folder / "credentials" / name) == 0o600
    assert (folder / "credentials" / "api_key").read_text() == ""  # the merchant pastes it in
    assert len((folder / "credentials" / "web_token").read_text().strip()) >= 40
    assert _mode(folder / "p2pbot.toml") == 0o600
    config = load_config(folder / "p2pbot.toml")  # the example, valid as it is
    assert config.app.bot.dry_run is True and config.app.web.port == 8080
    assert main(["desk", "init", "bob", "--root", str(root)]) == 0
    assert tomllib.loads((root / "bob" / "p2pbot.toml").read_text())["web"]["port"] == 8081
    assert init("carol", root, port=9100).config.read_text().count("port = 9100") == 1


def test_desk_init_refuses_to_overwrite_an_account(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["desk", "init", "alice", "--root", str(tmp_path)]) == 0
    key = tmp_path / "alice" / "credentials" / "api_key"
    key.write_text("the merchant's key")
    capsys.readouterr()
    assert main(["desk", "init", "alice", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "never overwritten" in err
    assert key.read_text() == "the merchant's key"


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".x", "a b", "x" * 65])
def test_desk_init_refuses_a_name_that_is_not_an_instance_name(tmp_path: Path, name: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["desk", "init", name, "--root", str(tmp_path)]) == 2
    assert "account name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_desk_init_through_the_console_script(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "desk", "init", "dave", "--root",
                           str(tmp_path), "--port", "70000"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--port 70000" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="hands files over to another user: needs root")
def test_desk_init_as_root_hands_the_config_to_the_service_user(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setattr(layout, "SERVICE_USER", "nobody")
    root = tmp_path / "etc"
    root.mkdir(mode=0o700)  # as the single unit's recipe makes /etc/p2pbot
    account = init("alice", root)
    assert account.folder.stat().st_uid == account.config.stat().st_uid == nobody.pw_uid
    assert account.credentials.stat().st_uid == 0  # systemd reads them as root
    assert all(p.stat().st_uid == 0 for p in account.credentials.iterdir())
    assert _mode(root) == 0o711  # the user can reach its folder, not list the others
