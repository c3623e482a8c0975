"""The schedule core: windows, holidays, midnight and daylight saving time (bot/schedule/windows.py)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.schedule.windows import Schedule, parse_window, zone

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def at(tz: ZoneInfo, *parts: int, fold: int = 0) -> float:
    """Epoch seconds of a local wall time."""
    return datetime(*parts, tzinfo=tz, fold=fold).timestamp()  # type: ignore[misc]


def local(tz: ZoneInfo, epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz).strftime("%a %Y-%m-%d %H:%M %Z")


def sched(tz: ZoneInfo, *windows: str, holidays: tuple[str, ...] = ()) -> Schedule:
    return Schedule.parse(windows, holidays, tz)


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "days", "start", "end"), [
    ("mon-fri 08:00-22:00", {0, 1, 2, 3, 4}, 480, 1320),
    ("sat,sun 10:00-14:00", {5, 6}, 600, 840),
    ("fri-mon 22:00-02:00", {4, 5, 6, 0}, 1320, 120),
    ("daily 00:00-24:00", set(range(7)), 0, 1440),
    ("Monday 9:30 - 17:45", {0}, 570, 1065),
    ("mon,wed-thu 06:00-07:00", {0, 2, 3}, 360, 420),
])
def test_windows_parse(text: str, days: set[int], start: int, end: int) -> None:
    w = parse_window(text)
    assert (set(w.days), w.start, w.end) == (days, start, end)


@pytest.mark.parametrize(("text", "says"), [
    ("08:00-22:00", "is not a window"),
    ("mon-fri 8-22", "is not a window"),
    ("mon-fry 08:00-22:00", '"mon-fry" is not a day'),
    ("mon 25:00-26:00", "is not a time of day"),
    ("mon 08:60-09:00", "is not a time of day"),
    ("mon 24:00-01:00", "24:00 only as an end"),
    ("mon 08:00-08:00", "the same time"),
    ("mo 08:00-09:00", "is not a day"),
])
def test_bad_windows_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_window(text)


def test_bad_holidays_and_zones_are_refused() -> None:
    with pytest.raises(ValueError, match="is not a date"):
        Schedule.parse(["daily 08:00-20:00"], ["25/12/2026"], SAO_PAULO)
    with pytest.raises(ValueError, match='unknown time zone "Mars/Olympus"'):
        zone("Mars/Olympus")
    assert zone("America/Sao_Paulo") == SAO_PAULO


# --- open or closed ----------------------------------------------------------------------------


def test_weekday_hours_in_the_merchants_zone() -> None:
    s = sched(SAO_PAULO, "mon-fri 08:00-22:00")
    assert not s.is_open(at(SAO_PAULO, 2026, 11, 23, 7, 59))  # Monday before opening
    assert s.is_open(at(SAO_PAULO, 2026, 11, 23, 8, 0))
    assert s.is_open(at(SAO_PAULO, 2026, 11, 23, 21, 59))
    assert not s.is_open(at(SAO_PAULO, 2026, 11, 23, 22, 0))  # the end is not inside
    assert not s.is_open(at(SAO_PAULO, 2026, 11, 28, 12, 0))  # Saturday
    # 08:00 in Sao Paulo is 11:00 UTC: the zone is applied, not the machine's
    assert s.next_change(at(SAO_PAULO, 2026, 11, 23, 3, 0)) == datetime(
        2026, 11, 23, 11, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def test_a_window_across_midnight_belongs_to_the_day_it_starts() -> None:
    s = sched(SAO_PAULO, "fri 22:00-02:00")
    assert s.is_open(at(SAO_PAULO, 2026, 11, 27, 23, 0))  # Friday night
    assert s.is_open(at(SAO_PAULO, 2026, 11, 28, 1, 59))  # Saturday early: still Friday's
    assert not s.is_open(at(SAO_PAULO, 2026, 11, 28, 2, 0))
    assert not s.is_open(at(SAO_PAULO, 2026, 11, 28, 23, 0))  # Saturday night: not listed
    assert not s.is_open(at(SAO_PAULO, 2026, 11, 27, 1, 0))  # Friday early: Thursday's, none
    change = s.next_change(at(SAO_PAULO, 2026, 11, 27, 23, 0))
    assert local(SAO_PAULO, change or 0) == "Sat 2026-11-28 02:00 -03"


def test_touching_windows_are_one_stretch_with_no_change_at_midnight() -> None:
    s = sched(SAO_PAULO, "mon 20:00-24:00", "tue 00:00-06:00")
    change = s.next_change(at(SAO_PAULO, 2026, 11, 23, 21, 0))
    assert local(SAO_PAULO, change or 0) == "Tue 2026-11-24 06:00 -03"
    assert s.is_open(at(SAO_PAULO, 2026, 11, 24, 0, 0))


def test_a_holiday_closes_the_windows_that_start_on_it() -> None:
    s = sched(SAO_PAULO, "daily 08:00-22:00", "thu 23:00-03:00", holidays=("2026-12-25",))
    assert not s.is_open(at(SAO_PAULO, 2026, 12, 25, 12, 0))  # Christmas, a Friday
    assert s.is_open(at(SAO_PAULO, 2026, 12, 25, 2, 0))  # Thursday night's window runs into it
    assert s.is_open(at(SAO_PAULO, 2026, 12, 26, 12, 0))
    change = s.next_change(at(SAO_PAULO, 2026, 12, 24, 21, 0))
    assert local(SAO_PAULO, change or 0) == "Thu 2026-12-24 22:00 -03"
    change = s.next_change(at(SAO_PAULO, 2026, 12, 25, 4, 0))
    assert local(SAO_PAULO, change or 0) == "Sat 2026-12-26 08:00 -03"
    assert s.holidays == {date(2026, 12, 25)}


def test_holidays_all_week_mean_no_change_to_look_for() -> None:
    days = tuple(f"2026-12-{d:02d}" for d in range(20, 32))
    s = sched(SAO_PAULO, "daily 08:00-22:00", holidays=days)
    assert not s.is_open(at(SAO_PAULO, 2026, 12, 22, 12, 0))
    assert s.next_change(at(SAO_PAULO, 2026, 12, 21, 12, 0)) is None


# --- daylight saving time ------------------------------------------------------------------------


def test_opening_hours_keep_their_local_time_across_spring_forward() -> None:
    # New York: Sunday 2026-03-08 02:00 EST -> 03:00 EDT
    s = sched(NEW_YORK, "daily 08:00-20:00")
    before = s.next_change(at(NEW_YORK, 2026, 3, 7, 21, 0))
    after = s.next_change(at(NEW_YORK, 2026, 3, 8, 21, 0))
    assert local(NEW_YORK, before or 0) == "Sun 2026-03-08 08:00 EDT"
    assert local(NEW_YORK, after or 0) == "Mon 2026-03-09 08:00 EDT"
    # that night is an hour short: Saturday's close to Sunday's open is 11 hours, not 12
    close = at(NEW_YORK, 2026, 3, 7, 20, 0)
    assert (before or 0) - close == 11 * 3600


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clock_passes_it() -> None:
    s = sched(NEW_YORK, "sun 02:30-04:00")
    opens = s.next_change(at(NEW_YORK, 2026, 3, 8, 1, 0))
    assert local(NEW_YORK, opens or 0) == "Sun 2026-03-08 03:30 EDT"
    assert s.is_open(at(NEW_YORK, 2026, 3, 8, 3, 45))
    assert not s.is_open(at(NEW_YORK, 2026, 3, 8, 4, 0))


def test_fall_back_the_repeated_hour_counts_once() -> None:
    # Berlin: Sunday 2026-10-25 03:00 CEST -> 02:00 CET; an overnight window across it
    s = sched(BERLIN, "sat 22:00-06:00")
    opens = at(BERLIN, 2026, 10, 24, 22, 0)
    closes = s.next_change(opens)
    assert local(BERLIN, closes or 0) == "Sun 2026-10-25 06:00 CET"
    assert (closes or 0) - opens == 9 * 3600  # eight hours on the clock, nine in fact
    assert s.is_open(at(BERLIN, 2026, 10, 25, 2, 30, fold=1))  # the second 02:30
    assert s.is_open(at(BERLIN, 2026, 10, 25, 2, 30, fold=0))  # and the first


def test_a_schedule_in_the_zone_of_a_historic_midnight_change() -> None:
    # Sao Paulo's clocks skipped 00:00-01:00 on 2018-11-04: a window at midnight opened at 01:00
    s = sched(SAO_PAULO, "sun 00:00-12:00")
    opens = s.next_change(at(SAO_PAULO, 2018, 11, 3, 20, 0))
    assert local(SAO_PAULO, opens or 0) == "Sun 2018-11-04 01:00 -02"
    assert s.is_open(at(SAO_PAULO, 2018, 11, 4, 11, 59))
