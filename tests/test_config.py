"""The TOML configuration: models, defaults, exact decimals, and messages naming file, table, key."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import config
from bot.capabilities.table import ProbeConfig
from config.loader import ConfigFileError, LoadedConfig, load_config, read_toml
from config.models import (
    AdConfig,
    AppConfig,
    Guards,
    Reaction,
    check_template,
    default_reactions,
)
from strategies.base import Side
from strategies.filters import CompetitorFilters
from strategies.follow_reference import FollowReferenceParams
from strategies.undercut import Undercut, UndercutParams

EXAMPLE = Path(config.__file__).parent / "example.toml"

SELL_AD = """
[[ads]]
name = "sell-usdt"
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "undercut"
[ads.guards]
floor = "90.00"
"""


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> LoadedConfig:
    return load_config(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    prefix = f"{path}: "
    assert all(line.startswith(prefix) for line in info.value.problems), info.value.problems
    return [line.removeprefix(prefix) for line in info.value.problems]


# --- the example and defaults -----------------------------------------------------------


def test_example_loads_both_simulator_ads() -> None:
    loaded = load_config(EXAMPLE)
    sell, buy = loaded.ads
    assert sell.config.selector == "USDT/RUB SELL" and sell.label == "sell-usdt"
    assert isinstance(sell.strategy, Undercut) and isinstance(sell.params, UndercutParams)
    assert sell.params.step == Decimal("0.01")
    assert sell.config.search_trade_type is Side.BUY
    assert sell.config.guards.floor == Decimal("92.00")
    assert buy.config.side is Side.BUY and buy.config.search_trade_type is Side.SELL
    assert isinstance(buy.params, FollowReferenceParams) and buy.params.ratio == Decimal("99.20")
    assert buy.config.guards.ceiling == Decimal("93.00")
    assert loaded.app.orders.on.cancelled == Reaction()
    assert loaded.path == EXAMPLE


def test_every_key_in_the_example_has_a_comment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for line in text.splitlines():
        code = line.split("#", 1)[0].strip()
        if "=" in code and not line.lstrip().startswith("#"):
            assert "#" in line, f"key without a comment: {line!r}"


def test_decimals_are_exact_whether_number_or_string(tmp_path: Path) -> None:
    loaded = load(tmp_path, SELL_AD.replace('floor = "90.00"', "floor = 90.10\nceiling = \"96.1\"")
                  + 'max_step = 0.30\n[ads.params]\nstep = 0.1\n')
    guards = loaded.ads[0].config.guards
    assert guards.floor == Decimal("90.10") and str(guards.floor) == "90.10"
    assert str(guards.ceiling) == "96.1"
    assert str(guards.max_step) == "0.30"
    assert str(loaded.ads[0].params.step) == "0.1"  # type: ignore[attr-defined]


def test_read_toml_parses_floats_as_decimal(tmp_path: Path) -> None:
    assert read_toml(write(tmp_path, "a = 0.1\nb = 1e2\n")) == {"a": Decimal("0.1"), "b": Decimal("1e2")}


def test_empty_file_is_valid_with_no_ads_and_default_reactions(tmp_path: Path) -> None:
    loaded = load(tmp_path, "")
    assert loaded.ads == () and loaded.app.ads == ()
    assert loaded.app.orders.on == default_reactions()
    assert [s for s, _ in loaded.app.orders.on.items()] == ["buyer_paid", "appeal", "stuck"]
    assert loaded.app.bot.weight_budget == 6000 and loaded.app.web.host == "127.0.0.1"


def test_minimal_ad_gets_defaults(tmp_path: Path) -> None:
    ad = load(tmp_path, SELL_AD).ads[0]
    assert ad.config.enabled is True and ad.config.filters == CompetitorFilters()
    g = ad.config.guards
    assert (g.ceiling, g.reference_band, g.max_step, g.max_drift_per_hour) == (None, None, None, None)
    assert (g.min_change, g.max_updates, g.update_window, g.min_interval) == (Decimal(0), 30, 3600, 10)
    assert ad.params == UndercutParams()


def test_explicit_orders_on_replaces_the_defaults(tmp_path: Path) -> None:
    on = load(tmp_path, "[orders.on.new]\nnotify = true\n").app.orders.on
    assert [s for s, _ in on.items()] == ["new"]
    assert on.buyer_paid is None


def test_probe_config_maps_every_key(tmp_path: Path) -> None:
    caps = load(tmp_path, """
        [capabilities]
        probe_first = 30
        probe_factor = 1.5
        probe_cap = 600
        probe_jitter = 0.1
        flap_window = 900
        flap_threshold = 2
        trust_after = 5
        """).app.capabilities
    assert caps.probe_config() == ProbeConfig(30.0, 1.5, 600.0, 0.1, 900.0, 2, 5)
    assert AppConfig().capabilities.probe_config() == ProbeConfig()


def test_selector_by_adv_no_and_lowercase_market(tmp_path: Path) -> None:
    loaded = load(tmp_path, """
        [[ads]]
        adv_no = "12345678901234567890"
        strategy = "fixed"
        params = { price = "93.10" }
        guards = { floor = "90" }
        [[ads]]
        asset = "usdt"
        fiat = "rub"
        side = "buy"
        strategy = "fixed"
        params = { price = "91" }
        guards = { ceiling = "93" }
        """)
    first, second = (ad.config for ad in loaded.ads)
    assert first.selector == "adv_no 12345678901234567890" and first.search_trade_type is None
    assert first.label == first.selector
    assert (second.asset, second.fiat, second.side) == ("USDT", "RUB", Side.BUY)


def test_side_bounds_sell_needs_floor_buy_needs_ceiling() -> None:
    base = {"asset": "USDT", "fiat": "RUB", "strategy": "fixed"}
    AdConfig.model_validate({**base, "side": "SELL", "guards": {"floor": "1"}})
    AdConfig.model_validate({**base, "side": "BUY", "guards": {"ceiling": "1"}})
    with pytest.raises(ValueError, match="ceiling"):
        AdConfig.model_validate({**base, "side": "BUY", "guards": {"floor": "1"}})


# --- templates --------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Hello {nickname}!",
    "{amount} {asset} for {total:,.2f} {fiat} at {price:.2f} ({order_no}, {pay_method!r})",
    "literal {{braces}} and {nickname:>10}",
])
def test_good_templates(text: str) -> None:
    assert check_template(text) == text


@pytest.mark.parametrize(("text", "said"), [
    ("Hi {nick}", "{nick}: unknown field 'nick' (allowed: nickname, amount, asset, fiat, total, "
                  "price, order_no, pay_method)"),
    ("Hi {}", "{}: a field name (allowed:"),
    ("Hi {0}", "unknown field '0'"),
    ("Hi {nickname.upper}", "unknown field 'nickname.upper'"),
    ("Hi {nickname[0]}", "unknown field 'nickname[0]'"),
    ("Hi {nickname:.2f}", "{nickname:.2f}: bad format spec: Unknown format code 'f'"),
    ("Hi {price:d}", "{price:d}: bad format spec"),
    ("Hi {price:{width}}", "nested fields"),
    ("Hi {nickname!x}", "unknown conversion '!x'"),
    ("Hi {nickname", "write {{ and }} for literal braces"),
    ("Hi }", "Single '}'"),
    ("   ", "empty message"),
])
def test_bad_templates(text: str, said: str) -> None:
    with pytest.raises(ValueError) as info:
        check_template(text)
    assert said in str(info.value)


# --- messages: file, table, key ---------------------------------------------------------

AD_HEAD = '[[ads]]\nname = "buy-usdt"\nadv_no = "1"\nstrategy = "fixed"\nparams = { price = "1" }\n'


@pytest.mark.parametrize(("text", "said"), [
    ("[bot]\ndry_run_typo = true\n",
     "[bot] → dry_run_typo: unknown key (did you mean 'dry_run'? allowed: dry_run, kill_switch,"),
    ("[capabilities]\nprobe_frist = 1\n", "[capabilities] → probe_frist: unknown key (did you mean 'probe_first'?"),
    ("[orders]\nstuck_after = 1\n", "[orders] → stuck_after: unknown key"),
    ("[orders.on.new]\nchatt = 'x'\n", "[orders.on.new] → chatt: unknown key (did you mean 'chat'?"),
    ("[orders.on.new.sell]\nchatt = 'x'\n",
     "[orders.on.new.sell] → chatt: unknown key (did you mean 'chat'?"),
    ("[orders.on.new.both]\nchat = 'x'\n", "[orders.on.new] → both: unknown key"),
    ("[chat]\nexpiry = 1\n", "[chat] → expiry: unknown key"),
    ("[notify]\nwebhook = ''\n", "[notify] → webhook: unknown key (did you mean 'webhook_url'?"),
    ("[web]\nbind = ''\n", "[web] → bind: unknown key"),
    ("bots = 1\n", "bots: unknown table (did you mean 'bot'?"),
    (SELL_AD + "typo = 1\n", '[[ads]] #1 "sell-usdt" → guards.typo: unknown key'),
    (SELL_AD.replace("[ads.guards]", "stratgy = 'x'\n[ads.guards]"),
     '[[ads]] #1 "sell-usdt" → stratgy: unknown key (did you mean \'strategy\'?'),
    (SELL_AD + "[ads.filters]\nmin_completion = 1\n",
     '[[ads]] #1 "sell-usdt" → filters.min_completion: unknown key (did you mean \'min_completion_rate\'?'),
    ("[orders.on.paid]\nnotify = true\n",
     "[orders.on] → paid: unknown status (allowed: new, buyer_paid, completed, cancelled, appeal, stuck)"),
    ("[notify]\ntelegram_token = 'x'\n",
     "[notify] → telegram_token: secrets never go in this file: set P2PBOT_TELEGRAM_TOKEN"),
])
def test_unknown_keys(tmp_path: Path, text: str, said: str) -> None:
    assert problems(tmp_path, text)[0].startswith(said)


@pytest.mark.parametrize(("text", "said"), [
    ("[bot]\ndry_run = 'yes'\n", '[bot] → dry_run: Input should be a valid boolean, got "yes"'),
    ("[bot]\nmarket_interval = 'ten'\n", '[bot] → market_interval: Input should be a number, got "ten"'),
    ("[bot]\nmarket_interval = 0\n", "[bot] → market_interval: Input should be greater than 0"),
    ("[bot]\nweight_budget = 20000\n", "[bot] → weight_budget: Input should be less than or equal to 12000"),
    ("[bot]\nmax_in_flight = 11\n", "[bot] → max_in_flight: Input should be less than or equal to 10"),
    ("[bot]\nsearch_rows = 2.5\n", "[bot] → search_rows: Input should be a valid integer, got 2.5"),
    ("[bot]\nmax_response_bytes = 100\n",
     "[bot] → max_response_bytes: Input should be greater than or equal to 65536"),
    ("bot = 5\n", "bot: should be a table, got 5"),
    ("[ads]\nname = 'x'\n", "ads: should be an array of tables: write each ad as [[ads]], got a table"),
    ("[capabilities]\nessential = ['market', 'chatt']\n",
     "[capabilities] → essential[1]: unknown capability 'chatt' (known: market,"),
    ("[capabilities]\nprobe_first = 100\nprobe_cap = 50\n",
     "[capabilities] → probe_cap: must be at least probe_first (100)"),
    ("[web]\nport = '8080'\n", '[web] → port: Input should be a valid integer, got "8080"'),
    ("[notify]\nwebhook_url = 'ftp://x'\n", "[notify] → webhook_url: should be an http:// or https:// URL"),
    ("[notify]\ntelegram_chat_id = 'me'\n", "[notify] → telegram_chat_id: should be a numeric chat id"),
    ("[orders]\nstuck_after_minutes = 0\n", "[orders] → stuck_after_minutes: Input should be greater than or equal to 1"),
    (AD_HEAD + "[ads.guards]\nfloor = 'abc'\n",
     '[[ads]] #1 "buy-usdt" → guards.floor: Input should be a valid decimal, got "abc"'),
    (AD_HEAD + "[ads.guards]\nfloor = nan\n", '[[ads]] #1 "buy-usdt" → guards.floor: Input should be a finite number'),
    (AD_HEAD + "[ads.guards]\nfloor = '-1'\n", '[[ads]] #1 "buy-usdt" → guards.floor: Input should be greater than 0'),
    (AD_HEAD + "[ads.guards]\nfloor = true\n", '[[ads]] #1 "buy-usdt" → guards.floor: Decimal input should be'),
    (AD_HEAD + "enabled = 'no'\nguards = { floor = 1 }\n", '[[ads]] #1 "buy-usdt" → enabled: Input should be a valid boolean'),
])
def test_wrong_values(tmp_path: Path, text: str, said: str) -> None:
    assert problems(tmp_path, text)[0].startswith(said)


@pytest.mark.parametrize(("text", "said"), [
    ('[[ads]]\nname = "a"\nadv_no = 12345678901234567890\nstrategy = "fixed"\nguards = { floor = 1 }\n',
     '[[ads]] #1 "a" → adv_no: write the ad id as a string: adv_no = "12345678901234567890" '
     "(ids are 19 to 20 digits and overflow integers)"),
    ('[[ads]]\nadv_no = "12a"\nstrategy = "fixed"\nguards = { floor = 1 }\n',
     '[[ads]] #1 → adv_no: should be the ad\'s id, digits only, got "12a"'),
    ('[[ads]]\nadv_no = "1"\nasset = "USDT"\nside = "SELL"\nstrategy = "fixed"\nguards = { floor = 1 }\n',
     "[[ads]] #1 → adv_no: give either adv_no or asset + fiat + side, not both (asset, side set)"),
    ('[[ads]]\nstrategy = "fixed"\nguards = { floor = 1 }\n',
     "[[ads]] #1 → adv_no: missing: give the ad's adv_no, or asset + fiat + side"),
    ('[[ads]]\nasset = "USDT"\nfiat = "RUB"\nstrategy = "fixed"\nguards = { floor = 1 }\n',
     "[[ads]] #1 → side: missing: asset, fiat and side go together (side not set)"),
    ('[[ads]]\nadv_no = "1"\nguards = { floor = 1 }\n', "[[ads]] #1 → strategy: missing (required)"),
    ('[[ads]]\nadv_no = "1"\nstrategy = "fixed"\n', "[[ads]] #1 → guards: missing (required)"),
    ('[[ads]]\nadv_no = "1"\nstrategy = "fixed"\nside = "LONG"\nguards = { floor = 1 }\n',
     "[[ads]] #1 → side: Input should be 'BUY' or 'SELL', got \"LONG\""),
])
def test_ad_selector(tmp_path: Path, text: str, said: str) -> None:
    assert problems(tmp_path, text)[0].startswith(said)


@pytest.mark.parametrize(("guards", "said"), [
    ('floor = "96.00"\nceiling = "90.10"', "guards.floor: 96.00 must be below the ceiling (90.10)"),
    ('floor = "90"\nceiling = "90"', "guards.floor: 90 must be below the ceiling (90)"),
    ('max_step = "1"', "guards.floor: set a floor, a ceiling or both"),
    ('ceiling = "96"', "guards.floor: required for a SELL ad: competing moves its price down"),
    ('floor = "90"\nreference_band = "0"', "guards.reference_band: Input should be greater than 0"),
    ('floor = "90"\nmax_step = "0"', "guards.max_step: Input should be greater than 0"),
    ('floor = "90"\nmin_change = "-0.01"', "guards.min_change: Input should be greater than or equal to 0"),
    ('floor = "90"\nmax_updates = 0', "guards.max_updates: Input should be greater than or equal to 1"),
])
def test_guards(tmp_path: Path, guards: str, said: str) -> None:
    said_all = problems(tmp_path, SELL_AD.replace('floor = "90.00"', guards))
    assert len(said_all) == 1 and said_all[0].startswith(f'[[ads]] #1 "sell-usdt" → {said}')


def test_guards_model_directly() -> None:
    assert Guards(floor=Decimal("1")).ceiling is None
    with pytest.raises(ValueError, match="below the ceiling"):
        Guards(floor=Decimal("2"), ceiling=Decimal("1"))


def test_duplicate_ads(tmp_path: Path) -> None:
    assert problems(tmp_path, SELL_AD + SELL_AD.replace("sell-usdt", "other")) == [
        '[[ads]] #2 "other" → side: same selector as [[ads]] #1 (USDT/RUB SELL)'
    ]
    twice = SELL_AD + SELL_AD.replace('side = "SELL"', 'side = "BUY"').replace(
        'floor = "90.00"', 'ceiling = "95"')
    assert problems(tmp_path, twice) == [
        '[[ads]] #2 "sell-usdt" → name: same name as [[ads]] #1 (sell-usdt)'
    ]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    said = problems(tmp_path, "[bot]\ndry_run = 1\ntypo = 2\n[web]\nport = 0\n")
    assert said == [
        "[bot] → dry_run: Input should be a valid boolean, got 1",
        "[bot] → typo: unknown key (allowed: dry_run, kill_switch, market_interval, reference_interval, "
        "my_ads_interval, orders_interval, weight_budget, max_in_flight, max_queued, search_rows, "
        "max_response_bytes, decisions_retention_days, reference_max_jump, settle_seconds, "
        "reference_pay_type, timezone)",
        "[web] → port: Input should be greater than or equal to 1",
    ]


def test_template_problems_name_the_status_table(tmp_path: Path) -> None:
    assert problems(tmp_path, "[orders.on.completed]\nchat = 'Bye {name}'\n") == [
        "[orders.on.completed] → chat: {name}: unknown field 'name' (allowed: nickname, amount, "
        "asset, fiat, total, price, order_no, pay_method)"
    ]
    assert problems(tmp_path, "[orders.on.stuck]\nnotify = 'yes'\n") == [
        '[orders.on.stuck] → notify: Input should be a valid boolean, got "yes"'
    ]
    assert problems(tmp_path, "[orders.on.new.buy]\nchat = 'I pay {pay}'\n") == [
        "[orders.on.new.buy] → chat: {pay}: unknown field 'pay' (allowed: nickname, amount, "
        "asset, fiat, total, price, order_no, pay_method)"
    ]


# --- strategies -------------------------------------------------------------------------


def test_unknown_strategy(tmp_path: Path) -> None:
    said = problems(tmp_path, SELL_AD.replace('"undercut"', '"undercutt"'))
    assert said[0].startswith('[[ads]] #1 "sell-usdt" → strategy: unknown strategy \'undercutt\'')


def test_missing_plugin_module(tmp_path: Path) -> None:
    said = problems(tmp_path, SELL_AD.replace('"undercut"', '"nope:Strategy"'))
    assert said == ['[[ads]] #1 "sell-usdt" → strategy: nope:Strategy: module \'nope\' not found']


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for plugin modules; they are unloaded afterwards."""
    where = tmp_path / "plugins"
    where.mkdir()
    monkeypatch.syspath_prepend(str(where))
    before = set(sys.modules)
    yield where
    for name in set(sys.modules) - before:
        if name.startswith("p2pbot_test_plugin"):
            del sys.modules[name]


PLUGIN = '''
from decimal import Decimal
from pydantic import BaseModel, ConfigDict
from strategies.base import Hold

class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    offset: Decimal = Decimal("0.05")

class Mine:
    name = "mine"
    api_version = 1
    Params = Params
    def decide(self, ctx, params):
        return Hold("mine")

class Broken:
    name = "broken"
    Params = Params
    def decide(self, ctx, params):
        return Hold("never")
'''


def test_plugin_loads_with_params(tmp_path: Path, plugins: Path) -> None:
    (plugins / "p2pbot_test_plugin_a.py").write_text(PLUGIN)
    ad = load(tmp_path, SELL_AD.replace('"undercut"', '"p2pbot_test_plugin_a:Mine"')
              + "[ads.params]\noffset = 0.10\n").ads[0]
    assert type(ad.strategy).__name__ == "Mine"
    assert ad.params.offset == Decimal("0.10")  # type: ignore[attr-defined]


def test_broken_plugin(tmp_path: Path, plugins: Path) -> None:
    (plugins / "p2pbot_test_plugin_b.py").write_text(PLUGIN)
    said = problems(tmp_path, SELL_AD.replace('"undercut"', '"p2pbot_test_plugin_b:Broken"'))
    assert said == ['[[ads]] #1 "sell-usdt" → strategy: p2pbot_test_plugin_b:Broken: has no '
                    "'api_version' (this bot supports strategy API version 1)"]


def test_plugin_that_fails_to_import(tmp_path: Path, plugins: Path) -> None:
    (plugins / "p2pbot_test_plugin_c.py").write_text("raise RuntimeError('boom')\n")
    said = problems(tmp_path, SELL_AD.replace('"undercut"', '"p2pbot_test_plugin_c:X"'))
    assert said == ['[[ads]] #1 "sell-usdt" → strategy: p2pbot_test_plugin_c:X: module '
                    "'p2pbot_test_plugin_c' failed to import: RuntimeError: boom"]


@pytest.mark.parametrize(("params", "said"), [
    ('step = "-1"', "params.step: Input should be greater than 0"),
    ('step = "abc"', "params.step: Input should be a valid decimal"),
    ("stepp = 1", "params.stepp: unknown parameter of undercut (did you mean 'step'? allowed: step,"),
    ('at_floor = "sink"', "params.at_floor: Input should be 'hold' or 'sit'"),
])
def test_bad_strategy_params(tmp_path: Path, params: str, said: str) -> None:
    said_all = problems(tmp_path, SELL_AD + f"[ads.params]\n{params}\n")
    assert len(said_all) == 1 and said_all[0].startswith(f'[[ads]] #1 "sell-usdt" → {said}')


def test_params_rule_across_keys(tmp_path: Path) -> None:
    text = SELL_AD.replace('"undercut"', '"follow_reference"')
    assert problems(tmp_path, text) == [
        "[[ads]] #1 \"sell-usdt\" → params: set exactly one of 'margin' or 'ratio'"
    ]


def test_problems_of_several_ads_are_all_reported(tmp_path: Path) -> None:
    text = SELL_AD.replace('"undercut"', '"nope"') + AD_HEAD.replace('{ price = "1" }', "{}") + \
        "guards = { floor = 1 }\n"
    said = problems(tmp_path, text)
    assert said[0].startswith('[[ads]] #1 "sell-usdt" → strategy: unknown strategy')
    assert said[1] == '[[ads]] #2 "buy-usdt" → params.price: Field required'


# --- the file itself --------------------------------------------------------------------


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    assert problems(tmp_path, "[bot]\ndry_run = \n") == [
        "line 2, column 11: TOML syntax error: Invalid value"
    ]


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    said = problems(tmp_path, "[bot]\ndry_run = true\ndry_run = false\n")
    assert said[0].startswith("line 3, column ") and "TOML syntax error" in said[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: no such file (pass --config PATH or set P2PBOT_CONFIG)"


def test_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="is a directory"):
        load_config(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"a = '\xff'\n")
    with pytest.raises(ConfigFileError, match="not UTF-8"):
        load_config(bad)


def test_telegram_chat_id_may_be_an_integer(tmp_path: Path) -> None:
    notify = load(tmp_path, "[notify]\ntelegram_chat_id = -1001234\n").app.notify
    assert notify.telegram_chat_id == "-1001234"


@pytest.mark.parametrize(("text", "said"), [
    ("[bot]\nmarket_interval = inf\n", "[bot] → market_interval: Input should be"),
    ("[bot]\nmarket_interval = 1e300\n", "[bot] → market_interval: Input should be less than or equal to 3600"),
    ("[bot]\norders_interval = 7200\n", "[bot] → orders_interval: Input should be less than or equal to 3600"),
    ("[bot]\nmy_ads_interval = nan\n", "[bot] → my_ads_interval: Input should be"),
    ("[capabilities]\nprobe_cap = 1e300\n", "[capabilities] → probe_cap: Input should be less than or equal to 86400"),
    ("[capabilities]\nprobe_factor = 1e9\n", "[capabilities] → probe_factor: Input should be less than or equal to 10"),
    ("[capabilities]\nflap_threshold = 99999999\n", "[capabilities] → flap_threshold: Input should be less than or equal to 1000"),
    ("[orders]\nstuck_after_minutes = 99999999\n", "[orders] → stuck_after_minutes: Input should be less than or equal to 10080"),
    ("[chat]\noutbox_expiry_minutes = 99999999\n", "[chat] → outbox_expiry_minutes: Input should be less than or equal to 1440"),
    ("[notify]\ndedupe_minutes = 99999999\n", "[notify] → dedupe_minutes: Input should be less than or equal to 1440"),
    (SELL_AD.replace('floor = "90.00"', 'floor = "90.00"\nupdate_window = inf'),
     '[[ads]] #1 "sell-usdt" → guards.update_window: Input should be'),
    (SELL_AD.replace('floor = "90.00"', 'floor = "90.00"\nmin_interval = 1e300'),
     '[[ads]] #1 "sell-usdt" → guards.min_interval: Input should be less than or equal to 86400'),
    (SELL_AD.replace('floor = "90.00"', 'floor = "90.00"\nmax_updates = 99999999999'),
     '[[ads]] #1 "sell-usdt" → guards.max_updates: Input should be less than or equal to 100000'),
    (SELL_AD.replace('floor = "90.00"', 'floor = inf'), '[[ads]] #1 "sell-usdt" → guards.floor: Input should be a finite number'),
])
def test_every_interval_and_count_has_an_upper_bound(tmp_path: Path, text: str, said: str) -> None:
    assert problems(tmp_path, text)[0].startswith(said)


@pytest.mark.parametrize(("text", "said"), [
    ("{total:>2000000000}", "{total:>2000000000}: width or precision 2000000000 is over 100"),
    ("{total:>99999999999999}", "width or precision 999999999999 is over 100"),
    ("{price:.500f}", "{price:.500f}: width or precision 500 is over 100"),
    ("{nickname:x<101}", "width or precision 101 is over 100"),
    ("{order_no:>90}" * 12, "the message is 1080 characters with sample values; at most 1000"),
    ("x" * 1001, "the message is 1001 characters"),
])
def test_templates_that_would_blow_up_are_refused_before_formatting(text: str, said: str) -> None:
    with pytest.raises(ValueError) as info:
        check_template(text)
    assert said in str(info.value)


def test_a_long_but_reasonable_template_passes() -> None:
    text = "Hello {nickname:>20}, " + "thanks! " * 100
    assert check_template(text) == text
