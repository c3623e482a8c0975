"""The command line: `p2pbot COMMAND` (`.venv/bin/p2pbot` in a checkout; `run.py` does the same).

Each command lives in its own module with `add_arguments(parser)` and
`run(args) -> int`; the table below names them. Modules load only when used: the
parser takes each bot command's options from `bot.commands.options` (standard library
only), and `main` imports the chosen command's module alone, after parsing, so
`p2pbot --help` and `p2pbot COMMAND --help` start fast (bench/cli_start.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from bot.commands import options

EXIT_OK = 0
EXIT_CONFIG = 2
UMASK = 0o077  # every file the bot creates (store, WAL, log, lock, backups) is its owner's alone

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bot.commands.run", "the daemon: pollers, pricing engine, order desk; until SIGTERM/SIGINT"),
    "demo": ("p2pbot.demo", "the whole product against the built-in simulator, no keys needed"),
    "probe": ("bot.commands.probe", "call every endpoint once and print the capability matrix"),
    "ads": ("bot.commands.ads", "list your own ads with their ids and print an [[ads]] block for each"),
    "check-config": ("bot.commands.check_config", "validate env and TOML, print the plan, send nothing"),
    "history": ("bot.commands.history", "endpoint transitions, price updates and order events"),
    "report": ("bot.commands.report", "orders, volume, prices, spread, rates and edits over days"),
    "sim": ("simulator.cli", "run the simulator alone on 127.0.0.1"),
    "backup": ("bot.commands.backup", "write a consistent copy of the store while the daemon runs"),
    "desk": ("bot.commands.desk", "a desk of many accounts: `desk init NAME`, `desk status URL...`"),
    "ban": ("bot.commands.ban", "show the IP ban the exchange imposed (418) as stored; --clear forgets it"),
    "export": ("bot.commands.export", "write the recorded market and decisions to a portable file"),
    "backtest": ("p2pbot.backtest.command", "replay configs over a recording or a scenario, compare"),
    "alerts": ("bot.commands.alerts", "the alerts waiting for an acknowledgement (--all: the latest)"),
    "ack": ("bot.commands.alerts", "acknowledge an alert by its id (or an order number): no more repeats"),
}


# the light functions that add a command's options (bot.commands.options); others: its module's
OPTIONS = {"run": options.run, "demo": options.demo, "probe": options.probe,
           "check-config": options.check_config, "history": options.history,
           "backup": options.backup, "ban": options.ban}

LOUD = {"run", "demo", "sim"}  # commands whose log is their output
FORMATS = ("auto", "human", "json")  # bot.logs.FORMATS, not imported here: --help stays light


def _load(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def add_global_options(parser: argparse._ActionsContainer, *, after: bool = False) -> None:
    """The options every command takes, before it or (with `after`) after it.

    After the command their default is SUPPRESS, so a command's parser never overwrites
    a value given before the command with its default.
    """
    def default(value: object) -> object:
        return argparse.SUPPRESS if after else value

    parser.add_argument("--log-level", default=default(None),
                        help="DEBUG, INFO, WARNING, ERROR (default: INFO for run and demo, "
                             "WARNING for the other commands)")
    parser.add_argument("--log-json", action="store_true", default=default(False),
                        help="JSON log lines for machines")
    parser.add_argument("--log-format", choices=FORMATS, default=default("auto"),
                        help="human lines, JSON lines, or auto: coloured lines on a terminal, plain "
                             "text off one (journal, pipe): one event a line, no colour codes")
    parser.add_argument("--log-file", default=default(None), metavar="PATH",
                        help="also log to this file (rotated, old files removed)")
    parser.add_argument("--log-rotation", default=default("50 MB"),
                        help='rotate the log file at a size ("50 MB"), an age ("1 day") or a time '
                             '("00:00") (default: 50 MB)')
    parser.add_argument("--log-retention", default=default("10"),
                        help='keep this many rotated files ("10"), or files this young ("30 days") '
                             "(default: 10)")


def build_parser(load: bool | str | None = True) -> argparse.ArgumentParser:
    """The argument parser; with `load`, each command adds its own options (with a command's
    name, that command alone: the one being run; the others are never parsed)."""
    parser = argparse.ArgumentParser(
        prog="p2pbot", description="Binance P2P merchant bot that keeps working in degraded mode."
    )
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if load is True or load == name:
            _add_options(name, module, p)
        add_global_options(p.add_argument_group("global options (also before the command)"),
                           after=True)
    return parser


def _add_options(name: str, module: str, parser: argparse.ArgumentParser) -> None:
    """The command's options: from bot.commands.options, else from its module (`sim`)."""
    light = OPTIONS.get(name)
    if light is not None:
        light(parser)
        return
    mod = _load(module)
    if mod is not None and hasattr(mod, "add_arguments"):
        mod.add_arguments(parser)


def chosen(argv: Sequence[str]) -> str | None:
    """The command named in `argv` (the first word that is not an option or an option's value)."""
    probe = argparse.ArgumentParser(add_help=False)
    add_global_options(probe)
    valued = {s for a in probe._actions for s in a.option_strings if a.nargs != 0}
    words = iter(argv)
    for word in words:
        if word in valued:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit status."""
    os.umask(UMASK)  # before any file is created: outside systemd the umask is often 022
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(load=chosen(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    module = _load(COMMANDS[args.command][0])
    if module is None:
        print(f"p2pbot {args.command}: not built yet", file=sys.stderr)
        return EXIT_CONFIG
    if args.log_level is None:
        args.log_level = "INFO" if args.command in LOUD else "WARNING"
    from bot.logs import setup_from_args, wants_json  # here: loguru and pydantic, not for --help
    args.log_json = wants_json(args.log_format, args.log_json)
    setup_from_args(args)
    return int(module.run(args))
