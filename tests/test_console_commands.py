"""The console's command parser (pure): typed commands, usage for malformed ones."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.console.commands import Command, Usage, parse


@pytest.mark.parametrize("text, expected", [
    ("/status", Command("status")),
    ("/status@my_p2p_bot", Command("status")),
    ("/pause", Command("pause", "all")),
    ("/pause sell", Command("pause", "sell")),
    ("/resume all", Command("resume", "all")),
    ("/hide sell", Command("hide", "sell")),
    ("/show #1", Command("show", "#1")),
    ("/set sell floor 90.50", Command("set", "sell", "floor", Decimal("90.50"))),
    ("/SET sell Ceiling 99", Command("set", "sell", "ceiling", Decimal("99"))),
    ("/confirm", Command("confirm")),
    ("/ack 12", Command("ack", "12")),
    ("/history sell", Command("history", "sell", count=5)),
    ("/history sell 10", Command("history", "sell", count=10)),
    ("/overrides", Command("overrides")),
    ("/clear", Command("clear", None)),
    ("/clear sell", Command("clear", "sell")),
    ("/alerts", Command("alerts")),
    ("/start", Command("help")),
])
def test_commands_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text, said", [
    ("/set sell floor", "Usage: /set AD floor|ceiling|step VALUE"),
    ("/set sell price 90", "Usage: /set AD"),
    ("/set sell floor abc", "'abc' is not a number"),
    ("/set sell floor NaN", "'NaN' is not a number"),
    ("/hide", "Usage: /hide AD"),
    ("/history sell 0", "N is a whole number"),
    ("/status now", "Usage: /status"),
    ("/frobnicate", "unknown command /frobnicate"),
    ("hello", "Commands:"),
])
def test_malformed_commands_answer_with_their_usage(text: str, said: str) -> None:
    with pytest.raises(Usage) as err:
        parse(text)
    assert said in str(err.value)
