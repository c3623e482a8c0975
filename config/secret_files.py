"""Secrets read from files: `P2PBOT_*_FILE` variables and systemd's `$CREDENTIALS_DIRECTORY`.

A secret file must be readable by its owner only: a file that group or others
may read is refused (exit 2) with the exact `chmod 600 PATH` to run. The same
rule holds for the private key file (`P2PBOT_PRIVATE_KEY_FILE`). One exception,
named explicitly: with `P2PBOT_SECRET_GROUP=<gid>`, a file that group may read
(never write) and others may not is accepted: a Kubernetes Secret mounted with the
pod's fsGroup is 0440 whatever its defaultMode (deploy/kubernetes/).
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
SECRET_GROUP = "P2PBOT_SECRET_GROUP"  # the one group that may read secret files (a pod's fsGroup)

# setting name -> the variable that names its file; the setting name is also the
# credential's name under $CREDENTIALS_DIRECTORY (systemd LoadCredential=NAME:PATH)
SECRET_FILES: dict[str, str] = {
    "api_key": "P2PBOT_API_KEY_FILE",
    "api_secret": "P2PBOT_API_SECRET_FILE",
    "telegram_token": "P2PBOT_TELEGRAM_TOKEN_FILE",
    "web_token": "P2PBOT_WEB_TOKEN_FILE",
    "private_key_password": "P2PBOT_PRIVATE_KEY_PASSWORD_FILE",
}
PRIVATE_KEY_CREDENTIAL = "private_key"  # $CREDENTIALS_DIRECTORY/private_key: the PEM file


class SecretFileError(Exception):
    """A secret file is missing, empty or readable by others: printed as is, exit status 2."""


def check_private(path: Path, variable: str) -> None:
    """Refuse a file that group or others may read (or write), naming the chmod that fixes it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretFileError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise SecretFileError(f"{variable}: {path} is not a regular file")
    if mode & 0o077 & ~_group_read(path):
        raise SecretFileError(
            f"{variable}: {path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"a secret file must be private to its owner: run  chmod 600 {shlex.quote(str(path))}"
        )


def _group_read(path: Path) -> int:
    """0o040 when the file's group is the one P2PBOT_SECRET_GROUP names, else 0."""
    named = os.environ.get(SECRET_GROUP, "").strip()
    return 0o040 if named.isdigit() and path.stat().st_gid == int(named) else 0


def read_secret(path: Path, variable: str) -> str:
    """The secret in `path` (surrounding whitespace removed), after the permission check."""
    check_private(path, variable)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(f"{variable}: cannot read {path}: {exc}") from None
    if not text:
        raise SecretFileError(f"{variable}: {path} is empty")
    return text


def _given(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    return value is not None and value != ""


def resolve(data: MutableMapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Fill secrets from their `*_FILE` variables, else from $CREDENTIALS_DIRECTORY (in place)."""
    env = os.environ if environ is None else environ
    creds = env.get(CREDENTIALS_DIRECTORY)
    for name, variable in SECRET_FILES.items():
        file = data.get(f"{name}_file")
        if file not in (None, ""):
            if _given(data, name):
                direct = variable.removesuffix("_FILE")
                raise SecretFileError(f"set {direct} or {variable}, not both")
            data[name] = read_secret(Path(str(file)), variable)
        elif creds and not _given(data, name) and (Path(creds) / name).is_file():
            data[name] = read_secret(Path(creds) / name, f"{CREDENTIALS_DIRECTORY}/{name}")
    key_file = Path(creds) / PRIVATE_KEY_CREDENTIAL if creds else None
    if key_file is not None and not _given(data, "private_key_file") and key_file.is_file():
        data["private_key_file"] = key_file
