"""The schedule tables and the merchant's time zone in the TOML file (config/schedule.py)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from config.loader import ConfigFileError, load_config
from config.schedule import effective

AD = """
[[ads]]
name = "sell"
asset = "USDT"
fiat = "BRL"
side = "SELL"
strategy = "undercut"
[ads.guards]
floor = "5.00"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bot.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    return [line.removeprefix(f"{path}: ") for line in info.value.problems]


def test_a_full_schedule_loads(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('[bot]\ntimezone = "America/Sao_Paulo"\n[schedule]\n'
                    'windows = ["mon-fri 08:00-22:00", "sat 10:00-14:00"]\n'
                    'holidays = ["2026-12-25"]\noutside = "hide"\nbusiness = true\n'
                    + AD + '[ads.schedule]\noutside = "offline"\n')
    app = load_config(path).app
    assert app.bot.timezone == "America/Sao_Paulo"
    assert app.schedule is not None and app.schedule.business
    mine = effective(app.schedule, app.ads[0].schedule)
    assert mine is not None
    assert (mine.windows, mine.holidays, mine.outside) == (
        ("mon-fri 08:00-22:00", "sat 10:00-14:00"), ("2026-12-25",), "offline")


@pytest.mark.parametrize(("text", "expected"), [
    ('[bot]\ntimezone = "Mars/Olympus"\n',
     '[bot] → timezone: unknown time zone "Mars/Olympus"'),
    ('[schedule]\nwindows = ["mon-fri 08:00-22:00", "weekends 10:00-12:00"]\n',
     '[schedule] → windows[1]: "weekends" is not a day'),
    ('[schedule]\nwindows = []\n', "[schedule] → windows: Tuple should have at least 1 item"),
    ('[schedule]\nwindows = ["daily 08:00-20:00"]\nholidays = ["25.12.2026"]\n',
     '[schedule] → holidays[0]: "25.12.2026" is not a date'),
    ('[schedule]\nwindows = ["daily 08:00-20:00"]\noutside = "close"\n',
     "[schedule] → outside: Input should be 'offline' or 'hide'"),
    ('[schedule]\ntimezone = "America/Sao_Paulo"\nwindows = ["daily 08:00-20:00"]\n',
     "schedule: timezone is set once, as [bot] timezone"),
    ('[schedule]\nwindow = ["daily 08:00-20:00"]\n',
     "[schedule] → window: unknown key (did you mean 'windows'?"),
    (AD + '[ads.schedule]\noutside = "hide"\n',
     '[[ads]] #1 "sell" → schedule.windows: missing: this ad\'s schedule has no hours'),
    (AD + '[ads.schedule]\nwindows = ["mon 8:00-25:00"]\n',
     '[[ads]] #1 "sell" → schedule.windows[0]: 25:00 is not a time of day'),
])
def test_bad_schedules_name_file_table_and_key(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(line.startswith(expected) for line in found), found


def test_an_ads_own_keys_win_and_the_rest_come_from_the_bot() -> None:
    from config.schedule import AdSchedule, ScheduleConfig

    bot = ScheduleConfig(windows=("daily 08:00-20:00",), holidays=("2026-12-25",))
    assert effective(bot, None) is bot
    own = effective(bot, AdSchedule(windows=("sat 10:00-12:00",)))
    assert own is not None and own.windows == ("sat 10:00-12:00",)
    assert own.holidays == ("2026-12-25",) and own.outside == "offline"
    assert effective(None, None) is None


def test_check_config_shows_the_zone_and_each_ads_hours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from p2pbot.cli import main

    path = tmp_path / "bot.toml"
    path.write_text('[bot]\ntimezone = "America/Sao_Paulo"\n[schedule]\n'
                    'windows = ["mon-fri 08:00-22:00"]\nholidays = ["2026-12-25"]\nbusiness = true\n'
                    + AD + AD.replace('"sell"', '"other"').replace('"SELL"', '"BUY"').replace(
                        'floor = "5.00"', 'ceiling = "6.00"')
                    + '[ads.schedule]\nwindows = ["sat 10:00-14:00"]\noutside = "hide"\n')
    for name in ("P2PBOT_API_KEY", "P2PBOT_API_SECRET"):
        monkeypatch.setenv(name, "x" * 64)
    monkeypatch.setenv("P2PBOT_DB", str(tmp_path / "x.db"))
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "time zone: America/Sao_Paulo\n" in out
    assert "  the merchant's business is closed outside [schedule] and opened inside it" in out
    assert "  sell: mon-fri 08:00-22:00; holidays 2026-12-25; outside: offline (" in out
    assert "  other: sat 10:00-14:00; holidays 2026-12-25; outside: hide (" in out
    assert main(["check-config", "--json", "--config", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["hours"]["timezone"] == "America/Sao_Paulo"
    assert [a["outside"] for a in doc["hours"]["ads"]] == ["offline", "hide"]
