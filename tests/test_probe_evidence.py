"""probe's evidence pack for a Binance support ticket: per endpoint the code, message, time
(UTC and local) and the request id the exchange gave; never the key, the secret or a signature."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot.binance.client import Seen, request_ids
from bot.capabilities.evidence import Evidence, render
from bot.logs import MASK, Redactor
from p2pbot.cli import main
from simulator.app import Simulator, run_simulator
from simulator.scenario import parse_scenario
from tests.support import KEY, SECRET

UNREGISTERED = ("search", "chat_credential", "order_history")


def scenario() -> object:
    """The calm world on Binance's documented key and secret, three endpoints not enabled."""
    return parse_scenario({
        "sim": {"seed": 1, "speed": 0},
        "keys": [{"label": "main", "api_key": KEY, "secret": SECRET,
                  "registration": {name: "unregistered" for name in UNREGISTERED}}]})


def point_at(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[bot]\ntimezone = "America/Sao_Paulo"\n')
    for name, value in {"P2PBOT_BASE_URL": sim.base_url, "P2PBOT_API_KEY": KEY,
                        "P2PBOT_API_SECRET": SECRET, "P2PBOT_DB": str(tmp_path / "x.db"),
                        "P2PBOT_CONFIG": str(config)}.items():
        monkeypatch.setenv(name, value)


async def test_the_pack_names_code_message_time_and_request_id_without_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "ticket.txt"
    async with run_simulator(scenario(), speed=0) as sim:  # type: ignore[arg-type]
        point_at(sim, tmp_path, monkeypatch)
        code = await asyncio.to_thread(main, ["probe", "--evidence", str(pack)])
        out = capsys.readouterr().out
        last = {r["endpoint"]: r for r in sim.requests()}  # each endpoint's last request
    assert code == 3
    assert out.splitlines()[0] == f"exchange: {sim.base_url}"
    assert f"evidence for a support ticket: {pack}" in out
    text = pack.read_text()
    assert KEY not in text and SECRET not in text
    assert "signature" not in text and "timestamp=" not in text and "recvWindow" not in text
    assert f"exchange:  {sim.base_url}" in text
    blocks = {b.split(":", 1)[0]: b for b in text.split("\n\n") if ": POST " in b or ": GET " in b}
    search = blocks["search"]
    assert "search: POST /sapi/v1/c2c/ads/search" in search
    assert "result:     unregistered (HTTP 400, code -2008, 'Invalid Api-Key ID.')" in search
    assert f"x-mbx-uuid: {last['search']['request_id']}" in search
    assert re.search(r"time:       \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC "
                     r"\(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d -03\)", search), search
    mine = blocks["my_ads"]
    assert "result:     available (HTTP 200)" in mine
    assert f"x-mbx-uuid: {last['my_ads']['request_id']}" in mine
    assert "not probed (a write)" in blocks["update_ad"]
    assert "America/Sao_Paulo" in text.split("\n\n")[1]


async def test_json_carries_the_pack_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    async with run_simulator(scenario(), speed=0) as sim:  # type: ignore[arg-type]
        point_at(sim, tmp_path, monkeypatch)
        code = await asyncio.to_thread(main, ["probe", "--json", "--evidence", "-"])
        out = capsys.readouterr().out
    doc = json.loads(out)
    assert code == 3 and KEY not in out and SECRET not in out
    rows = {e["endpoint"]: e for e in doc["evidence"]}
    assert rows["chat_credential"]["code"] == -2008
    assert rows["chat_credential"]["http_status"] == 400
    assert set(rows["chat_credential"]["request_ids"]) == {"x-mbx-uuid"}
    assert rows["chat_credential"]["time_utc"].endswith(" UTC")


def test_request_ids_are_taken_from_the_reply_headers() -> None:
    headers = {"X-MBX-UUID": "abc", "Content-Type": "application/json", "x-amz-cf-id": "cf1"}
    assert request_ids(headers) == (("x-mbx-uuid", "abc"), ("x-amz-cf-id", "cf1"))
    assert request_ids({}) == ()


def test_a_secret_in_an_exchange_message_is_masked() -> None:
    from zoneinfo import ZoneInfo

    redactor = Redactor()
    redactor.register(KEY)
    redactor.register(SECRET)
    item = Evidence("my_ads", "POST", "/sapi/v1/c2c/ads/listWithPagination", "refused", 401,
                    -2015, f"Invalid API-key {KEY}, IP, or permissions; {SECRET}",
                    "2026-11-25 17:50:01.000 UTC", "2026-11-25 14:50:01 -03", {"x-mbx-uuid": "u1"})
    text = render([item], base_url="https://api.binance.com", generated_at=0.0,
                  tz=ZoneInfo("America/Sao_Paulo"), capabilities={"my_ads": "disabled"},
                  redactor=redactor)
    assert KEY not in text and SECRET not in text and MASK in text
    assert "request id: x-mbx-uuid: u1" in text
    assert Seen(1.0, 200).ids == ()
