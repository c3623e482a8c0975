"""A Kubernetes Secret mounted as files with the pod's fsGroup is group-readable (0440: the
kubelet adds the group bits): P2PBOT_SECRET_GROUP names that one group, and only then is a
file readable by it, and by no one else, accepted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.secret_files import SecretFileError, read_secret


def _file(path: Path, mode: int) -> Path:
    path.write_text("the-secret\n")
    path.chmod(mode)
    return path


def test_group_readable_by_the_named_group_is_accepted(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _file(tmp_path / "api_key", 0o440)
    monkeypatch.setenv("P2PBOT_SECRET_GROUP", str(os.stat(secret).st_gid))
    assert read_secret(secret, "P2PBOT_API_KEY_FILE") == "the-secret"


@pytest.mark.parametrize("mode", [0o444, 0o460, 0o640 | 0o004])
def test_others_or_group_write_are_refused_even_with_the_group(tmp_path: Path, mode: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _file(tmp_path / "api_key", mode)
    monkeypatch.setenv("P2PBOT_SECRET_GROUP", str(os.stat(secret).st_gid))
    with pytest.raises(SecretFileError, match="chmod 600"):
        read_secret(secret, "P2PBOT_API_KEY_FILE")


def test_group_readable_without_the_group_or_by_another_group_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = _file(tmp_path / "api_key", 0o440)
    monkeypatch.delenv("P2PBOT_SECRET_GROUP", raising=False)
    with pytest.raises(SecretFileError, match="readable by group or others"):
        read_secret(secret, "P2PBOT_API_KEY_FILE")
    monkeypatch.setenv("P2PBOT_SECRET_GROUP", str(os.stat(secret).st_gid + 1))
    with pytest.raises(SecretFileError, match="readable by group or others"):
        read_secret(secret, "P2PBOT_API_KEY_FILE")
