"""Console overrides on top of the TOML file: validated like the file, shown by check-config,
skipped (and said) when the file no longer admits them."""

from __future__ import annotations

import asyncio
import os
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bot.console.overrides import OverrideRefused, apply_overrides, override_ad
from config.loader import load_config
from p2pbot.cli import main
from state.db import Store
from state.overrides import BOT_SCOPE, Override, OverrideStore, read_overrides

CONFIG = """
[[ads]]
name = "sell"
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "undercut"
[ads.params]
step = "0.01"
[ads.guards]
floor = "80"
ceiling = "99"
"""
SELECTOR = "USDT/RUB SELL"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("P2PBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def store_with(db: Path, *rows: Override) -> None:
    async def write() -> None:
        store = await Store.open(db)
        try:
            for row in rows:
                await OverrideStore(store).put(row)
        finally:
            await store.close()
    asyncio.run(write())


def test_an_override_is_validated_like_the_file(tmp_path) -> None:
    ad = load_config(config(tmp_path)).ads[0]
    assert override_ad(ad, {"floor": "85"}).config.guards.floor == Decimal(85)
    assert override_ad(ad, {"step": "0.05"}).params.step == Decimal("0.05")  # type: ignore[attr-defined]
    with pytest.raises(OverrideRefused, match=r"must be below the ceiling \(99\)"):
        override_ad(ad, {"floor": "100"})
    with pytest.raises(OverrideRefused, match="greater than 0"):
        override_ad(ad, {"ceiling": "-1"})
    with pytest.raises(OverrideRefused, match="not a number"):
        override_ad(ad, {"floor": "Infinity"})


def test_overrides_the_file_no_longer_admits_are_skipped_and_said(tmp_path) -> None:
    loaded = load_config(config(tmp_path))
    rows = [Override(SELECTOR, "floor", "100"), Override("adv_no 1", "enabled", "false"),
            Override(BOT_SCOPE, "kill_switch", "true")]
    merged, problems = apply_overrides(loaded, rows)
    assert merged.ads[0].config.guards.floor == Decimal(80)  # the file's
    assert merged.app.bot.kill_switch is True
    assert any("floor = 100 are not applied" in p and "below the ceiling" in p for p in problems)
    assert any("adv_no 1 are not applied: no such ad" in p for p in problems)


def test_check_config_shows_the_overrides_and_the_values_they_make(tmp_path, capsys,
                                                                   monkeypatch) -> None:
    db = tmp_path / "bot.db"
    store_with(db, Override(SELECTOR, "floor", "85.5", "alice", 1.0),
               Override(SELECTOR, "enabled", "false", "alice", 2.0))
    monkeypatch.setenv("P2PBOT_DB", str(db))
    code = main(["check-config", "--config", str(config(tmp_path))])
    out = capsys.readouterr().out
    assert code == 0
    assert "console overrides" in out
    assert "ad sell: floor = 85.5 (by alice)" in out and "ad sell: enabled = false" in out
    assert "85.5" in out.split("console overrides")[0]  # the ad is shown with the floor it runs
    assert read_overrides(db)  # read-only: the rows are still there


def test_check_config_without_a_store_writes_none(tmp_path, capsys, monkeypatch) -> None:
    db = tmp_path / "none.db"
    monkeypatch.setenv("P2PBOT_DB", str(db))
    assert main(["check-config", "--config", str(config(tmp_path))]) == 0
    assert "console overrides" not in capsys.readouterr().out
    assert not db.exists()


def test_check_config_names_the_consoles_chats(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("P2PBOT_TELEGRAM_TOKEN", "1:x")
    path = config(tmp_path, CONFIG + "\n[telegram]\nenabled = true\nallowed_chat_ids = [42, -7]\n")
    assert main(["check-config", "--config", str(path)]) == 0
    assert "console: Telegram commands from chat(s) 42, -7" in capsys.readouterr().out


def test_telegram_enabled_without_a_token_exits_2(tmp_path, capsys) -> None:
    path = config(tmp_path, CONFIG + "\n[telegram]\nenabled = true\nallowed_chat_ids = [1]\n")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "[telegram] → enabled: true, but P2PBOT_TELEGRAM_TOKEN" in err


def test_telegram_enabled_without_an_allow_list_is_a_config_error(tmp_path, capsys) -> None:
    path = config(tmp_path, CONFIG + "\n[telegram]\nenabled = true\n")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "[telegram] → allowed_chat_ids: set the chat ids" in capsys.readouterr().err
