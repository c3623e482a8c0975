"""backtest and export: configs compared over one recording, the HTML page, the sweep, bad input.

The recording is generated once per module from the price_war scenario (p2pbot.backtest.scenario)
and written as `p2pbot export` writes it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest

from bot.recording import data
from p2pbot.backtest.scenario import generate_entries
from p2pbot.cli import main
from tests.support import CHROMIUM, render_dom

AD = """
[bot]
market_interval = 10

[[ads]]
name = "sell"
asset = "USDT"
fiat = "RUB"
side = "SELL"
strategy = "undercut"
[ads.params]
step = "{step}"
[ads.filters]
min_completion_rate = "0"
[ads.guards]
floor = "{floor}"
ceiling = "96.00"
max_updates = {max_updates}
min_interval = 5
"""


def config(tmp: Path, name: str, step: str = "0.01", floor: str = "91.00",
           max_updates: int = 60) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(AD.format(step=step, floor=floor, max_updates=max_updates), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An hour of price_war as an export file."""
    entries, _, _ = generate_entries("price_war", hours=1.0, seed=11)
    path = tmp_path_factory.mktemp("rec") / "day.jsonl.gz"
    data.write(path, {"from": entries[0][0], "to": entries[-1][0], "pseudonymised": True},
               data.export_lines(entries, data.Pseudonyms()))
    return path


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five minutes of price_war: enough for the tests that a bad input is refused."""
    entries, _, _ = generate_entries("price_war", hours=1 / 12, seed=11)
    path = tmp_path_factory.mktemp("short") / "short.jsonl.gz"
    data.write(path, {"from": entries[0][0], "to": entries[-1][0], "pseudonymised": True},
               data.export_lines(entries, data.Pseudonyms()))
    return path


def backtest(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # a scenario generated, then replayed per config
def test_two_configs_over_one_recording_give_different_explained_reports(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eager = config(tmp_path, "eager")
    careful = config(tmp_path, "careful", floor="93.00", max_updates=10)
    code, out, err = backtest(capsys, "--config", str(eager), "--config", str(careful),
                              "--data", str(recording), "--json")
    assert code == 0, err
    doc = json.loads(out)
    a, b = doc["configs"]
    assert (a["name"], b["name"]) == ("eager", "careful")
    assert a["rank1_share"] > b["rank1_share"]  # a lower floor wins rank 1 more often
    assert b["guards"].get("edit_budget", 0) > a["guards"].get("edit_budget", 0) == 0
    assert b["held_minutes"]["floor reached"] > 10 > a["held_minutes"].get("floor reached", 0)
    assert a["orders"] > b["orders"]
    (diff,) = doc["differences"]
    assert diff.startswith("careful vs eager: rank 1 ")
    # the why: its floor held it back, and its budget ran out while it tried
    assert "floor reached +" in diff and "edit_budget +" in diff
    assert doc["history"]["snapshots"] >= 300 and doc["replayed"] and doc["modelled"]
    code, text, _ = backtest(capsys, "--config", str(eager), "--config", str(careful),
                             "--data", str(recording))
    assert code == 0 and "rank-1 share" in text and "careful vs eager" in text


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_the_html_report_renders_in_headless_chromium(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "report.html"
    argv = ["--config", str(config(tmp_path, "eager")), "--config",
            str(config(tmp_path, "wide", step="0.05")), "--data", str(recording),
            "--html", str(page)]
    code, _, err = await asyncio.to_thread(backtest, capsys, *argv)
    assert code == 0, err
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "https://" not in html  # nothing fetched
    dom = await render_dom(page.as_uri(), tmp_path / "chromium")
    assert dom.count("<svg") == 4  # price and rank, per config
    assert "<polyline" in dom and "eager: sell (SELL)" in dom and "wide: sell (SELL)" in dom
    assert "what is replayed and what is modelled" in dom




@pytest.mark.slow  # a scenario generated, then replayed per config
def test_a_sweep_ranks_the_grid_and_prints_the_best_as_toml(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = config(tmp_path, "base")
    code, out, err = backtest(capsys, "--config", str(base), "--data", str(recording),
                              "--sweep", "step=0.01,0.05", "--sweep", "floor=91,93",
                              "--objective", "rank1_share subject to margin>=0.5", "--json")
    assert code == 0, err
    doc = json.loads(out)
    sweep = doc["sweep"]
    assert len(doc["configs"]) == 5  # the base and 4 variants
    ranking = sweep["ranking"]
    assert all(r["margin"] >= 0.5 for r in ranking)
    assert [r["rank1_share"] for r in ranking] == sorted((r["rank1_share"] for r in ranking),
                                                         reverse=True)
    assert sweep["best"] == ranking[0]["name"]
    step, floor = (part.split("=")[1] for part in sweep["best"].split())
    assert sweep["toml"].splitlines()[1:] == ["# under each [[ads]] entry", "[ads.params]",
                                              f'step = "{step}"', "[ads.guards]",
                                              f'floor = "{floor}"']


@pytest.mark.slow
def test_a_sweep_axis_can_name_one_ad(tmp_path: Path, recording: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = backtest(capsys, "--config", str(config(tmp_path, "base")), "--data",
                              str(recording), "--sweep", "sell:floor=91,92", "--json")
    assert code == 0, err
    sweep = json.loads(out)["sweep"]
    assert {r["name"] for r in sweep["ranking"]} == {"sell:floor=91", "sell:floor=92"}
    assert '# under [[ads]] name = "sell"' in sweep["toml"]
    code, _, err = backtest(capsys, "--config", str(config(tmp_path, "base")), "--data",
                            str(recording), "--sweep", "buy:floor=91,92")
    assert code == 2 and "no ad named 'buy'" in err


@pytest.mark.parametrize(("argv", "said"), [
    (["--sweep", "step"], "write KEY=V1,V2"),
    (["--sweep", ":floor=1"], "name the ad before ':'"),
    (["--sweep", "nonsense=1,2"], "no ad of"),
    (["--sweep", "floor=abc"], "floor"),
    (["--sweep", "step=0.01", "--objective", "happiness"], "start with one metric"),
    (["--sweep", "step=0.01", "--objective", "rank1_share subject to margin=>1"],
     "condition 'margin=>1'"),
])
def test_a_bad_sweep_or_objective_exits_2_naming_it(
        tmp_path: Path, short_recording: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        said: str) -> None:
    page = tmp_path / "r.html"
    code, out, err = backtest(capsys, "--config", str(config(tmp_path, "base")), "--data",
                              str(short_recording), "--html", str(page), *argv)
    assert code == 2 and said in err and out == ""
    assert not page.exists()


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


@pytest.mark.slow
def test_bad_recordings_exit_2_with_a_clear_error_and_nothing_written(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(recording)
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(recording.read_bytes()[: recording.stat().st_size // 2])
    cut = tmp_path / "cut.jsonl.gz"
    _write_lines(cut, lines[:-100])  # whole lines, no end line
    foreign = tmp_path / "foreign.jsonl.gz"
    _write_lines(foreign, ['{"hello": "world"}', *lines[1:]])
    plain = tmp_path / "plain.json"
    plain.write_text('{"format": "p2pbot-recording"}')
    unknown = tmp_path / "unknown.jsonl.gz"
    odd = json.loads(lines[5])
    odd["surprise"] = 1
    _write_lines(unknown, [*lines[:5], json.dumps(odd), *lines[6:]])
    cases = {truncated: "truncated", cut: "truncated: the end line is missing",
             foreign: "line 1: not a p2pbot recording", plain: "not a gzip file",
             unknown: "line 6: unknown field(s) of a", tmp_path / "none.gz": "no such file"}
    good = config(tmp_path, "good")
    for path, said in cases.items():
        page = tmp_path / "r.html"
        code, out, err = backtest(capsys, "--config", str(good), "--data", str(path),
                                  "--html", str(page))
        assert (code, out) == (2, ""), (path, err)
        assert said in err and str(path) in err, (said, err)
        assert not page.exists() and not list(tmp_path.glob(".*.part"))


def test_a_config_that_does_not_validate_exits_2_naming_file_table_and_key(
        tmp_path: Path, short_recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = config(tmp_path, "bad", floor="ninety")
    page = tmp_path / "r.html"
    code, out, err = backtest(capsys, "--config", str(config(tmp_path, "good")), "--config",
                              str(bad), "--data", str(short_recording), "--html", str(page))
    assert (code, out) == (2, "")
    assert "bad.toml" in err and "floor" in err
    assert not page.exists()
    other = tmp_path / "btc.toml"
    other.write_text(AD.format(step="0.01", floor="91", max_updates=5).replace(
        'fiat = "RUB"', 'fiat = "EUR"'))
    code, out, err = backtest(capsys, "--config", str(other), "--data", str(short_recording))
    assert code == 2 and "no recorded ad for USDT/EUR SELL" in err and "USDT/RUB SELL" in err


@pytest.mark.slow
def test_from_and_to_cut_the_history_and_rivals_are_listed(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(config(tmp_path, "eager")), "--data", str(recording), "--json"]
    whole = json.loads(backtest(capsys, *argv)[1])
    half = json.loads(backtest(capsys, *argv, "--to", "30m")[1])  # a span back from the end
    assert abs(half["history"]["snapshots"] * 2 - whole["history"]["snapshots"]) <= 4
    assert half["history"]["to"] <= whole["history"]["to"] - 1790
    rivals = whole["rivals"]
    assert rivals and all(r["user_no"].startswith("u-") for r in rivals)  # pseudonyms only
    assert rivals[0]["moves_per_hour"] >= rivals[-1]["moves_per_hour"] >= 20
    code, _, err = backtest(capsys, *argv, "--from", "2h", "--to", "90m")
    assert code == 2 and "the history is empty" in err


def test_a_floating_ads_hold_at_its_ratio_is_named_not_numbered() -> None:
    """The report's "minutes held, and why" showed "reference # #%" for a floating ad whose
    ratio already gave the price (the strategy's reason with its numbers taken out), and
    "#st by # below bot" for a rank."""
    from p2pbot.backtest.report import why

    held = "reference 92.50 -0.80%; unchanged: ratio 99.20% already prices it at 91.76"
    assert why(held, ()) == "unchanged: ratio in place"
    assert why("unchanged: reference 92.50 -0.80%", ()) == "unchanged"
    # an ordinal is a word, not "#st": rank 1 apart from the others
    assert why("1st by 0.14 below bot 'x' (bot_cushion 0.15%)", ()) == "first by # below bot '…'"
    assert why("3rd, level with 'x' (92.10)", ()) == "nth, level with '…'"
