"""The reference engine never raises on stored data, however extreme (issue 9 item 6).

Values up to 1e308 could be stored before ingest had bounds; window sums of two of them
overflowed ``math.fsum`` and every read that scored them was a 500.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from api.scoring.aggregates import AGGREGATIONS, RATIO_AGGREGATIONS, Point, Series
from api.scoring.scores import MetricSpec, mean_score, score_as_of

BIG = 1e308
AS_OF = dt.date(2027, 11, 18)


def series(aggregation: str, days: list[dt.date], big: float = BIG) -> Series:
    if aggregation in RATIO_AGGREGATIONS:
        return Series(Point(d, big / 1e-300, big, 1e-300) for d in days)
    return Series(Point(d, big, None, None) for d in days)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("reference", ["target", "baseline"])
@pytest.mark.parametrize("direction", ["higher_is_better", "lower_is_better"])
def test_extreme_values_score_null_or_finite_never_raise(
    aggregation: str, reference: str, direction: str
) -> None:
    days = [dt.date(2025, 11, 10), dt.date(2026, 11, 10), dt.date(2026, 11, 11)]
    days += [dt.date(2027, 11, d) for d in range(8, 15)]
    targets = ((dt.date(2000, 1, 1), 1e-300),) if reference == "target" else ()
    spec = MetricSpec(direction, aggregation, reference, targets, baseline_years=10)
    rows = score_as_of(spec, series(aggregation, days), [AS_OF, AS_OF + dt.timedelta(days=40)])
    for row in rows:
        for window in (row.day, row.week, row.month, row.quarter):
            for x in window:
                assert x is None or math.isfinite(x), row


def test_pooled_sums_that_overflow_are_null() -> None:
    days = [dt.date(2027, 11, 8), dt.date(2027, 11, 9)]
    s = Series(Point(d, 1.0, BIG, BIG) for d in days)
    agg = s.window("pooled_ratio", days[0], days[1])
    assert agg.numerator is None and agg.denominator is None and agg.value is None
    assert agg.days == 2


def test_cityscore_mean_of_huge_scores_does_not_raise() -> None:
    assert mean_score([BIG, BIG, 1.0]) is None
    assert mean_score([1.0, None, 2.0]) == 1.5
