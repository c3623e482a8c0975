"""Key safety: the key's withdrawal permission, its IP restriction, and secrets read from files."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from bot.binance.p2p import P2PApi
from bot.capabilities.registry import CapabilityRegistry
from bot.ops.service import ACCEPT_FLAG, check_key
from config.secret_files import SecretFileError
from config.settings import Settings
from simulator.app import Simulator, run_simulator
from simulator.scenario import Scenario, generate_credential, load_scenario
from tests.support import (
    ClientClock,
    daemon_env,
    run_command,
    sim_client,
    start_daemon,
    world_factory,
    write_config,
)


def scenario(**permissions: Any) -> Scenario:
    """The calm scenario with these `[keys.permissions]` for its key."""
    base = load_scenario("calm")
    key = base.keys[0]
    key = key.model_copy(update={"permissions": key.permissions.model_copy(update=permissions)})
    return base.model_copy(update={"keys": [key]})


@asynccontextmanager
async def sim_with(speed: float = 0, **permissions: Any) -> AsyncIterator[Simulator]:
    """A simulator whose key has these permissions."""
    async with run_simulator(scenario(**permissions), speed=speed, api_key=generate_credential(),
                             api_secret=generate_credential(),
                             world_factory=world_factory()) as sim:
        yield sim


async def _check(sim: Simulator, accept: bool = False) -> tuple[str | None, list[str]]:
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    client = sim_client(sim, ClientClock(sim.clock))
    try:
        return await check_key(P2PApi(CapabilityRegistry(client)), accept), said
    finally:
        logger.remove(sink)
        await client.close()


@pytest.mark.parametrize(
    ("permissions", "accept", "refused", "warning"),
    [
        ({"enable_withdrawals": True, "ip_restrict": True}, False, "can withdraw", None),
        ({"enable_withdrawals": True, "ip_restrict": True}, True, None, "can withdraw funds"),
        ({"ip_restrict": False}, False, None, "not restricted to trusted IPs"),
        ({"ip_restrict": True}, False, None, None),
        ({"account_access": False}, False, None, "could not check the API key's permissions"),
    ],
)
async def test_check_key(permissions: dict[str, bool], accept: bool, refused: str | None,
                         warning: str | None) -> None:
    async with sim_with(**permissions) as sim:
        refusal, said = await _check(sim, accept)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refused in refusal and ACCEPT_FLAG in refusal
    if warning is None:
        assert said == []
    else:
        assert any(warning in m for m in said), said


@pytest.mark.slow
async def test_run_refuses_a_key_that_can_withdraw(tmp_path: Path) -> None:
    async with sim_with(speed=1, enable_withdrawals=True) as sim:
        env = daemon_env(sim, tmp_path, write_config(tmp_path / "bot.toml"))
        status, _, err = await run_command(env, tmp_path, "run")
        assert status == 2
        assert "can withdraw funds" in err and ACCEPT_FLAG in err
        assert not sim.requests("update_ad")  # refused before any ad was touched

        daemon = await start_daemon(env, tmp_path, ACCEPT_FLAG)
        try:
            await asyncio.wait_for(daemon.saw("running 1 ad(s)").wait(), 20)
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.close()
        assert any("can withdraw funds; running because of" in m for m in daemon.messages())


# --- secrets from files -------------------------------------------------------------------------


def _secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text + "\n", encoding="utf-8")
    os.chmod(path, mode)
    return path


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in [n for n in os.environ if n.startswith("P2PBOT_") or n == "CREDENTIALS_DIRECTORY"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_secrets_come_from_their_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(monkeypatch,
                  P2PBOT_API_KEY_FILE=str(_secret(tmp_path / "key", "KEYVALUE1")),
                  P2PBOT_API_SECRET_FILE=str(_secret(tmp_path / "secret", "SECRETVALUE1")),
                  P2PBOT_WEB_TOKEN_FILE=str(_secret(tmp_path / "web", "WEBTOKEN1", 0o400)),
                  P2PBOT_TELEGRAM_TOKEN_FILE=str(_secret(tmp_path / "tg", "TGTOKEN1")))
    assert s.api_key is not None and s.api_key.get_secret_value() == "KEYVALUE1"
    assert s.api_secret is not None and s.api_secret.get_secret_value() == "SECRETVALUE1"
    assert s.web_token is not None and s.web_token.get_secret_value() == "WEBTOKEN1"
    assert s.telegram_token is not None and s.telegram_token.get_secret_value() == "TGTOKEN1"


def test_systemd_credentials_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    _secret(creds / "api_key", "KEYFROMSYSTEMD", 0o400)
    _secret(creds / "api_secret", "SECRETFROMSYSTEMD", 0o400)
    _secret(creds / "private_key", "-----BEGIN PRIVATE KEY-----", 0o400)
    s = _settings(monkeypatch, CREDENTIALS_DIRECTORY=str(creds), P2PBOT_API_SECRET="explicit")
    assert s.api_key is not None and s.api_key.get_secret_value() == "KEYFROMSYSTEMD"
    assert s.api_secret is not None and s.api_secret.get_secret_value() == "explicit"  # env wins
    assert s.private_key_file == creds / "private_key"


@pytest.mark.parametrize("variable", ["P2PBOT_API_SECRET_FILE", "P2PBOT_PRIVATE_KEY_FILE"])
def test_a_secret_file_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  variable: str) -> None:
    path = _secret(tmp_path / "secret file", "SECRETVALUE1", 0o644)
    with pytest.raises(SecretFileError) as err:
        _settings(monkeypatch, **{variable: str(path)})
    assert f"chmod 600 '{path}'" in str(err.value) and variable in str(err.value)


def test_both_a_secret_and_its_file_is_an_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SecretFileError, match="P2PBOT_API_KEY or P2PBOT_API_KEY_FILE, not both"):
        _settings(monkeypatch, P2PBOT_API_KEY="x" * 64,
                  P2PBOT_API_KEY_FILE=str(_secret(tmp_path / "key", "KEYVALUE1")))
    with pytest.raises(SecretFileError, match="is empty"):
        _settings(monkeypatch, P2PBOT_API_KEY_FILE=str(_secret(tmp_path / "empty", "")))


@pytest.mark.slow
async def test_run_exits_2_naming_the_chmod(tmp_path: Path) -> None:
    secret = _secret(tmp_path / "secret", generate_credential(), 0o640)
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PBOT_")}
    env.update(P2PBOT_API_KEY=generate_credential(), P2PBOT_API_SECRET_FILE=str(secret),
               P2PBOT_CONFIG=str(write_config(tmp_path / "bot.toml")),
               P2PBOT_DB=str(tmp_path / "bot.db"))
    status, _, err = await run_command(env, tmp_path, "run")
    assert status == 2
    assert f"chmod 600 {secret}" in err and "readable by group or others" in err
    assert not (tmp_path / "bot.db").exists()  # refused before anything was opened
