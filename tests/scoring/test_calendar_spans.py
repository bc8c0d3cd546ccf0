"""The day ranges the fast engine loads for a set of as-of dates (``Calendar.spans``).

Materialisation reads exactly these ranges from the store, so a range that misses a day a
window reads would score that window without it. Expected ranges are worked out by hand.
"""

from __future__ import annotations

import datetime as dt

import pytest

from api.scoring.engine import Calendar

D = dt.date


@pytest.mark.parametrize(
    ("as_of", "baseline_years", "spans"),
    [
        # Saturday 2026-05-16: day 05-15; week 05-04..05-10; month April inside the quarter
        # February..April. Three separate ranges, none merged across a gap.
        (
            [D(2026, 5, 16)],
            0,
            [
                (D(2026, 2, 1), D(2026, 4, 30)),
                (D(2026, 5, 4), D(2026, 5, 10)),
                (D(2026, 5, 15), D(2026, 5, 15)),
            ],
        ),
        # Saturday and Sunday: the days 05-15 and 05-16 touch and merge; the week is the
        # same (Sunday's Monday is 05-11). One baseline year adds the same week, April and
        # February..April of 2025 (the day window has no baseline of its own).
        (
            [D(2026, 5, 16), D(2026, 5, 17)],
            1,
            [
                (D(2025, 2, 1), D(2025, 4, 30)),
                (D(2025, 5, 4), D(2025, 5, 10)),
                (D(2026, 2, 1), D(2026, 4, 30)),
                (D(2026, 5, 4), D(2026, 5, 10)),
                (D(2026, 5, 15), D(2026, 5, 16)),
            ],
        ),
        # Monday 2026-05-11: the day (05-10) is the week's last day, so they merge.
        (
            [D(2026, 5, 11)],
            0,
            [(D(2026, 2, 1), D(2026, 4, 30)), (D(2026, 5, 4), D(2026, 5, 10))],
        ),
        # Friday 2026-05-01: day 04-30 ends the month and the quarter; the week 04-20..04-26
        # lies inside them.
        ([D(2026, 5, 1)], 0, [(D(2026, 2, 1), D(2026, 4, 30))]),
    ],
)
def test_spans(
    as_of: list[dt.date], baseline_years: int, spans: list[tuple[dt.date, dt.date]]
) -> None:
    assert Calendar(as_of, baseline_years).spans() == spans
