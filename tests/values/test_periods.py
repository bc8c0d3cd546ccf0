"""Calendar periods of ``interval=`` (api.values.service.period_of), pure and table-driven."""

from __future__ import annotations

import datetime as dt

import pytest

from api.errors import BadRequest
from api.values.service import period_of

D = dt.date


@pytest.mark.parametrize(
    ("day", "interval", "expected"),
    [
        (D(2026, 5, 16), "day", (D(2026, 5, 16), D(2026, 5, 16))),
        # Monday-Sunday weeks: a Saturday, a Monday, a Sunday, and a week across a year end
        (D(2026, 5, 16), "week", (D(2026, 5, 11), D(2026, 5, 17))),
        (D(2026, 5, 11), "week", (D(2026, 5, 11), D(2026, 5, 17))),
        (D(2026, 5, 17), "week", (D(2026, 5, 11), D(2026, 5, 17))),
        (D(2027, 1, 1), "week", (D(2026, 12, 28), D(2027, 1, 3))),
        # months of 28, 29, 30 and 31 days
        (D(2026, 2, 14), "month", (D(2026, 2, 1), D(2026, 2, 28))),
        (D(2024, 2, 29), "month", (D(2024, 2, 1), D(2024, 2, 29))),
        (D(2026, 4, 30), "month", (D(2026, 4, 1), D(2026, 4, 30))),
        (D(2026, 12, 31), "month", (D(2026, 12, 1), D(2026, 12, 31))),
        # calendar quarters, first and last days included
        (D(2026, 1, 1), "quarter", (D(2026, 1, 1), D(2026, 3, 31))),
        (D(2026, 5, 16), "quarter", (D(2026, 4, 1), D(2026, 6, 30))),
        (D(2026, 9, 30), "quarter", (D(2026, 7, 1), D(2026, 9, 30))),
        (D(2026, 10, 1), "quarter", (D(2026, 10, 1), D(2026, 12, 31))),
        (D(2026, 12, 31), "year", (D(2026, 1, 1), D(2026, 12, 31))),
    ],
)
def test_the_calendar_period_containing_a_day(
    day: dt.date, interval: str, expected: tuple[dt.date, dt.date]
) -> None:
    assert period_of(day, interval) == expected


def test_an_unknown_interval_is_a_400() -> None:
    with pytest.raises(BadRequest, match="interval must be one of"):
        period_of(D(2026, 5, 16), "fortnight")
