"""`p2pbot ads`: the merchant's own ads, every page, and `[[ads]]` blocks check-config accepts."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from config.loader import load_config
from p2pbot.cli import COMMANDS, main
from simulator.app import Simulator, run_simulator
from simulator.scenario import parse_scenario

FIXED = 23  # more than a page of 20: the second page must be read too


def many_ads() -> dict[str, object]:
    ads = [{"side": "SELL" if i % 2 else "BUY", "price": f"{92 + i / 100:.2f}",
            "adv_no": f"110000000000000{i:05d}", "surplus": "1000", "min": "500", "max": "20000"}
           for i in range(FIXED)]
    ads.append({"side": "BUY", "price_type": "floating", "ratio": "99.5",
                "adv_no": "11000000000000099999", "surplus": "250"})
    ads.append({"side": "SELL", "price": "93.10", "adv_no": "11000000000000088888",
                "status": 3})
    return {"sim": {"seed": 3, "speed": 0}, "keys": [{"label": "main"}],
            "world": {"markets": [{"competitors": 4, "bots": 0, "decoys": 0}], "own_ads": ads}}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def point_at(sim: Simulator) -> None:
        for name, value in {"P2PBOT_BASE_URL": sim.base_url, "P2PBOT_API_KEY": sim.api_key,
                            "P2PBOT_API_SECRET": sim.api_secret or "",
                            "P2PBOT_DB": str(tmp_path / "x.db")}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("P2PBOT_CONFIG", raising=False)

    return point_at


def test_ads_is_a_registered_command() -> None:
    assert COMMANDS["ads"][0] == "bot.commands.ads"


async def test_every_ad_on_every_page_and_blocks_check_config_accepts(
        tmp_path: Path, env, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    async with run_simulator(parse_scenario(many_ads()), speed=0) as sim:
        env(sim)
        code = await asyncio.to_thread(main, ["ads"])
        out = capsys.readouterr().out
        writes = [r for r in sim.requests() if r["endpoint"] in ("update_ad", "update_ad_status")]
        pages = [r["body"]["page"] for r in sim.requests("my_ads")]
        config = tmp_path / "bot.toml"
        config.write_text(out.split("\n\n", 1)[1])  # everything after the table
        checked = await asyncio.to_thread(main, ["check-config", "--config", str(config)])
        plan = capsys.readouterr()
    assert code == 0 and writes == [] and pages == [1, 2]
    assert out.splitlines()[0] == f"exchange: {sim.base_url}"
    table = out.split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) == FIXED + 2
    assert any(re.match(r"11000000000000099999\s+BUY\s+USDT/RUB\s+floating 99.5%\s+\d", line)
               for line in table), table
    assert any(re.match(r"11000000000000088888\s+SELL\s+USDT/RUB\s+fixed\s+93.10\s", line)
               and line.endswith("offline") for line in table), table
    assert checked == 0, plan.err
    loaded = load_config(config)
    assert len(loaded.ads) == FIXED + 2
    by_no = {ad.config.adv_no: ad for ad in loaded.ads}
    floating = by_no["11000000000000099999"]
    assert floating.config.strategy == "follow_reference"
    assert str(floating.params.ratio) == "99.5"  # type: ignore[attr-defined]
    fixed = by_no["11000000000000000003"].config  # SELL at 92.03
    assert str(fixed.guards.floor) == "91.10" and str(fixed.guards.ceiling) == "92.96"
    assert fixed.guards.max_updates == 10 and fixed.strategy == "undercut"


async def test_json_lists_the_ads_with_their_blocks(tmp_path: Path, env,  # type: ignore[no-untyped-def]
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    async with run_simulator("calm", speed=0) as sim:
        env(sim)
        code = await asyncio.to_thread(main, ["ads", "--json", "--band", "2"])
        doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {a["side"] for a in doc} == {"SELL", "BUY"}
    assert {a["price_type"] for a in doc} == {"fixed", "floating"}
    for a in doc:
        assert set(a) >= {"adv_no", "side", "asset", "fiat", "price_type", "price", "min", "max",
                          "available", "status", "toml"}
        assert re.search(rf'adv_no = "{a["adv_no"]}"', a["toml"])


async def test_unreadable_ads_say_why(tmp_path: Path, env,  # type: ignore[no-untyped-def]
                                      capsys: pytest.CaptureFixture[str]) -> None:
    async with run_simulator("calm", speed=0) as sim:
        env(sim)
        sim.set_registration("my_ads", "unregistered")
        code = await asyncio.to_thread(main, ["ads"])
        out = capsys.readouterr().out
    assert code == 3
    assert "your ads could not be read" in out and "not enabled for this API key" in out


def test_a_bad_band_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ads", "--band", "0"]) == 2
    assert "--band 0" in capsys.readouterr().err
