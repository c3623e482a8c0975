"""Schedules: when an ad is open (online and priced), as a pure function of the time.

A schedule is a list of weekly windows in the merchant's time zone (`mon-fri 08:00-22:00`,
`sat,sun 10:00-14:00`, `fri 22:00-02:00` across midnight, `daily 00:00-24:00`) and a list
of holidays (dates, local). Everything here is computed on local wall time and turned into
epoch seconds only at the end, so a window keeps its local hours across a change of
daylight saving time: `08:00` is eight on the merchant's clock in January and in July.

Rules, chosen to be predictable:
- a window belongs to the day it starts on: `fri 22:00-02:00` runs from Friday 22:00 to
  Saturday 02:00, and a holiday on the Saturday does not cut it short;
- a holiday closes every window that starts on it;
- a local time that does not exist (skipped by a spring-forward change) is read with the
  offset before the change, so a window starting at 02:30 on that night opens at 03:30,
  as soon as the wall clock passes its start; a time that exists twice (fall back) is its
  first occurrence;
- windows that touch or overlap are one open stretch (no change at their meeting point).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAILY = ("daily", "every day", "all")
MINUTES_A_DAY = 24 * 60
LOOK_BACK_DAYS = 2  # an overnight window that began the day before is still open now
LOOK_AHEAD_DAYS = 9  # a week and its overnight tails: every weekly window shows up once
_WINDOW = re.compile(r"^\s*(?P<days>.+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")


def local_zone() -> tzinfo:
    """The machine's own zone, by its IANA name when it can be found (TZ, /etc/localtime), so
    its daylight saving changes are known; else its offset now."""
    for name in (os.environ.get("TZ", "").lstrip(":"), _etc_localtime()):
        if name:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def _etc_localtime() -> str:
    target = os.path.realpath("/etc/localtime")
    return target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else ""


def zone(name: str | None) -> tzinfo:
    """The time zone called `name` (IANA, "America/Sao_Paulo"), or the machine's own for None.

    ValueError names the zone when it is not known."""
    if name is None:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown time zone "{name}" (an IANA name such as "America/Sao_Paulo", '
                         '"Europe/Moscow" or "UTC")') from None


def _minutes(text: str, *, end: bool) -> int:
    hours, _, minutes = text.partition(":")
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        raise ValueError(f"{text} is not a time of day (00:00 to 23:59; 24:00 only as an end)")
    return h * 60 + m


def _day(name: str) -> int | None:
    """Monday 0 ... Sunday 6, from `mon` or `monday`; None for anything else."""
    for i, short in enumerate(DAYS):
        if name == short or (len(name) > 3 and FULL_DAYS[i] == name):
            return i
    return None


def _days(text: str) -> frozenset[int]:
    """`mon-fri`, `sat,sun`, `fri-mon`, `daily` as weekday numbers (Monday 0)."""
    words = text.strip().lower()
    if words in DAILY:
        return frozenset(range(7))
    found: set[int] = set()
    for part in (p.strip() for p in words.split(",")):
        first, dash, last = part.partition("-")
        names = [first.strip(), last.strip()] if dash else [part]
        if not part or any(_day(n) is None for n in names):
            raise ValueError(f'"{part}" is not a day or a range of days (mon, tue, ... sun; '
                             'mon-fri; sat,sun; daily)')
        a, b = _day(names[0]), _day(names[-1])
        assert a is not None and b is not None
        found.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Window:
    """Weekly open hours: on `days` (Monday 0) from `start` to `end` (minutes of the day).

    `end <= start` crosses midnight: the window ends on the next day."""

    days: frozenset[int]
    start: int
    end: int
    text: str

    @property
    def overnight(self) -> bool:
        """Whether the window ends on the day after it starts."""
        return self.end <= self.start


def parse_window(text: str) -> Window:
    """A window from `mon-fri 08:00-22:00`; ValueError says what is wrong with it."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not a window: write days and hours, such as '
                         '"mon-fri 08:00-22:00", "sat,sun 10:00-14:00" or "fri 22:00-02:00"')
    start = _minutes(match["start"], end=False)
    end = _minutes(match["end"], end=True)
    if start == end:
        raise ValueError(f'"{text}" opens and closes at the same time; for the whole day write '
                         '00:00-24:00')
    return Window(_days(match["days"]), start, end, " ".join(text.split()))


def parse_holiday(text: str) -> date:
    """A holiday from `2026-12-25`; ValueError otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f'"{text}" is not a date (write it as 2026-12-25)') from None


def _at(day: date, minutes: int, tz: tzinfo) -> float:
    """Epoch seconds of local `day` + `minutes` (24:00 is the next day's 00:00)."""
    extra, minutes = divmod(minutes, MINUTES_A_DAY)
    local = datetime.combine(day + timedelta(days=extra), time(minutes // 60, minutes % 60), tz)
    return local.timestamp()


@dataclass(frozen=True, slots=True)
class Schedule:
    """Weekly windows and holidays in one time zone; asked about instants (epoch seconds)."""

    windows: tuple[Window, ...]
    holidays: frozenset[date]
    tz: tzinfo

    @classmethod
    def parse(cls, windows: Iterable[str], holidays: Iterable[str], tz: tzinfo) -> Schedule:
        """A schedule from the config's strings; ValueError names the first bad one."""
        return cls(tuple(parse_window(w) for w in windows),
                   frozenset(parse_holiday(h) for h in holidays), tz)

    def local_day(self, at: float) -> date:
        """The merchant's calendar day at `at`."""
        return datetime.fromtimestamp(at, self.tz).date()

    def intervals(self, at: float) -> list[tuple[float, float]]:
        """The open stretches (epoch start, end) around `at`, merged, oldest first."""
        return list(_intervals(self, self.local_day(at)))

    def is_open(self, at: float) -> bool:
        """Whether `at` falls inside a window."""
        return any(start <= at < end for start, end in self.intervals(at))

    def next_change(self, at: float) -> float | None:
        """The first instant after `at` at which `is_open` changes, or None when it does not
        change in the next week (no window, or holidays all week: look again later)."""
        edges = [t for span in self.intervals(at) for t in span if t > at]
        return min(edges) if edges else None

    def describe(self) -> str:
        """The windows as written, for messages: `mon-fri 08:00-22:00, sat 10:00-14:00`."""
        return ", ".join(w.text for w in self.windows)


@lru_cache(maxsize=256)
def _intervals(schedule: Schedule, today: date) -> tuple[tuple[float, float], ...]:
    """Schedule.intervals for a local day: the same all day, and asked for every ad at every
    check (each stretch is two conversions from the merchant's zone), so kept per day."""
    spans: list[tuple[float, float]] = []
    for offset in range(-LOOK_BACK_DAYS, LOOK_AHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        if day in schedule.holidays:
            continue
        for w in schedule.windows:
            if day.weekday() not in w.days:
                continue
            end = w.end + (MINUTES_A_DAY if w.overnight else 0)
            start_at, end_at = _at(day, w.start, schedule.tz), _at(day, end, schedule.tz)
            if end_at > start_at:
                spans.append((start_at, end_at))
    merged: list[tuple[float, float]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return tuple(merged)
