"""Scoring windows as of a publication date, and shifting them back by whole years."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

WINDOW_NAMES = ("day", "week", "month", "quarter")
ONE_DAY = dt.timedelta(days=1)
# The farthest an as-of date's windows reach back: the quarter (the three whole months before
# the as-of date's month) starts at most 92 + 30 = 122 days before it (three months of at most
# 92 days, then up to the 31st); 130 with a margin. So a value is seen by the windows of as-of
# dates up to this many days after it (baselines add whole years: as_of_dates_affected).
REACH_DAYS = 130


class Window(NamedTuple):
    start: dt.date
    end: dt.date


def month_start(d: dt.date, months_back: int = 0) -> dt.date:
    """First day of the month ``months_back`` months before the month of ``d``."""
    index = d.year * 12 + (d.month - 1) - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def monday_of(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def windows_as_of(as_of: dt.date) -> dict[str, Window]:
    """The four windows published as of ``as_of``.

    day = the day before; week = the last complete Monday-Sunday week before; month = the last
    complete calendar month; quarter = the last three complete calendar months (moves monthly).
    """
    monday = monday_of(as_of)
    this_month = month_start(as_of)
    last_of_prev = this_month - ONE_DAY
    return {
        "day": Window(as_of - ONE_DAY, as_of - ONE_DAY),
        "week": Window(monday - dt.timedelta(days=7), monday - ONE_DAY),
        "month": Window(month_start(as_of, 1), last_of_prev),
        "quarter": Window(month_start(as_of, 3), last_of_prev),
    }


def _is_last_of_february(d: dt.date) -> bool:
    return d.month == 2 and d.day == calendar.monthrange(d.year, 2)[1]


def shift_years(d: dt.date, years: int, *, end: bool = False) -> dt.date:
    """The same calendar date ``years`` years earlier; Feb 29 maps to Feb 28.

    A window *end* on the last day of February maps to the last day of February, so that a
    window covering all of February covers all of February in every baseline year (leap day
    included).
    """
    year = d.year - years
    if end and _is_last_of_february(d):
        return dt.date(year, 2, calendar.monthrange(year, 2)[1])
    if d.month == 2 and d.day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28)
    return d.replace(year=year)


def shift_window(window: Window, years: int) -> Window:
    return Window(shift_years(window.start, years), shift_years(window.end, years, end=True))


def as_of_dates_affected(days: Iterable[dt.date], baseline_years: int) -> set[dt.date]:
    """A superset of the as-of dates whose scores can change when values on ``days`` change:
    the union over the four windows of ``as_of_dates_affected_by_window``.

    With ``baseline_years`` > 0 the value also feeds the baselines of the same windows up to
    that many years later. Work is per distinct week and month, not per day: a batch of
    50,000 days touches only a few hundred of each.
    """
    return set().union(*as_of_dates_affected_by_window(days, baseline_years))


def _shifted_sources(days: set[dt.date], baseline_years: int) -> set[dt.date]:
    """The days 1..``baseline_years`` years after ``days`` (whose baselines they feed)."""
    out: set[dt.date] = set()
    for day in days:
        for k in range(1, baseline_years + 1):
            year = day.year + k
            if day.month == 2 and day.day >= 28:
                out.add(dt.date(year, 2, 28))
                if calendar.isleap(year):
                    out.add(dt.date(year, 2, 29))
            else:
                out.add(day.replace(year=year))
    return out


def _weeks_after(sources: Iterable[dt.date]) -> set[dt.date]:
    """The as-of dates whose week window is the week of one of ``sources``."""
    out: set[dt.date] = set()
    for monday in {monday_of(d) for d in sources}:
        out.update(monday + dt.timedelta(days=7 + i) for i in range(7))
    return out


def _months_after(sources: Iterable[dt.date], months: int) -> set[dt.date]:
    """The as-of dates in the ``months`` months after the month of one of ``sources``."""
    out: set[dt.date] = set()
    for first_of_month in {d.replace(day=1) for d in sources}:
        first = month_start(first_of_month, -1)
        last = month_start(first_of_month, -1 - months) - ONE_DAY
        out.update(date_range(first, last))
    return out


def as_of_dates_affected_by_window(
    days: Iterable[dt.date], baseline_years: int
) -> tuple[set[dt.date], set[dt.date], set[dt.date], set[dt.date]]:
    """Per window kind (day, week, month, quarter): a superset of the as-of dates whose
    figures of that window can change when values on ``days`` change.

    Their union is ``as_of_dates_affected``. A changed day moves one day window, one week's
    as-of dates, one month's and three months' (the quarter moves monthly), and the same of
    the days up to ``baseline_years`` later (the baselines); the day window takes the week's
    baseline.
    """
    own = set(days)
    shifted = _shifted_sources(own, baseline_years)
    sources = own | shifted
    week = _weeks_after(sources)
    # (the day after a shifted source too: not needed by the day's own figures, which take
    # the week's baseline, but one date per year keeps the union the first build's)
    day = {d + ONE_DAY for d in sources} | _weeks_after(shifted)
    return day, week, _months_after(sources, 1), _months_after(sources, 3)


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
