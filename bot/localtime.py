"""The merchant's time zone (`[bot] timezone`) and instants shown on its clock.

One key for the whole bot: schedules, the terminal view, the status page, the reports and
probe's evidence show times in it. Unset, the machine's own zone is used (what the bot did
before the key existed).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path

from bot.schedule.windows import zone
from config.loader import ConfigFileError, read_toml


def zone_name(tz: tzinfo) -> str:
    """The zone's IANA name when it has one ("America/Sao_Paulo"), else its abbreviation."""
    key = getattr(tz, "key", None)
    return str(key) if key else (datetime.now(tz).tzname() or "local time")


def show(at: float, tz: tzinfo, *, seconds: bool = True) -> str:
    """`2026-11-25 14:50:01 -03`: an instant on the merchant's clock, with its zone."""
    return datetime.fromtimestamp(at, tz).strftime(
        "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def utc(at: float) -> str:
    """`2026-11-25 17:50:01.123 UTC`: an instant in UTC, to the millisecond (support's clock)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def zone_of_file(path: Path | None) -> tzinfo:
    """`[bot] timezone` of a config file, for commands that do not load the whole file
    (probe); the machine's zone when the file or the key is missing or not valid."""
    if path is not None:
        try:
            name = read_toml(path).get("bot", {}).get("timezone")
            if isinstance(name, str):
                return zone(name)
        except (ConfigFileError, ValueError, AttributeError):
            pass
    return zone(None)


def zone_json(tz: tzinfo, at: float) -> dict[str, str | int | None]:
    """The zone for the status page: its IANA name when it has one (the browser then knows
    its daylight saving changes), its label, and its offset from UTC at `at` in seconds."""
    offset = datetime.fromtimestamp(at, tz).utcoffset()
    key = getattr(tz, "key", None)
    return {"name": str(key) if key else None, "label": zone_name(tz),
            "offset_seconds": int(offset.total_seconds()) if offset is not None else 0}
