"""`run` refuses a bad configuration with exit status 2 before any request is sent."""

from __future__ import annotations

import pytest

from p2pbot.cli import main
from simulator.app import run_simulator

GOOD_AD = """
[[ads]]
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "{strategy}"
[ads.guards]
floor = "90"
{extra}
"""


@pytest.mark.parametrize(("strategy", "extra", "says"), [
    ("undercut", "flor = '1'", "flor: unknown key"),                       # a wrong key
    ("tests.plugins_fixture.plugins:NoParams", "", "Params"),              # a broken plugin
    ("undercut", "floor = ", "TOML syntax error"),                         # a bad TOML file
])
async def test_bad_config_exits_2_before_any_request(tmp_path, monkeypatch, capsys,
                                                     strategy, extra, says) -> None:
    async with run_simulator("calm", speed=0) as sim:
        path = tmp_path / "bad.toml"
        path.write_text(GOOD_AD.format(strategy=strategy, extra=extra))
        monkeypatch.setenv("P2PBOT_BASE_URL", sim.base_url)
        monkeypatch.setenv("P2PBOT_API_KEY", sim.api_key)
        monkeypatch.setenv("P2PBOT_API_SECRET", sim.api_secret or "")
        monkeypatch.setenv("P2PBOT_DB", str(tmp_path / "x.db"))
        import asyncio

        code = await asyncio.to_thread(main, ["run", "--config", str(path)])
        err = capsys.readouterr().err
        assert code == 2
        assert str(path) in err and says in err
        assert sim.requests() == []
