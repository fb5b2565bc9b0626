"""The Federal Reserve's business days and the FedACH cut-off windows (ACH).

The Fed observes the eleven federal holidays; one falling on a Sunday is observed the next
Monday, one falling on a Saturday is not moved (the Fed stays open on the Friday before, unlike
federal offices). The `holidays` package has no Federal Reserve calendar, so it is derived
here from its US federal holidays on their actual dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

SATURDAY = 5
SUNDAY = 6
# far beyond any cut-off search: a year always has business days
_MAX_DAYS_SEARCHED = 366


@cache
def fed_holidays(year: int) -> frozenset[date]:
    """The days the Federal Reserve Banks are closed in `year` (weekends aside)."""
    federal = holidays.country_holidays("US", years=year, observed=False)
    closed: set[date] = set()
    for day in federal:
        if day.weekday() == SUNDAY:
            closed.add(day + timedelta(days=1))
        elif day.weekday() != SATURDAY:
            closed.add(day)
    return frozenset(closed)


def is_fed_business_day(day: date) -> bool:
    """Whether FedACH settles on `day`."""
    return day.weekday() < SATURDAY and day not in fed_holidays(day.year)


def parse_cutoffs(values: Sequence[str]) -> tuple[time, ...]:
    """`["10:30", "14:45"]` as sorted times; raise `ValueError` for anything but HH:MM."""
    cutoffs: list[time] = []
    for value in values:
        hours, sep, minutes = value.strip().partition(":")
        if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
            raise ValueError(f"cut-off {value!r} is not HH:MM")
        cutoffs.append(time(int(hours), int(minutes)))
    if not cutoffs:
        raise ValueError("at least one ACH cut-off is required")
    return tuple(sorted(set(cutoffs)))


class AchCalendar:
    """Cut-off windows in a local time zone, on Federal Reserve business days only."""

    def __init__(self, cutoffs: Sequence[str], timezone: str) -> None:
        self.cutoffs = parse_cutoffs(cutoffs)
        self.zone = ZoneInfo(timezone)

    def local_date(self, instant: datetime) -> date:
        """The calendar date of `instant` in the ACH time zone."""
        return instant.astimezone(self.zone).date()

    def next_cutoff(self, after: datetime) -> datetime:
        """The first cut-off strictly after `after`, as an aware UTC datetime."""
        day = self.local_date(after)
        for _ in range(_MAX_DAYS_SEARCHED):
            if is_fed_business_day(day):
                for cutoff in self.cutoffs:
                    candidate = datetime.combine(day, cutoff, self.zone)
                    if candidate > after:
                        return candidate.astimezone(UTC)
            day += timedelta(days=1)
        raise RuntimeError("no Federal Reserve business day within a year")  # pragma: no cover


@cache
def target_holidays(year: int) -> frozenset[date]:
    """The days TARGET2 (SEPA's settlement system, the `holidays` package's ECB calendar)
    is closed in `year`, weekends aside."""
    return frozenset(holidays.financial_holidays("XECB", years=year))


def is_target_business_day(day: date) -> bool:
    """Whether SEPA settles on `day` (a TARGET2 day)."""
    return day.weekday() < SATURDAY and day not in target_holidays(day.year)


def is_rail_business_day(rail: str, day: date) -> bool:
    """Whether `rail` (`ach`: the Fed's calendar, `sepa`: TARGET2's) settles on `day`."""
    return is_fed_business_day(day) if rail == "ach" else is_target_business_day(day)


def adjust_to_business_day(day: date, rail: str, convention: str) -> date:
    """`day` moved to a business day of `rail` by `convention`: `following` (the next one),
    `preceding` (the one before), `none` (unmoved)."""
    if convention == "none":
        return day
    step = timedelta(days=1 if convention == "following" else -1)
    for _ in range(_MAX_DAYS_SEARCHED):
        if is_rail_business_day(rail, day):
            return day
        day += step
    raise RuntimeError("no business day within a year")  # pragma: no cover
