"""Scoring windows worked out the slow way, day by day, as docs/contract.md words them.

Reference implementations for tests, written without api.scoring.windows (no ordinal or
month-index arithmetic), so that an oracle built on them cannot share that module's bugs.
"""

from __future__ import annotations

import datetime as dt

from api.scoring.windows import Window

ONE_DAY = dt.timedelta(days=1)


def _first_of_month(d: dt.date) -> dt.date:
    while d.day != 1:
        d -= ONE_DAY
    return d


def windows(as_of: dt.date) -> dict[str, Window]:
    """day = yesterday; week = the Monday..Sunday before as_of's own week; month = the last
    whole calendar month; quarter = that month and the two before it."""
    monday = as_of
    while monday.weekday() != 0:
        monday -= ONE_DAY
    last_sunday = monday - ONE_DAY
    month_end = _first_of_month(as_of) - ONE_DAY
    month_start = _first_of_month(month_end)
    quarter_start = month_start
    for _ in range(2):
        quarter_start = _first_of_month(quarter_start - ONE_DAY)
    return {
        "day": Window(as_of - ONE_DAY, as_of - ONE_DAY),
        "week": Window(last_sunday - 6 * ONE_DAY, last_sunday),
        "month": Window(month_start, month_end),
        "quarter": Window(quarter_start, month_end),
    }


def _last_of_february(year: int) -> dt.date:
    return dt.date(year, 3, 1) - ONE_DAY


def shifted(window: Window, years: int) -> Window:
    """The same window ``years`` earlier: a start on Feb 29 starts on that year's last day of
    February, and so does an end on the last day of February."""
    start, end = window
    if (start.month, start.day) == (2, 29):
        start_back = _last_of_february(start.year - years)
    else:
        start_back = dt.date(start.year - years, start.month, start.day)
    if end == _last_of_february(end.year):
        end_back = _last_of_february(end.year - years)
    else:
        end_back = dt.date(end.year - years, end.month, end.day)
    return Window(start_back, end_back)
