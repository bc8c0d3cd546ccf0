"""Pooled-ratio metrics scored in both directions, on real data, in both engines.

A lower-is-better pooled ratio (say abandoned calls / calls) scores target / ratio; a
higher-is-better one ratio / target. The expected figures below are worked out by hand from
the points, not by calling the app: each literal carries its arithmetic. Before these, the
only lower-is-better pooled-ratio case had no data, so scoring it the wrong way round passed.

As of Saturday 2026-05-16 the windows are: day 2026-05-15; week Mon 2026-05-04..Sun 05-10;
month 2026-04-01..04-30; quarter 2026-02-01..04-30.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import pytest

from api.scoring.aggregates import Point, Series
from api.scoring.engine import Calendar, Dense, score_columns
from api.scoring.scores import MetricSpec, WindowScore, metric_logic, score_as_of

D = dt.date
AS_OF = D(2026, 5, 16)
REL = 1e-12

# (day, numerator, denominator): abandoned calls, calls.
POINTS = [
    (D(2026, 5, 15), 3.0, 40.0),  # day: 3/40 = 0.075
    (D(2026, 5, 4), 2.0, 50.0),  # week: (2+6)/(50+50) = 8/100 = 0.08
    (D(2026, 5, 6), 6.0, 50.0),
    (D(2026, 4, 10), 15.0, 80.0),  # month: (15+10)/(80+120) = 25/200 = 0.125
    (D(2026, 4, 20), 10.0, 120.0),
    (D(2026, 2, 15), 15.0, 100.0),  # quarter: (25+15)/(200+100) = 40/300 = 2/15
    (D(2026, 5, 16), 99.0, 100.0),  # the as-of day itself is in no window
    (D(2026, 1, 31), 99.0, 100.0),  # before the quarter
]
# The same windows a year earlier (the baseline); the week 2025-05-04..05-10, April 2025 and
# February..April 2025.
LAST_YEAR = [
    (D(2025, 5, 5), 9.0, 100.0),  # week baseline: 9/100 = 0.09
    (D(2025, 4, 15), 12.0, 100.0),  # month baseline: 12/100 = 0.12
    (D(2025, 2, 10), 8.0, 100.0),  # quarter baseline: (12+8)/(100+100) = 20/200 = 0.1
]
TARGET = ((D(2000, 1, 1), 0.1),)
Engine = Callable[[MetricSpec, list[Point]], list[WindowScore]]

LOWER_TARGET = (
    # target / pooled ratio, publishing the two sums
    WindowScore(1.3333333333333333, 3.0, 40.0),  # 0.1 / (3/40) = 4/40 * 40/3 = 4/3
    WindowScore(1.25, 8.0, 100.0),  # 0.1 / (8/100) = 10/8 = 1.25
    WindowScore(0.8, 25.0, 200.0),  # 0.1 / (25/200) = 20/25 = 0.8
    WindowScore(0.75, 40.0, 300.0),  # 0.1 / (40/300) = 30/40 = 0.75
)
HIGHER_TARGET = (
    # pooled ratio / target, publishing the two sums
    WindowScore(0.75, 3.0, 40.0),  # (3/40) / 0.1 = 30/40 = 0.75
    WindowScore(0.8, 8.0, 100.0),  # (8/100) / 0.1 = 0.8
    WindowScore(1.25, 25.0, 200.0),  # (25/200) / 0.1 = 1.25
    WindowScore(1.3333333333333333, 40.0, 300.0),  # (40/300) / 0.1 = 4/3
)
LOWER_BASELINE = (
    # last year's ratio / this year's, published as (historical, current); the day window uses
    # the week's baseline
    WindowScore(1.2, 0.09, 0.075),  # 0.09 / 0.075 = 90/75 = 1.2
    WindowScore(1.125, 0.09, 0.08),  # 0.09 / 0.08 = 9/8 = 1.125
    WindowScore(0.96, 0.12, 0.125),  # 0.12 / 0.125 = 120/125 = 0.96
    WindowScore(0.75, 0.1, 0.13333333333333333),  # 0.1 / (2/15) = 1.5/2 = 0.75
)
HIGHER_BASELINE = (
    # this year's ratio / last year's, published as (current, historical)
    WindowScore(0.8333333333333334, 0.075, 0.09),  # 0.075 / 0.09 = 75/90 = 5/6
    WindowScore(0.8888888888888888, 0.08, 0.09),  # 0.08 / 0.09 = 8/9
    WindowScore(1.0416666666666667, 0.125, 0.12),  # 0.125 / 0.12 = 125/120 = 25/24
    WindowScore(1.3333333333333333, 0.13333333333333333, 0.1),  # (2/15) / 0.1 = 4/3
)
CASES = [
    ("lower_is_better", "target", TARGET, LOWER_TARGET),
    ("higher_is_better", "target", TARGET, HIGHER_TARGET),
    ("lower_is_better", "baseline", (), LOWER_BASELINE),
    ("higher_is_better", "baseline", (), HIGHER_BASELINE),
]


def reference_engine(spec: MetricSpec, points: list[Point]) -> list[WindowScore]:
    (row,) = score_as_of(spec, Series(points), [AS_OF])
    return list(row[1:])


def fast_engine(spec: MetricSpec, points: list[Point]) -> list[WindowScore]:
    rows = sorted(points, key=lambda p: p.date)
    calendar = Calendar([AS_OF], spec.baseline_years)
    dense = Dense(
        calendar,
        [p.date.toordinal() for p in rows],
        [p.value for p in rows],
        [p.numerator for p in rows],
        [p.denominator for p in rows],
    )
    (cells,) = score_columns(spec, calendar, dense).tolist()
    nulls = [None if math.isnan(x) else x for x in cells]
    return [WindowScore(*nulls[i : i + 3]) for i in range(0, 12, 3)]


def assert_scores(got: list[WindowScore], expected: tuple[WindowScore, ...]) -> None:
    assert len(got) == len(expected) == 4
    for window, (g, e) in enumerate(zip(got, expected, strict=True)):
        for field, (x, y) in enumerate(zip(g, e, strict=True)):
            assert x == pytest.approx(y, rel=REL, abs=0), (window, field, g, e)


def points(rows: list[tuple[dt.date, float, float]]) -> list[Point]:
    return [Point(d, n / den, n, den) for d, n, den in rows]


@pytest.mark.parametrize("engine", [reference_engine, fast_engine])
@pytest.mark.parametrize(("direction", "reference", "targets", "expected"), CASES)
def test_pooled_ratio_scores_by_direction(
    engine: Engine,
    direction: str,
    reference: str,
    targets: tuple[tuple[dt.date, float], ...],
    expected: tuple[WindowScore, ...],
) -> None:
    spec = MetricSpec(direction, "pooled_ratio", reference, targets, baseline_years=3)
    assert_scores(engine(spec, points(POINTS + LAST_YEAR)), expected)


@pytest.mark.parametrize("engine", [reference_engine, fast_engine])
def test_lower_is_better_pooled_ratio_without_events_has_no_score(engine: Engine) -> None:
    """No abandoned call all week: target / 0 is a zero divisor, so null, never infinite."""
    spec = MetricSpec("lower_is_better", "pooled_ratio", "target", TARGET)
    rows = [(D(2026, 5, 4), 0.0, 50.0), (D(2026, 5, 8), 0.0, 30.0)]  # 0/80 = 0
    week = engine(spec, points(rows))[1]
    assert week == WindowScore(None, 0.0, 80.0)


@pytest.mark.parametrize(
    ("direction", "reference", "logic"),
    [
        # the published formula: the target over the pooled ratio, the ratio parenthesised
        ("lower_is_better", "target", "target / (sum(numerator_value)/sum(denominator_value))"),
        ("higher_is_better", "target", "sum(numerator_value)/sum(denominator_value)/target"),
        ("lower_is_better", "baseline", "historical_ratio / current_ratio"),
        ("higher_is_better", "baseline", "current_ratio / historical_ratio"),
    ],
)
def test_pooled_ratio_metric_logic(direction: str, reference: str, logic: str) -> None:
    assert metric_logic(direction, "pooled_ratio", reference) == logic
