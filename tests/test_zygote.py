"""A process forked from the tests' zygote (tests/zygote.py) is `python run.py ARGS`.

The same commands, once in a fresh interpreter and once forked: the same exit status, the
same output, the environment, working directory and standard streams each was given; and
a signal ends a forked one as it ends a real one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests import zygote
from tests.support import ROOT, RUN_PY

pytestmark = pytest.mark.slow  # it starts a real interpreter to compare with


async def fresh(*argv: str, env: dict[str, str], cwd: Path) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RUN_PY), *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err


async def forked(*argv: str, env: dict[str, str], cwd: Path) -> tuple[int, bytes, bytes]:
    proc = await zygote.spawn(*argv, env=env, cwd=cwd, stdout=zygote.PIPE, stderr=zygote.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out, err


async def test_a_forked_command_answers_as_a_fresh_interpreter_does(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    env["P2PBOT_CONFIG"] = "bot.toml"  # relative: read from the working directory
    (tmp_path / "bot.toml").write_text((ROOT / "config" / "example.toml").read_text())
    checked = await fresh("check-config", env=env, cwd=tmp_path)
    assert checked[0] == 0 and b"nothing was sent" in checked[1]
    assert await forked("check-config", env=env, cwd=tmp_path) == checked

    (tmp_path / "bot.toml").write_text("[bot]\nmarket_interval = -1\n")
    refused = await forked("check-config", env=env, cwd=tmp_path)
    assert refused[0] == 2 and b"market_interval" in refused[1] + refused[2]


async def test_a_signal_ends_a_forked_process_as_it_ends_a_real_one(tmp_path: Path) -> None:
    proc = await zygote.spawn("run", env={"PATH": os.environ.get("PATH", "")}, cwd=tmp_path,
                              stdin=zygote.PIPE, hold=True)
    assert proc.returncode is None
    proc.kill()
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL
