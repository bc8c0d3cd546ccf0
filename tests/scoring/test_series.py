"""``Series.window`` on one day and on days without a value, field by field.

A one-day window takes its own path (no pooling); its day count feeds the ``days`` column of
``/v1/metrics/{slug}/values?interval=day``. Expected aggregates are written out by hand.
"""

from __future__ import annotations

import datetime as dt

import pytest

from api.scoring.aggregates import Aggregate, Point, Series
from api.scoring.scores import MetricSpec, WindowScore, score_as_of

D = dt.date
DAY = D(2026, 5, 15)
RATIO_DAY = Series([Point(DAY, 0.75, 3.0, 4.0)])
VALUE_DAY = Series([Point(DAY, 7.5, None, None)])


@pytest.mark.parametrize(
    ("aggregation", "series", "expected"),
    [
        ("pooled_ratio", RATIO_DAY, Aggregate(0.75, 1, 3.0, 4.0)),  # 3/4
        ("mean_of_ratios", RATIO_DAY, Aggregate(0.75, 1, 3.0, 4.0)),  # the day's own ratio
        ("mean", VALUE_DAY, Aggregate(7.5, 1, None, None)),
        ("median", VALUE_DAY, Aggregate(7.5, 1, None, None)),
        ("sum", VALUE_DAY, Aggregate(7.5, 1, None, None)),
    ],
)
def test_one_day_window(aggregation: str, series: Series, expected: Aggregate) -> None:
    assert series.window(aggregation, DAY, DAY) == expected
    assert series.window(aggregation, DAY - dt.timedelta(days=1), DAY) == expected  # pooled


def test_one_day_mean_of_ratios_is_the_ratio_of_the_parts() -> None:
    """The day's ratio comes from its numerator and denominator, not a stored value."""
    series = Series([Point(DAY, None, 1.0, 8.0)])
    assert series.window("mean_of_ratios", DAY, DAY) == Aggregate(0.125, 1, 1.0, 8.0)  # 1/8


def test_one_day_mean_of_ratios_scores() -> None:
    """Day window of a mean of ratios: 0.75 against a target of 0.5 is 1.5, no pair."""
    spec = MetricSpec("higher_is_better", "mean_of_ratios", "target", ((D(2000, 1, 1), 0.5),))
    (row,) = score_as_of(spec, RATIO_DAY, [DAY + dt.timedelta(days=1)])
    assert row.day == WindowScore(1.5, None, None)  # 0.75 / 0.5


def test_days_with_only_null_values_count_but_have_no_value() -> None:
    series = Series(
        [Point(D(2026, 5, 4), None, None, None), Point(D(2026, 5, 5), None, None, None)]
    )
    assert series.window("mean", D(2026, 5, 4), D(2026, 5, 10)) == Aggregate(None, 2, None, None)


def test_a_ratio_that_overflows_is_null() -> None:
    series = Series([Point(DAY, None, 1e308, 1e-300)])  # 1e608: not a double
    assert series.window("mean_of_ratios", DAY, DAY) == Aggregate(None, 1, 1e308, 1e-300)


def test_unknown_aggregation_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'mode'"):
        VALUE_DAY.window("mode", DAY - dt.timedelta(days=1), DAY)


def test_a_baseline_metric_has_no_target_even_with_target_rows() -> None:
    """Targets left from when the metric used one do not apply once it uses a baseline."""
    spec = MetricSpec("higher_is_better", "mean", "baseline", ((D(2000, 1, 1), 5.0),))
    assert spec.target_on(D(2026, 5, 16)) is None
