"""Accounts laid out by `desk init` and started the way deploy/p2pbot@.service starts them.

`instance_env` reads the template's Environment= and LoadCredential= lines, puts the
instance name for %i and moves /etc/p2pbot, /var/lib/p2pbot and /run/p2pbot under a
test folder; the credentials are copied into a private $CREDENTIALS_DIRECTORY, as
systemd does. So a test runs the daemons exactly under the template's layout.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from p2pbot.cli import main
from simulator.app import Simulator
from tests.ops import daemon_env

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "p2pbot@.service"
HOST_PATHS = ("/etc/p2pbot", "/var/lib/p2pbot", "/run/p2pbot")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(key: str) -> list[str]:
    return re.findall(rf"(?m)^{key}=(.*)$", TEMPLATE.read_text(encoding="utf-8"))


@dataclass
class Instance:
    """One account under the layout: its name, port, web token and environment."""

    name: str
    port: int
    token_file: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        """Its web server."""
        return f"http://127.0.0.1:{self.port}"


def moved(path: str, name: str, host: Path) -> str:
    """A template path for instance `name`, under the test's `host` folder."""
    path = path.replace("%i", name)
    for prefix in HOST_PATHS:
        if path.startswith(prefix):
            return str(host / prefix.strip("/").replace("/", "_")) + path[len(prefix):]
    return path


def lay_out(host: Path, name: str, sim: Simulator, config_edits: dict[str, str]) -> Instance:
    """`desk init NAME`, the key pasted into its credential files, the config edited
    (regex -> replacement), and the environment systemd would give p2pbot@NAME."""
    etc = Path(moved("/etc/p2pbot", name, host))
    port = free_port()
    assert main(["desk", "init", name, "--root", str(etc), "--port", str(port)]) == 0
    creds = etc / name / "credentials"
    (creds / "api_key").write_text(sim.api_key)
    (creds / "api_secret").write_text(sim.api_secret or "")
    config = etc / name / "p2pbot.toml"
    text = config.read_text(encoding="utf-8")
    for pattern, replacement in config_edits.items():
        text, n = re.subn(pattern, replacement, text, count=1, flags=re.M)
        assert n == 1, pattern
    config.write_text(text, encoding="utf-8")
    credentials = host / "credentials" / name  # $CREDENTIALS_DIRECTORY: systemd's private copy
    credentials.mkdir(parents=True, mode=0o700)
    for line in _lines("LoadCredential"):
        cred, _, source = line.partition(":")
        shutil.copyfile(moved(source, name, host), credentials / cred)
        os.chmod(credentials / cred, 0o600)
    env = {k: moved(v, name, host) for k, _, v in (e.partition("=") for e in _lines("Environment"))}
    runtime = Path(env["XDG_RUNTIME_DIR"])
    runtime.mkdir(mode=0o700, exist_ok=True)  # RuntimeDirectory=, shared by the instances
    Path(env["P2PBOT_DB"]).parent.mkdir(parents=True, mode=0o700)  # StateDirectory=p2pbot/%i
    full = daemon_env(sim, host, Path(env["P2PBOT_CONFIG"]), **env,
                      CREDENTIALS_DIRECTORY=str(credentials))
    for secret in ("P2PBOT_API_KEY", "P2PBOT_API_SECRET"):  # from the credentials only
        full.pop(secret)
    return Instance(name, port, creds / "web_token", full)
