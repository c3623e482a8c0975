"""What `run`, `probe` and `check-config` refuse at start: a wrong secret or key (every endpoint
says -1022 or -2015), a missing or empty secret, an exchange or proxy address that is no URL.
Each exits 2 naming the variable or the cause; a single endpoint's -1022 stays a capability matter."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from p2pbot.cli import main
from simulator.app import Simulator, run_simulator
from simulator.scenario import generate_credential
from tests.support import daemon_env, run_command, start_daemon, world_factory, write_config
from tests.test_config import EXAMPLE


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No P2PBOT_* variable and no .env file leaks in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("P2PBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _check(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           **env: str) -> tuple[int, str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config", "--config", str(EXAMPLE)])
    out, err = capsys.readouterr()
    return code, out, err


# --- the exchange's address and the proxy ------------------------------------------------------

BAD_BASE_URLS = ["api.binance.com", "ftp://api.binance.com", "", "https://", "http:///sapi",
                 "https://api.binance.com/?x=1"]


@pytest.mark.parametrize("url", BAD_BASE_URLS)
def test_check_config_refuses_a_base_url_that_is_no_http_url(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _check(capsys, monkeypatch, P2PBOT_BASE_URL=url)
    assert code == 2 and out == ""
    assert err.startswith("configuration error: environment: P2PBOT_BASE_URL: ")
    assert "http://" in err and "https://" in err  # says what it wants


@pytest.mark.parametrize("url", ["https://api.binance.com", "http://127.0.0.1:8765",
                                 "https://api.binance.com/"])
def test_check_config_takes_an_http_base_url(url: str, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _check(capsys, monkeypatch, P2PBOT_BASE_URL=url)
    assert code == 0 and f"exchange: {url.rstrip('/')} " in out


@pytest.mark.parametrize("proxy", ["not a url", "proxy.local:3128", "socks5://127.0.0.1:1080",
                                   "http://"])
def test_check_config_refuses_a_proxy_that_is_no_http_url(
    proxy: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _check(capsys, monkeypatch, P2PBOT_PROXY=proxy)
    assert code == 2
    assert err.startswith("configuration error: environment: P2PBOT_PROXY: ")


def test_a_proxy_url_is_taken_and_an_empty_one_means_none(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _check(capsys, monkeypatch, P2PBOT_PROXY="http://user:pw@proxy.local:3128")
    assert code == 0 and "proxy: yes" in out and "pw" not in out
    code, out, _ = _check(capsys, monkeypatch, P2PBOT_PROXY="")
    assert code == 0 and "proxy: no" in out


@pytest.mark.parametrize(("variable", "value"), [("P2PBOT_BASE_URL", "api.binance.com"),
                                                 ("P2PBOT_PROXY", "not a url")])
def test_run_refuses_them_too_before_any_request(
    variable: str, value: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, v in {"P2PBOT_API_KEY": generate_credential(),
                    "P2PBOT_API_SECRET": generate_credential(), variable: value,
                    "P2PBOT_DB": str(tmp_path / "bot.db")}.items():
        monkeypatch.setenv(name, v)
    code = main(["run", "--config", str(EXAMPLE)])
    err = capsys.readouterr().err
    assert code == 2 and f"{variable}: " in err
    assert not (tmp_path / "bot.db").exists()


# --- the secret --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_an_empty_secret_is_an_error_naming_the_variable(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path
) -> None:
    monkeypatch.setenv("P2PBOT_API_KEY", generate_credential())
    monkeypatch.setenv("P2PBOT_API_SECRET", "")
    monkeypatch.setenv("P2PBOT_DB", str(tmp_path / "bot.db"))
    code = main([command, "--config", str(EXAMPLE)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "P2PBOT_API_SECRET" in err and "empty" in err
    assert not (tmp_path / "bot.db").exists()


def test_run_without_any_secret_names_the_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("P2PBOT_API_KEY", generate_credential())
    monkeypatch.setenv("P2PBOT_DB", str(tmp_path / "bot.db"))
    code = main(["run", "--config", str(EXAMPLE)])
    err = capsys.readouterr().err
    assert code == 2 and "P2PBOT_API_SECRET" in err and "P2PBOT_PRIVATE_KEY_FILE" in err


# --- a wrong secret or key: every endpoint refuses it -----------------------------------------


def _env(sim: Simulator, tmp_path: Path, **extra: str) -> dict[str, str]:
    return daemon_env(sim, tmp_path, write_config(tmp_path / "bot.toml"), **extra)


@pytest.mark.slow
async def test_run_with_a_wrong_secret_exits_2_naming_the_secret(tmp_path: Path) -> None:
    async with run_simulator("calm", speed=1, world_factory=world_factory()) as sim:
        env = _env(sim, tmp_path, P2PBOT_API_SECRET=generate_credential())
        status, _, err = await run_command(env, tmp_path, "run")
        answered = {r.get("code") for r in sim.requests() if r["endpoint"] != "server_time"}
        assert not sim.requests("update_ad")
    assert status == 2, err
    assert "P2PBOT_API_SECRET" in err and "-1022" in err and "every endpoint" in err
    assert err.count("every endpoint") == 1  # said once
    assert answered <= {-1022}


@pytest.mark.slow
async def test_run_with_an_unknown_key_exits_2_naming_key_and_ip_whitelist(tmp_path: Path) -> None:
    async with run_simulator("calm", speed=1, world_factory=world_factory()) as sim:
        env = _env(sim, tmp_path, P2PBOT_API_KEY=generate_credential())  # -2015 everywhere
        status, _, err = await run_command(env, tmp_path, "run")
    assert status == 2, err
    assert "P2PBOT_API_KEY" in err and "IP whitelist" in err and "-2015" in err


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["key_permissions", "search"])
async def test_a_single_endpoints_1022_keeps_running(tmp_path: Path, endpoint: str) -> None:
    async with run_simulator("calm", speed=1, world_factory=world_factory()) as sim:
        sim.set_registration(endpoint, -1022)
        daemon = await start_daemon(_env(sim, tmp_path), tmp_path)
        try:
            await asyncio.wait_for(daemon.saw("running 1 ad(s)").wait(), 20)
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.close()
    said = daemon.messages()
    assert any(f"exchange: {sim.base_url}" in m for m in said), said  # the address it talks to
    assert not any("every endpoint" in m for m in said)


# --- probe says where it talks to ----------------------------------------------------------------


async def test_probe_prints_the_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    async with run_simulator("calm", speed=0) as sim:
        for name, value in {"P2PBOT_BASE_URL": sim.base_url, "P2PBOT_API_KEY": sim.api_key,
                            "P2PBOT_API_SECRET": sim.api_secret or "",
                            "P2PBOT_DB": str(tmp_path / "x.db")}.items():
            monkeypatch.setenv(name, value)
        code = await asyncio.to_thread(main, ["probe"])
        out = capsys.readouterr().out
        code_json = await asyncio.to_thread(main, ["probe", "--json"])
        doc = capsys.readouterr().out
    assert code in (0, 3) and code_json in (0, 3)
    assert out.splitlines()[0] == f"exchange: {sim.base_url}"
    assert f'"base_url": "{sim.base_url}"' in doc
