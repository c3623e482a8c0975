"""`check-config`: exit 0 and the resolved plan when valid; exit 2 and one line per problem if not."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from p2pbot.cli import main
from tests.test_config import EXAMPLE, SELL_AD


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No P2PBOT_* variable and no .env file leaks in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("P2PBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-config", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --- errors: exit 2, one line per problem on stderr, nothing on stdout ------------------

AD = '[[ads]]\nname = "a"\nadv_no = "1"\nstrategy = "fixed"\nparams = { price = "1" }\n'

CASES = [
    ("unknown key in [bot]", "[bot]\ndry_run_typo = true\n", "[bot] → dry_run_typo: unknown key"),
    ("unknown key in [capabilities]", "[capabilities]\nprobe = 1\n", "[capabilities] → probe: unknown key"),
    ("unknown key in [[ads]]", AD + "guards = { floor = 1 }\nnam = 'x'\n",
     '[[ads]] #1 "a" → nam: unknown key (did you mean \'name\'?'),
    ("unknown key in [ads.params]", AD.replace('price = "1"', 'price = "1", prise = "2"')
     + "guards = { floor = 1 }\n", '[[ads]] #1 "a" → params.prise: unknown parameter of fixed'),
    ("unknown key in [ads.filters]", AD + "guards = { floor = 1 }\nfilters = { merchant_only = true }\n",
     '[[ads]] #1 "a" → filters.merchant_only: unknown key (did you mean \'merchants_only\'?'),
    ("unknown key in [ads.guards]", AD + "guards = { floor = 1, celing = 2 }\n",
     '[[ads]] #1 "a" → guards.celing: unknown key (did you mean \'ceiling\'?'),
    ("unknown key in [orders]", "[orders]\nstuck = 1\n", "[orders] → stuck: unknown key"),
    ("unknown key in [orders.on.x]", "[orders.on.new]\nnotfy = true\n", "[orders.on.new] → notfy: unknown key"),
    ("unknown key in [chat]", "[chat]\noutbox = 1\n", "[chat] → outbox: unknown key"),
    ("unknown key in [notify]", "[notify]\nmax = 1\n", "[notify] → max: unknown key"),
    ("unknown key in [web]", "[web]\naddress = 'x'\n", "[web] → address: unknown key"),
    ("unknown table", "[database]\npath = 'x'\n", "database: unknown table"),
    ("wrong type", "[bot]\nkill_switch = 'off'\n", '[bot] → kill_switch: Input should be a valid boolean, got "off"'),
    ("wrong decimal", AD + "guards = { floor = 'ninety' }\n",
     '[[ads]] #1 "a" → guards.floor: Input should be a valid decimal, got "ninety"'),
    ("adv_no as integer", AD.replace('"1"\n', "12345678901234567890\n", 1) + "guards = { floor = 1 }\n",
     '[[ads]] #1 "a" → adv_no: write the ad id as a string: adv_no = "12345678901234567890"'),
    ("adv_no and asset/fiat/side", AD + 'asset = "USDT"\nfiat = "RUB"\nside = "SELL"\nguards = { floor = 1 }\n',
     '[[ads]] #1 "a" → adv_no: give either adv_no or asset + fiat + side, not both (asset, fiat, side set)'),
    ("neither", '[[ads]]\nstrategy = "undercut"\nguards = { floor = 1 }\n',
     "[[ads]] #1 → adv_no: missing: give the ad's adv_no, or asset + fiat + side"),
    ("floor >= ceiling", AD + 'guards = { floor = 96.00, ceiling = 90.10 }\n',
     '[[ads]] #1 "a" → guards.floor: 96.00 must be below the ceiling (90.10)'),
    ("no bound", AD + 'guards = { max_step = 1 }\n',
     '[[ads]] #1 "a" → guards.floor: set a floor, a ceiling or both'),
    ("unknown strategy", AD.replace('"fixed"', '"nope"') + "guards = { floor = 1 }\n",
     '[[ads]] #1 "a" → strategy: unknown strategy \'nope\''),
    ("missing plugin module", AD.replace('"fixed"', '"nope.mod:Cls"') + "guards = { floor = 1 }\n",
     '[[ads]] #1 "a" → strategy: nope.mod:Cls: module \'nope.mod\' not found'),
    ("broken plugin", AD.replace('"fixed"', '"strategies.base:Hold"') + "guards = { floor = 1 }\n",
     '[[ads]] #1 "a" → strategy: strategies.base:Hold: has no \'name\' (a str)'),
    ("bad strategy param", AD.replace('price = "1"', 'price = "-5"') + "guards = { floor = 1 }\n",
     '[[ads]] #1 "a" → params.price: Input should be greater than 0'),
    ("unknown template field", "[orders.on.new]\nchat = 'Hi {name}'\n",
     "[orders.on.new] → chat: {name}: unknown field 'name' (allowed: nickname, amount, asset, fiat, "
     "total, price, order_no, pay_method)"),
    ("failing format spec", "[orders.on.new]\nchat = 'Total {total:x}'\n",
     "[orders.on.new] → chat: {total:x}: bad format spec"),
    ("unknown status", "[orders.on.paid]\nnotify = true\n",
     "[orders.on] → paid: unknown status (allowed: new, buyer_paid, completed, cancelled, appeal, stuck)"),
    ("unknown capability", "[capabilities]\nessential = ['markets']\n",
     "[capabilities] → essential[0]: unknown capability 'markets'"),
    ("TOML syntax error", "[bot]\ndry_run = tru\n", "line 2, column 11: TOML syntax error: Invalid value"),
]


@pytest.mark.parametrize(("text", "said"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, said: str
) -> None:
    path = write(tmp_path, text)
    code, out, err = check(capsys, "--config", str(path))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"configuration error: {path}: {said}"), lines[0]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys, "--config", "nowhere.toml")
    assert code == 2 and out == ""
    assert err == "configuration error: nowhere.toml: no such file (pass --config PATH or set P2PBOT_CONFIG)\n"


def test_every_problem_gets_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[bot]\ndry_run = 1\n[web]\nport = 'x'\n")
    code, _, err = check(capsys, "--config", str(path))
    assert code == 2
    assert [line.split(" → ")[0] for line in err.splitlines()] == [
        f"configuration error: {path}: [bot]", f"configuration error: {path}: [web]"]


def test_bad_environment_is_reported_with_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PBOT_RECV_WINDOW", "0")
    path = write(tmp_path, "[bot]\ntypo = 1\n")
    code, _, err = check(capsys, "--config", str(path))
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith("configuration error: environment: P2PBOT_RECV_WINDOW:")
    assert lines[1].startswith(f"configuration error: {path}: [bot] → typo: unknown key")


# --- a valid file: exit 0 and the plan --------------------------------------------------


def test_example_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys, "--config", str(EXAMPLE))
    assert code == 0 and err == ""
    assert f"config: {EXAMPLE} is valid" in out
    assert "selector: resolved at start from your ads: USDT/RUB SELL" in out
    assert "selector: resolved at start from your ads: USDT/RUB BUY" in out
    assert "market:   search USDT/RUB tradeType=BUY (the taker's side: competitors of your SELL ad" in out
    assert "market:   search USDT/RUB tradeType=SELL (the taker's side: competitors of your BUY ad" in out
    assert "strategy: undercut" in out and "strategy: follow_reference" in out
    assert "params:   step=0.01, target_rank=1, at_floor=hold, fallback=hold; defaults: max_gap=none" in out
    assert "guards:   floor=92.00, ceiling=96.00," in out
    assert "defaults: overlap_amount=true" in out  # the BUY ad's filters
    assert "bot: dry_run off, kill_switch off" in out
    assert "every: market 10s, reference 30s, my ads 60s, orders 15s" in out
    assert "on new: notify\n    when you sell: chat \"Hello {nickname}!" in out
    assert "when you buy: chat \"Hello {nickname}!" in out and "I will pay with" in out
    assert "on cancelled: nothing" in out
    assert "notify: via log;" in out
    assert "P2PBOT_API_KEY: not set" in out
    assert "nothing was sent" in out


def test_config_from_environment_and_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PBOT_CONFIG", str(write(tmp_path, "[bot]\ntypo = 1\n", "bad.toml")))
    assert check(capsys)[0] == 2
    assert check(capsys, "--config", str(EXAMPLE))[0] == 0


def test_secrets_are_reported_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PBOT_API_KEY", "KEY-VALUE-1234")
    monkeypatch.setenv("P2PBOT_API_SECRET", "SECRET-VALUE-5678")
    monkeypatch.setenv("P2PBOT_TELEGRAM_TOKEN", "TOKEN-VALUE-9")
    monkeypatch.setenv("P2PBOT_PRIVATE_KEY_FILE", str(tmp_path / "absent.pem"))
    path = write(tmp_path, "[notify]\ntelegram_chat_id = '-100123'\n"
                           "webhook_url = 'https://hooks.example.com/services/T0/SECRETPATH'\n")
    for args in ((), ("--json",)):
        code, out, _ = check(capsys, "--config", str(path), *args)
        assert code == 0
        for value in ("KEY-VALUE", "SECRET-VALUE", "TOKEN-VALUE", "SECRETPATH"):
            assert value not in out
    code, out, _ = check(capsys, "--config", str(path))
    assert "P2PBOT_API_KEY: set" in out and "P2PBOT_API_SECRET: set" in out
    assert "P2PBOT_PRIVATE_KEY_FILE: set, but the file does not exist" in out
    assert "via log, webhook (hooks.example.com), telegram (chat -100123)" in out


def test_json_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, "--config", str(EXAMPLE), "--json")
    assert code == 0
    plan = json.loads(out)
    sell, buy = plan["ads"]
    assert sell["selector"] == {"asset": "USDT", "fiat": "RUB", "side": "SELL",
                                "text": "resolved at start from your ads: USDT/RUB SELL"}
    assert sell["market"]["trade_type"] == "BUY" and buy["market"]["trade_type"] == "SELL"
    assert sell["guards"]["set"]["floor"] == "92.00"  # decimals stay exact strings
    assert sell["strategy"]["params"]["defaults"] == {
        "max_gap": None, "on_bot_war": "race", "bot_cushion": "0.15", "max_follow": None,
        "follow_window": 300.0, "ignore_decoys": False, "flip_window": 120.0}
    assert plan["orders"]["reactions"]["buyer_paid"] == {"chat": None, "notify": True}
    assert plan["markets"] == [
        {"asset": "USDT", "fiat": "RUB", "trade_type": "BUY", "ads": ["#1"], "every_seconds": 10.0},
        {"asset": "USDT", "fiat": "RUB", "trade_type": "SELL", "ads": ["#2"], "every_seconds": 10.0},
    ]
    assert plan["requests_sent"] == 0


def test_no_ads_is_valid_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, "--config", str(write(tmp_path, "")))
    assert code == 0
    assert "ads: none (order desk only)" in out
    assert "no [[ads]]: no ad is priced; only the order desk runs" in out
    assert "not configured (nothing happens): new, completed, cancelled" in out


def test_switches_and_adv_no_selector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("[bot]\ndry_run = true\n" + SELL_AD + "enabled = false\n"
            + '[[ads]]\nadv_no = "12345678901234567890"\nstrategy = "fixed"\n'
              'params = { price = "93" }\nguards = { floor = 90, ceiling = 95 }\n')
    code, out, _ = check(capsys, "--config", str(write(tmp_path, text.replace("enabled = false\n", ""))))
    assert code == 0
    assert "bot: dry_run ON" in out and "updates dry run" in out
    assert "selector: adv_no 12345678901234567890" in out
    assert "market:   learned at start from the ad" in out
    assert "[bot] dry_run = true: decisions are logged, no ad is updated" in out
    kill = write(tmp_path, "[bot]\nkill_switch = true\n" + SELL_AD.replace(
        'strategy = "undercut"', 'strategy = "undercut"\nenabled = false'), "kill.toml")
    code, out, _ = check(capsys, "--config", str(kill))
    assert code == 0
    assert "updates off (enabled = false)" in out
    assert "[bot] kill_switch = true: no ad will be updated" in out
    assert '[[ads]] #1 (sell-usdt) is disabled' in out


def test_step_finer_than_the_usual_tick_is_warned(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10 item 6: a step of 0.001 cannot be honoured on a 2-decimal fiat price."""
    fine = SELL_AD.replace("[ads.guards]", '[ads.params]\nstep = "0.001"\n[ads.guards]')
    code, out, _ = check(capsys, "--config", str(write(tmp_path, fine)))
    assert code == 0
    assert ('[[ads]] #1 (sell-usdt): step 0.001 is finer than the usual 0.01 tick of fiat '
            'prices (2 decimals)') in out
    code, out, _ = check(capsys, "--config", str(write(tmp_path, SELL_AD, "ok.toml")))
    assert code == 0 and "step" not in out.split("warnings:")[-1]
