"""One account's directory, as the systemd template `deploy/p2pbot@.service` expects it.

    <root>/<NAME>/p2pbot.toml             the configuration (an example to edit)
    <root>/<NAME>/credentials/            mode 700, one secret per file, mode 600:
        api_key, api_secret                 empty until you paste the key's values in
        web_token                           generated: the bearer token of /metrics, /api/status

The root is /etc/p2pbot by default; systemd loads the credentials with LoadCredential=
(the bot reads them from $CREDENTIALS_DIRECTORY) and keeps the store in
/var/lib/p2pbot/<NAME>/ (StateDirectory=). Outside systemd the same files are named by
the `*_FILE` variables (`env_for`). An existing account is never overwritten.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from config.settings import EXAMPLE_CONFIG

DEFAULT_ROOT = Path("/etc/p2pbot")
STATE_ROOT = Path("/var/lib/p2pbot")
CONFIG_NAME = "p2pbot.toml"
CREDENTIALS = "credentials"
SECRETS = ("api_key", "api_secret")  # empty files the merchant fills in
FIRST_PORT = 8080
SERVICE_USER = "p2pbot"  # the template's User=: owns the account folder and its config
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a systemd instance name without escaping


class LayoutError(Exception):
    """The account cannot be laid out (bad name, already there, no room): exit 2."""


@dataclass(frozen=True)
class Account:
    """The paths of one account under a root."""

    name: str
    root: Path

    @property
    def folder(self) -> Path:
        """`<root>/<name>`."""
        return self.root / self.name

    @property
    def config(self) -> Path:
        """The configuration file."""
        return self.folder / CONFIG_NAME

    @property
    def credentials(self) -> Path:
        """The folder of secret files."""
        return self.folder / CREDENTIALS

    def secret(self, name: str) -> Path:
        """One secret's file (api_key, api_secret, web_token)."""
        return self.credentials / name


def check_name(name: str) -> str:
    """`name` when it can name a systemd instance and a folder as is; else LayoutError."""
    if not NAME.match(name):
        raise LayoutError(f"account name {name!r}: use letters, digits, '_', '.', '-' (at most 64, "
                          "starting with a letter or digit): it names a folder and a systemd instance")
    return name


def ports_in_use(root: Path) -> set[int]:
    """The `[web] port` of every account already under `root` (unreadable files are skipped)."""
    used: set[int] = set()
    for config in sorted(root.glob(f"*/{CONFIG_NAME}")):
        try:
            web = tomllib.loads(config.read_text(encoding="utf-8")).get("web", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        port = web.get("port", FIRST_PORT) if isinstance(web, dict) else FIRST_PORT
        if isinstance(port, int):
            used.add(port)
    return used


def free_port(root: Path) -> int:
    """The first port from 8080 that no account under `root` uses: two instances, two ports."""
    used = ports_in_use(root)
    port = FIRST_PORT
    while port in used:
        port += 1
    return port


def example_config(port: int) -> str:
    """The shipped example with the account's port, starting as a dry run (nothing is sent
    until you set dry_run = false, after `check-config`)."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = 8080( +)#", lambda m: f"port = {port}{m.group(1)}#", text, count=1)
    text = re.sub(r"(?m)^dry_run = false( +)#", lambda m: f"dry_run = true {m.group(1)}#",
                  text, count=1)
    return text


def _write_private(path: Path, text: str) -> None:
    """Create `path` with mode 600 (never replacing a file), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _hand_over(account: Account) -> None:
    """Run as root with the service's user present: the folder and the config become that
    user's (the bot reads its config itself); the credentials stay root's (systemd reads
    them); the root becomes traversable (not listable) so that the user reaches its folder."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return
    for path in (account.folder, account.config):
        os.chown(path, user.pw_uid, user.pw_gid)
    mode = account.root.stat().st_mode
    if mode & 0o111 != 0o111:  # a root made 700 (the single unit's recipe): let the user through
        account.root.chmod(stat.S_IMODE(mode) | 0o111)


def init(name: str, root: Path = DEFAULT_ROOT, port: int | None = None) -> Account:
    """Lay out one account; LayoutError when it exists already (nothing is touched then).

    The root is made traversable (755: it holds no secret itself); the account's folder
    and credentials are 700, every file in them 600."""
    account = Account(check_name(name), root)
    if account.folder.exists() or account.folder.is_symlink():
        raise LayoutError(f"{account.folder} exists: an account is never overwritten (move it "
                          "away first, or pick another name)")
    chosen = free_port(root) if port is None else port
    try:
        if not root.is_dir():
            root.mkdir(parents=True)
            root.chmod(0o755)
        account.folder.mkdir(mode=0o700)
        account.credentials.mkdir(mode=0o700)
        _write_private(account.config, example_config(chosen))
        for secret in SECRETS:
            _write_private(account.secret(secret), "")
        _write_private(account.secret("web_token"), secrets.token_urlsafe(32) + "\n")
        _hand_over(account)
    except OSError as exc:
        raise LayoutError(f"cannot lay out {account.folder}: {exc.strerror or exc}") from None
    return account


def env_for(account: Account, state: Path) -> dict[str, str]:
    """The environment of this account outside systemd: `*_FILE` variables, config and store."""
    return {"P2PBOT_CONFIG": str(account.config), "P2PBOT_DB": str(state / "p2pbot.db"),
            "P2PBOT_API_KEY_FILE": str(account.secret("api_key")),
            "P2PBOT_API_SECRET_FILE": str(account.secret("api_secret")),
            "P2PBOT_WEB_TOKEN_FILE": str(account.secret("web_token"))}
