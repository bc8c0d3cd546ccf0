"""Window scores, Boston's published numerator/denominator, and ``metric_logic``."""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from api.scoring.aggregates import Aggregate, Series, total
from api.scoring.windows import ONE_DAY, Window, month_start, shift_window, windows_as_of

SEVEN_DAYS = dt.timedelta(days=7)

DIRECTIONS = ("higher_is_better", "lower_is_better")
REFERENCES = ("target", "baseline")


@dataclass(frozen=True)
class MetricSpec:
    """What scoring needs to know about a metric."""

    direction: str
    aggregation: str
    reference: str
    targets: tuple[tuple[dt.date, float], ...] = ()  # (effective_from, value), sorted
    baseline_years: int = 10

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher_is_better"

    @cached_property
    def _target_dates(self) -> list[dt.date]:
        return [t[0] for t in self.targets]

    def target_on(self, day: dt.date) -> float | None:
        """The target in force on ``day``: the latest one effective on or before it."""
        if self.reference != "target" or not self.targets:
            return None
        i = bisect_right(self._target_dates, day)
        return self.targets[i - 1][1] if i else None


class WindowScore(NamedTuple):
    score: float | None
    numerator: float | None
    denominator: float | None


EMPTY_SCORE = WindowScore(None, None, None)


class ScoreRow(NamedTuple):
    as_of: dt.date
    day: WindowScore
    week: WindowScore
    month: WindowScore
    quarter: WindowScore


_TARGET_LOGIC = {
    "pooled_ratio": "sum(numerator_value)/sum(denominator_value)",
    "mean_of_ratios": "average(sum(numerator_value)/sum(denominator_value))",
    "median": "median",
    "mean": "average(value)",
    "sum": "sum(value)",
}
_BASELINE_TERM = {
    "pooled_ratio": "ratio",
    "mean_of_ratios": "average_ratio",
    "median": "median",
    "mean": "average",
    "sum": "sum",
}


def metric_logic(direction: str, aggregation: str, reference: str) -> str:
    """Boston's ``metric_logic`` string for a metric of this kind."""
    higher = direction == "higher_is_better"
    if reference == "baseline":
        term = _BASELINE_TERM[aggregation]
        current, historical = f"current_{term}", f"historical_{term}"
        return f"{current} / {historical}" if higher else f"{historical} / {current}"
    a = _TARGET_LOGIC[aggregation]
    if higher:
        return f"{a}/target"
    if aggregation == "pooled_ratio":
        return f"target / ({a})"
    return f"target / {a}"


def _divide(numerator: float | None, denominator: float | None) -> float | None:
    """Score from a ratio: null without data or with a zero divisor; no cap; floor 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    score = numerator / denominator
    if math.isnan(score) or math.isinf(score):
        return None
    return max(0.0, score)


def window_score(spec: MetricSpec, current: Aggregate, reference: float | None) -> WindowScore:
    """Score one window's aggregate against its reference, with Boston's published pair."""
    a = current.value
    if spec.aggregation == "pooled_ratio" and spec.reference == "target":
        # Boston: sum(numerator)/sum(denominator)/target, publishing the two sums.
        score = _divide(a, reference) if spec.higher_is_better else _divide(reference, a)
        return WindowScore(score, current.numerator, current.denominator)
    if spec.higher_is_better:
        numerator, denominator = a, reference
    else:
        numerator, denominator = reference, a
    score = _divide(numerator, denominator)
    if spec.aggregation == "mean_of_ratios":
        return WindowScore(score, None, None)
    return WindowScore(score, numerator, denominator)


def _baseline(spec: MetricSpec, series: Series, window: Window) -> float | None:
    """Same window shifted back 1..baseline_years years, pooled over the years with data.

    For ``sum`` the pooled value is the mean daily value; ``_scaled`` turns it into an
    expected total for the window being scored.
    """
    spans = []
    for k in range(1, spec.baseline_years + 1):
        shifted = shift_window(window, k)
        i, j = series.span(shifted.start, shifted.end)
        if j > i:
            spans.append((i, j))
    if not spans:
        return None
    aggregation = "mean" if spec.aggregation == "sum" else spec.aggregation
    return series.aggregate(aggregation, spans).value


def _scaled(spec: MetricSpec, reference: float | None, window: Window) -> float | None:
    """A sum's baseline is a daily mean: expect that much on every day of the window."""
    if spec.aggregation != "sum" or reference is None:
        return reference
    return reference * ((window.end - window.start).days + 1)


def _windows(
    as_of: dt.date, months: dict[tuple[int, int], tuple[Window, Window]]
) -> tuple[Window, Window, Window, Window]:
    """The day, week, month and quarter windows as of a date (``months`` caches the last two,
    which every as-of date of a month shares)."""
    previous = as_of - ONE_DAY
    monday = as_of - dt.timedelta(days=as_of.weekday())
    month_quarter = months.get((as_of.year, as_of.month))
    if month_quarter is None:
        w = windows_as_of(as_of)
        month_quarter = months[(as_of.year, as_of.month)] = (w["month"], w["quarter"])
    return (
        Window(previous, previous),
        Window(monday - SEVEN_DAYS, monday - ONE_DAY),
        *month_quarter,
    )


def score_as_of(
    spec: MetricSpec,
    series: Series,
    as_of_dates: Iterable[dt.date],
) -> list[ScoreRow]:
    """Every window's score for each as-of date.

    Consecutive as-of dates share their week, month and quarter windows, so aggregates,
    baselines and scores are cached per window (and reference) and computed once.
    """
    aggregates: dict[Window, Aggregate] = {}
    baselines: dict[Window, float | None] = {}
    scores: dict[tuple[Window, float | None], WindowScore] = {}
    months: dict[tuple[int, int], tuple[Window, Window]] = {}
    by_baseline = spec.reference == "baseline"

    def scored(window: Window, reference: float | None) -> WindowScore:
        key = (window, reference)
        score = scores.get(key)
        if score is None:
            agg = aggregates.get(window)
            if agg is None:
                agg = aggregates[window] = series.window(spec.aggregation, *window)
            score = scores[key] = window_score(spec, agg, reference)
        return score

    def baseline(window: Window) -> float | None:
        if window not in baselines:
            baselines[window] = _baseline(spec, series, window)
        return baselines[window]

    rows = []
    for as_of in as_of_dates:
        day, week, month, quarter = _windows(as_of, months)
        if by_baseline:
            week_ref = baseline(week)  # the day window uses the week's baseline, as Boston does
            refs = (
                _scaled(spec, week_ref, day),
                _scaled(spec, week_ref, week),
                _scaled(spec, baseline(month), month),
                _scaled(spec, baseline(quarter), quarter),
            )
        else:
            target = spec.target_on(as_of)
            refs = (target, target, target, target)
        rows.append(
            ScoreRow(
                as_of,
                scored(day, refs[0]),
                scored(week, refs[1]),
                scored(month, refs[2]),
                scored(quarter, refs[3]),
            )
        )
    return rows


def has_current_data(series: Series, as_of: dt.date) -> bool:
    """Whether the days the four windows as of ``as_of`` can cover hold any value.

    Checks one span, from the quarter's first day to the day before ``as_of``: a superset of
    the windows (a value between the quarter's end and the week makes a row of nulls, which
    reads the same as no row).
    """
    return series.has_data(month_start(as_of, 3), as_of - ONE_DAY)


def mean_score(scores: Sequence[float | None]) -> float | None:
    """CityScore's plain mean of the non-null scores (correctly rounded sum)."""
    present = [s for s in scores if s is not None]
    if not present:
        return None
    s = total(present)
    return None if s is None else s / len(present)
