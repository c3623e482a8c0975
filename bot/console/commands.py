"""The console's commands: text in, a typed command out, or the usage to answer with (pure).

Telegram sends `/status@my_p2p_bot` in groups: the `@name` part is dropped. Words are
separated by spaces; an ad is named by its `name`, its adv_no, or `#N` (its place in the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

USAGE: dict[str, str] = {
    "status": "/status: ads, prices, ranks, capabilities, open orders",
    "pause": "/pause [AD|all]: stop repricing one ad, or all (the kill switch)",
    "resume": "/resume [AD|all]: undo /pause",
    "hide": "/hide AD: hide the ad from search (visible = 0)",
    "show": "/show AD: show the ad in search again",
    "set": "/set AD floor|ceiling|step VALUE: change a guard or the step (then /confirm)",
    "confirm": "/confirm: apply the change /set showed",
    "ack": "/ack ID|ORDER: acknowledge an alert (no more repeats)",
    "alerts": "/alerts: the alerts not yet acknowledged",
    "history": "/history AD [N]: the ad's last N decisions (default 5)",
    "overrides": "/overrides: the changes made here, on top of the TOML file",
    "clear": "/clear [AD]: forget the console's changes (of one ad, or all)",
    "help": "/help: this list",
}
FIELDS = ("floor", "ceiling", "step")
HISTORY_MAX = 20


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command: its name, the ad or target it names, and what else it carries."""

    name: str
    target: str | None = None  # an ad reference, "all", an alert id or order number
    field: str | None = None  # /set: floor, ceiling or step
    value: Decimal | None = None  # /set: the new value
    count: int = 5  # /history: how many decisions


class Usage(ValueError):
    """A malformed command: the message is the usage line to answer with."""


def help_text() -> str:
    """Every command, one a line."""
    return "Commands:\n" + "\n".join(USAGE.values())


def _number(text: str, usage: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Usage(f"'{text}' is not a number. Usage: {usage}") from None
    if not value.is_finite():
        raise Usage(f"'{text}' is not a number. Usage: {usage}")
    return value


def parse(text: str) -> Command:
    """The command in `text`, or Usage (an unknown command answers with the list)."""
    words = text.strip().split()
    if not words or not words[0].startswith("/"):
        raise Usage(help_text())
    name = words[0][1:].split("@", 1)[0].lower()
    args = words[1:]
    if name in ("start", "help"):
        return Command("help")
    if name not in USAGE:
        raise Usage(f"unknown command /{name}.\n{help_text()}")
    usage = USAGE[name]
    if name in ("status", "confirm", "overrides", "alerts", "help"):
        if args:
            raise Usage(f"Usage: {usage}")
        return Command(name)
    if name in ("pause", "resume", "clear"):
        if len(args) > 1:
            raise Usage(f"Usage: {usage}")
        default = None if name == "clear" else "all"
        return Command(name, args[0] if args else default)
    return _with_args(name, args, usage)


def _with_args(name: str, args: list[str], usage: str) -> Command:
    if name in ("hide", "show", "ack"):
        if len(args) != 1:
            raise Usage(f"Usage: {usage}")
        return Command(name, args[0])
    if name == "history":
        if len(args) not in (1, 2):
            raise Usage(f"Usage: {usage}")
        count = 5
        if len(args) == 2:
            if not args[1].isdigit() or not 1 <= int(args[1]) <= HISTORY_MAX:
                raise Usage(f"N is a whole number from 1 to {HISTORY_MAX}. Usage: {usage}")
            count = int(args[1])
        return Command(name, args[0], count=count)
    # set
    if len(args) != 3 or args[1].lower() not in FIELDS:
        raise Usage(f"Usage: {usage}")
    return Command(name, args[0], args[1].lower(), _number(args[2], usage))
