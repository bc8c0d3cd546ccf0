"""The fast engine (api/scoring/engine.py) equals the reference engine (scores.score_as_of).

A hypothesis property test over random series (gaps, zeros, nulls, leap days), targets that
change mid-window, both directions, every aggregation and both references, before and after
random edits, to 1e-12 relative. Derandomised with a bounded number of examples, so CI runs
the same cases every time.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.scoring.aggregates import AGGREGATIONS, RATIO_AGGREGATIONS, Point, Series
from api.scoring.engine import (
    BATCH,
    MAX_BATCH,
    Calendar,
    Dense,
    baselines_of,
    batch_size,
    has_current_data,
    has_window_data,
    score_columns,
    score_many,
)
from api.scoring.scores import DIRECTIONS, REFERENCES, MetricSpec, score_as_of
from api.scoring.scores import has_current_data as reference_has_current_data
from api.scoring.windows import date_range
from tests.scoring import naive

D = dt.date
REL = 1e-12
PROPERTY = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

numbers = st.one_of(
    st.just(0.0),
    st.integers(0, 1000).map(float),
    st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
    st.floats(1e-9, 1.0),
)


@st.composite
def specs(draw: Any) -> MetricSpec:
    reference = draw(st.sampled_from(REFERENCES))
    targets: tuple[tuple[dt.date, float], ...] = ()
    if reference == "target":
        days = draw(st.lists(st.dates(D(2019, 1, 1), D(2026, 12, 31)), max_size=3, unique=True))
        targets = tuple(
            sorted((d, draw(st.one_of(st.just(0.0), st.floats(0.01, 100)))) for d in days)
        )
    return MetricSpec(
        direction=draw(st.sampled_from(DIRECTIONS)),
        aggregation=draw(st.sampled_from(AGGREGATIONS)),
        reference=reference,
        targets=targets,
        baseline_years=draw(st.integers(0, 4)),
    )


@st.composite
def series_points(draw: Any, aggregation: str) -> list[Point]:
    start = draw(st.dates(D(2019, 1, 1), D(2025, 6, 30)))
    length = draw(st.integers(0, 900))
    keep_share = draw(st.sampled_from([1.0, 0.9, 0.5, 0.1]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    pool = draw(st.lists(numbers, min_size=1, max_size=12))
    points = []
    for i in range(length):
        if rng.random() >= keep_share:
            continue  # a gap
        day = start + dt.timedelta(days=i)
        if aggregation in RATIO_AGGREGATIONS:
            num = None if rng.random() < 0.03 else pool[int(rng.integers(len(pool)))]
            den = None if rng.random() < 0.03 else pool[int(rng.integers(len(pool)))]
            value = num / den if num is not None and den else None
            points.append(Point(day, value, num, den))
        else:
            value = None if rng.random() < 0.03 else pool[int(rng.integers(len(pool)))]
            points.append(Point(day, value, None, None))
    return points


def _edit(points: list[Point], seed: int) -> list[Point]:
    """Change some values, delete some days, add some (what a later batch does)."""
    rng = np.random.default_rng(seed)
    out = []
    for p in points:
        r = rng.random()
        if r < 0.1:
            continue  # deleted
        if r < 0.2:
            scale = float(rng.integers(0, 5))
            num = None if p.numerator is None else p.numerator * scale
            value = None if p.value is None else p.value * scale
            if p.denominator is not None and num is not None:
                value = num / p.denominator if p.denominator else None
            p = Point(p.date, value, num, p.denominator)
        out.append(p)
    return out


def _close(expected: float | None, got: float) -> bool:
    if expected is None:
        return math.isnan(got)
    return not math.isnan(got) and math.isclose(expected, got, rel_tol=REL, abs_tol=0.0)


def _check(spec: MetricSpec, points: list[Point], dates: list[dt.date]) -> None:
    series = Series(points)
    reference = score_as_of(spec, series, dates)
    calendar = Calendar(dates, spec.baseline_years)
    dense = Dense(
        calendar,
        [p.date.toordinal() for p in series_sorted(points)],
        [p.value for p in series_sorted(points)],
        [p.numerator for p in series_sorted(points)],
        [p.denominator for p in series_sorted(points)],
    )
    got = score_columns(spec, calendar, dense)
    for row, cells in zip(reference, got.tolist(), strict=True):
        expected = [x for window in row[1:] for x in window]
        for i, (e, g) in enumerate(zip(expected, cells, strict=True)):
            assert _close(e, g), (row.as_of, i, e, g, spec)
    flags = has_current_data(calendar, dense).tolist()
    assert flags == [reference_has_current_data(series, d) for d in dates]
    stored = has_window_data(calendar, dense).tolist()
    assert stored == [any(series.has_data(*w) for w in naive.windows(d).values()) for d in dates]


def series_sorted(points: list[Point]) -> list[Point]:
    return sorted(points, key=lambda p: p.date)


@PROPERTY
@given(data=st.data())
def test_fast_engine_equals_reference(data: Any) -> None:
    spec = data.draw(specs())
    points = data.draw(series_points(spec.aggregation))
    first = data.draw(st.dates(D(2019, 1, 1), D(2026, 6, 30)))
    span = data.draw(st.integers(1, 500))
    dates = date_range(first, first + dt.timedelta(days=span - 1))
    if data.draw(st.booleans()):  # a sparse set of as-of dates, as an incremental rescore has
        dates = sorted(data.draw(st.sets(st.sampled_from(dates), min_size=1, max_size=60)))
    _check(spec, points, dates)
    _check(spec, _edit(points, data.draw(st.integers(0, 2**32 - 1))), dates)


def test_leap_february_baselines_match_reference() -> None:
    """February windows across leap years (Feb 29 -> Feb 28, February end -> February end)."""
    days = date_range(D(2019, 1, 1), D(2025, 12, 31))
    points = [Point(d, float(d.toordinal() % 13), None, None) for d in days]
    dates = date_range(D(2020, 2, 20), D(2025, 4, 10))
    for aggregation in ("mean", "median", "sum"):
        for direction in DIRECTIONS:
            spec = MetricSpec(direction, aggregation, "baseline", (), baseline_years=5)
            _check(spec, points, dates)


def test_extreme_values_never_raise() -> None:
    """1e308 everywhere: sums overflow to inf; every result is then null or finite."""
    days = date_range(D(2024, 1, 1), D(2025, 3, 31))
    dates = date_range(D(2024, 1, 2), D(2025, 6, 30))
    for aggregation in AGGREGATIONS:
        ratio = aggregation in RATIO_AGGREGATIONS
        points = [
            Point(d, 1.0 if ratio else 1e308, 1e308 if ratio else None, 1e308 if ratio else None)
            for d in days
        ]
        for direction in DIRECTIONS:
            for reference, targets in (("target", ((D(2020, 1, 1), 1e-300),)), ("baseline", ())):
                spec = MetricSpec(direction, aggregation, reference, targets, baseline_years=1)
                calendar = Calendar(dates, 1)
                dense = Dense(
                    calendar,
                    [p.date.toordinal() for p in points],
                    [p.value for p in points],
                    [p.numerator for p in points],
                    [p.denominator for p in points],
                )
                got = score_columns(spec, calendar, dense)
                assert not np.isinf(got).any()
                assert (np.nan_to_num(got, nan=0.0) >= 0).all()


def _columns(points: list[Point]) -> tuple[list[Any], ...]:
    ordered = series_sorted(points)
    return (
        [p.date.toordinal() for p in ordered],
        [p.value for p in ordered],
        [p.numerator for p in ordered],
        [p.denominator for p in ordered],
    )


@PROPERTY
@given(data=st.data())
def test_a_batch_scores_each_metric_to_the_same_bits_as_alone(data: Any) -> None:
    """``score_many`` over metrics sharing a batch key (their targets and series differ)
    equals ``score_columns`` metric by metric, bit for bit: a batched rescore must store
    what a single-metric one would."""
    first = data.draw(specs())
    others = [data.draw(specs()) for _ in range(data.draw(st.integers(1, 4)))]
    batch = [first] + [
        MetricSpec(
            first.direction,
            first.aggregation,
            first.reference,
            s.targets if first.reference == "target" else (),
            first.baseline_years,
        )
        for s in others
    ]
    series = [data.draw(series_points(first.aggregation)) for _ in batch]
    start = data.draw(st.dates(D(2019, 1, 1), D(2026, 6, 30)))
    dates = date_range(start, start + dt.timedelta(days=data.draw(st.integers(1, 300))))
    calendar = Calendar(dates, first.baseline_years)
    together = score_many(batch, calendar, Dense.of_many(calendar, [_columns(p) for p in series]))
    for i, (spec, points) in enumerate(zip(batch, series, strict=True)):
        alone = score_columns(spec, calendar, Dense(calendar, *_columns(points)))
        assert np.array_equal(together[i], alone, equal_nan=True), (i, spec)


def test_batches_are_sized_by_the_days_they_hold() -> None:
    """A full rescore's calendar (ten years of as-of dates and a baseline year) keeps batches
    of ``BATCH`` metrics; a day's rescore (weeks of as-of dates) takes up to ``MAX_BATCH``."""
    decade = Calendar(date_range(D(2016, 12, 2), D(2026, 12, 1)), 1)
    assert 32 <= batch_size(decade) <= BATCH
    weeks = Calendar(date_range(D(2026, 12, 2), D(2027, 3, 31)), 0)
    assert batch_size(weeks) == MAX_BATCH


def test_a_batch_refuses_specs_that_do_not_share_a_key() -> None:
    dates = date_range(D(2025, 1, 1), D(2025, 1, 31))
    calendar = Calendar(dates, 0)
    dense = Dense.of_many(calendar, [([], [], [], []), ([], [], [], [])])
    mean = MetricSpec("higher_is_better", "mean", "target", (), 0)
    median = MetricSpec("higher_is_better", "median", "target", (), 0)
    with pytest.raises(ValueError):
        score_many([mean, median], calendar, dense)


@PROPERTY
@given(data=st.data())
def test_stored_baselines_score_without_the_baseline_years_values(data: Any) -> None:
    """Scoring with the baselines ``baselines_of`` gave (as a rescore takes them from the
    runs it replaces) and only the current windows' values gives the same bits as scoring
    from every value: the baseline windows' values are then not needed at all."""
    first = data.draw(specs())
    spec = MetricSpec(first.direction, first.aggregation, "baseline", (), first.baseline_years)
    points = data.draw(series_points(spec.aggregation))
    start = data.draw(st.dates(D(2019, 1, 1), D(2026, 6, 30)))
    dates = date_range(start, start + dt.timedelta(days=data.draw(st.integers(1, 300))))
    calendar = Calendar(dates, spec.baseline_years)
    full = Dense(calendar, *_columns(points))
    baselines = baselines_of([spec], calendar, full)
    spans = calendar.spans(baselines=False)
    current = [p for p in points if any(a <= p.date <= b for a, b in spans)]
    alone = score_many([spec], calendar, Dense(calendar, *_columns(current)), baselines)
    assert np.array_equal(alone, score_many([spec], calendar, full), equal_nan=True)
