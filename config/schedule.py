"""The schedule tables of the TOML file: `[schedule]` for every ad, `[ads.schedule]` for one.

The windows and holidays are checked with the schedule core (bot/schedule/windows.py), so a window
the bot could not read never gets past `check-config`. The time zone is one key for the
whole bot, `[bot] timezone`, because the terminal view, the status page and the reports use
it as well as the schedules; a `timezone` written here is refused with that pointer.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from bot.schedule.windows import Schedule, parse_holiday, parse_window, zone

Outside = Literal["offline", "hide"]


def _window(text: str) -> str:
    parse_window(text)
    return text


def _holiday(text: str) -> str:
    parse_holiday(text)
    return text


def check_timezone(name: str | None) -> str | None:
    """`name` if it is a known IANA time zone (None: the machine's own)."""
    if name is not None:
        zone(name)
    return name


WindowText = Annotated[str, AfterValidator(_window)]
HolidayText = Annotated[str, AfterValidator(_holiday)]
TimeZoneName = Annotated[str | None, AfterValidator(check_timezone)]


class _ScheduleTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    unknown_word: ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _no_zone_here(cls, data: Any) -> Any:
        if isinstance(data, dict) and "timezone" in data:
            raise ValueError("timezone is set once, as [bot] timezone (the view, the status page "
                             "and the reports use it too); remove it from this table")
        return data


class ScheduleConfig(_ScheduleTable):
    """`[schedule]`: when the ads are open (online and priced), for every ad without its own.

    `outside`: what happens to an ad outside its windows: "offline" (ads/updateStatus) or
    "hide" (visible = 0, the ad stays online). `business`: also close the merchant's
    business outside the windows and open it again inside (the merchant endpoints; when the
    key may not use them the ads are still switched one by one).
    """

    windows: tuple[WindowText, ...] = Field(min_length=1)
    holidays: tuple[HolidayText, ...] = ()
    outside: Outside = "offline"
    business: StrictBool = False

    def schedule(self, tz: tzinfo) -> Schedule:
        """The schedule core for this table."""
        return Schedule.parse(self.windows, self.holidays, tz)


class AdSchedule(_ScheduleTable):
    """`[ads.schedule]`: this ad's own windows, holidays or `outside`; a key left out is taken
    from `[schedule]` (an ad with only `outside` keeps the bot's hours)."""

    windows: tuple[WindowText, ...] | None = Field(None, min_length=1)
    holidays: tuple[HolidayText, ...] | None = None
    outside: Outside | None = None


def effective(bot: ScheduleConfig | None, ad: AdSchedule | None) -> ScheduleConfig | None:
    """The schedule an ad follows: its own keys over the bot's; None when it has none (always open)."""
    if ad is None:
        return bot
    windows = ad.windows if ad.windows is not None else (bot.windows if bot else None)
    if windows is None:
        return None  # only `outside` or holidays, and no hours anywhere: always open
    base = bot.holidays if bot else ()
    return ScheduleConfig(
        windows=windows,
        holidays=ad.holidays if ad.holidays is not None else base,
        outside=ad.outside or (bot.outside if bot else "offline"),
    )
