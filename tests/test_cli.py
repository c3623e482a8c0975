"""The command line a merchant types: one way to run it, global options on either side of the
command, and a default strategy file that works from any directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from p2pbot.cli import build_parser, main
from tests.test_config import EXAMPLE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No P2PBOT_* variable and no .env file leaks in; the working directory is not the repo."""
    for name in list(os.environ):
        if name.startswith("P2PBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# --- item 11: one way to run a command, everywhere in the README -----------------------


def _code_lines(text: str) -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readme_runs_every_command_one_way() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "run.py" not in readme  # `python run.py` fails outside the venv: never shown
    top = readme.split("\n## ", 1)[0]
    assert ".venv/bin/p2pbot COMMAND" in top  # said once, at the top
    commands = [line for line in _code_lines(readme) if re.search(r"\bp2pbot (?!\.)", line)
                and not line.startswith(("#", "-", "Environment", "ExecStart"))]
    assert commands, "the README shows no command"
    for line in commands:
        line = re.sub(r"^(\w+=\S+ )+", "", line)  # VAR=value prefixes
        assert re.match(r"(\S*/)?\.venv/bin/p2pbot ", line), line


def test_make_targets_use_the_installed_command() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "run.py" not in makefile
    assert re.search(r"^install: \$\(STAMP\)", makefile, flags=re.M)


# --- item 12: global options before or after the command ------------------------------

GLOBAL = [("--log-level", "DEBUG", "log_level", "DEBUG"),
          ("--log-format", "json", "log_format", "json"),
          ("--log-file", "x.log", "log_file", "x.log"),
          ("--log-rotation", "1 day", "log_rotation", "1 day"),
          ("--log-retention", "3", "log_retention", "3")]


@pytest.mark.parametrize(("option", "value", "attr", "expected"), GLOBAL)
@pytest.mark.parametrize("command", [["run", "--dry-run"], ["check-config"], ["probe", "--json"],
                                     ["history"], ["backup", "x.db"], ["demo"], ["sim"]])
def test_global_options_on_either_side_of_the_command(
    command: list[str], option: str, value: str, attr: str, expected: str
) -> None:
    parser = build_parser()
    before = parser.parse_args([option, value, *command])
    after = parser.parse_args([*command, option, value])
    assert getattr(before, attr) == getattr(after, attr) == expected
    assert before.command == after.command == command[0]


def test_a_global_option_before_the_command_is_not_reset_by_it() -> None:
    args = build_parser().parse_args(["--log-level", "DEBUG", "--log-json", "run", "--dry-run"])
    assert args.log_level == "DEBUG" and args.log_json and args.dry_run
    args = build_parser().parse_args(["run", "--log-json"])
    assert args.log_json and args.log_level is None and args.log_format == "auto"


def test_run_log_level_after_the_command_is_accepted(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # the example: refused today with "unrecognized arguments"
    code = main(["run", "--log-level", "DEBUG", "--config", str(tmp_path / "none.toml")])
    err = capsys.readouterr().err
    assert code == 2 and "unrecognized arguments" not in err
    assert "P2PBOT_API_KEY" in err  # the real problem is reported instead


# --- item 12: the default strategy file, from any directory ---------------------------


def test_check_config_works_from_any_directory_with_the_packaged_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check-config"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"config: {EXAMPLE.resolve()} is valid")


def test_a_config_toml_in_the_working_directory_is_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.toml").write_text("[bot]\ndry_run = true\n", encoding="utf-8")
    code = main(["check-config"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.startswith("config: config.toml is valid")


def test_p2pbot_config_wins_over_config_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.toml").write_text("[bot]\ndry_run = oops\n", encoding="utf-8")
    (tmp_path / "mine.toml").write_text("[bot]\nkill_switch = true\n", encoding="utf-8")
    monkeypatch.setenv("P2PBOT_CONFIG", str(tmp_path / "mine.toml"))
    code = main(["check-config"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.startswith(f"config: {tmp_path / 'mine.toml'} is valid")


# --- issue 14 item 5: --help imports only what it shows -------------------------------------

HEAVY = ("simulator", "aiohttp", "bot.app", "pydantic", "loguru")

_PROBE = """
import sys
from p2pbot.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("MODULES", sorted(sys.modules))
"""


def _imported(argv: list[str]) -> tuple[str, set[str]]:
    """What `p2pbot ARGV` printed, and the modules it had imported, in a fresh interpreter."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True,
                         text=True, check=True, cwd=ROOT, timeout=60).stdout
    text, _, modules = out.rpartition("MODULES ")
    return text, set(eval(modules))  # noqa: S307  # our own print of a list of names


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["--log-level", "DEBUG", "demo",
                                                                  "--help"], ["ban", "-h"]])
def test_help_imports_neither_the_bot_nor_the_simulator_nor_aiohttp(argv: list[str]) -> None:
    text, modules = _imported(argv)
    assert "usage: p2pbot" in text
    loaded = sorted(m for m in modules if m.split(".")[0] in ("simulator", "aiohttp", "pydantic",
                                                               "loguru") or m == "bot.app")
    assert loaded == [], loaded


def test_a_commands_help_shows_its_options() -> None:
    text, _ = _imported(["run", "--help"])
    assert "--dry-run" in text and "--i-accept-withdrawal-permission" in text
    text, _ = _imported(["--help"])
    assert all(name in text for name in ("run", "demo", "probe", "check-config", "sim", "ban"))


def test_the_light_copies_are_the_same_values() -> None:
    from bot.commands import options
    from bot.logs import FORMATS as LOG_FORMATS
    from bot.ops.service import ACCEPT_FLAG
    from p2pbot.cli import FORMATS
    assert FORMATS == LOG_FORMATS and options.ACCEPT_FLAG == ACCEPT_FLAG


@pytest.mark.parametrize(("argv", "command"), [
    (["run"], "run"), (["--log-level", "run", "demo"], "demo"), (["--log-json", "probe"], "probe"),
    (["--log-file=x", "history", "--json"], "history"), (["-h"], None), (["nope"], None)])
def test_the_command_is_found_before_parsing(argv: list[str], command: str | None) -> None:
    from p2pbot.cli import chosen
    assert chosen(argv) == command
