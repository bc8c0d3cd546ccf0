"""A metric's daily series and its aggregate over any date range.

The series keeps only the days that have a value, sorted, so a window is two bisections and
slices. Sums use ``math.fsum`` (correctly rounded, independent of order), so a window's total
does not depend on how the days were loaded.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import NamedTuple

from api.scoring.kinds import AGGREGATIONS, RATIO_AGGREGATIONS

__all__ = ["AGGREGATIONS", "RATIO_AGGREGATIONS", "Aggregate", "Point", "Series"]


class Point(NamedTuple):
    date: dt.date
    value: float | None
    numerator: float | None
    denominator: float | None


class Aggregate(NamedTuple):
    """A window's aggregate ``value`` (None without data), the day count and ratio sums."""

    value: float | None
    days: int
    numerator: float | None
    denominator: float | None


EMPTY = Aggregate(None, 0, None, None)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return finite(numerator / denominator)


def finite(x: float | None) -> float | None:
    """``x``, or None when it is not a finite number (an overflowed sum or ratio)."""
    return x if x is not None and math.isfinite(x) else None


def total(xs: Iterable[float]) -> float | None:
    """The correctly rounded sum, or None when it overflows (values stored before the ingest
    bounds existed can reach 1e308; a read must not fail on them)."""
    try:
        return finite(math.fsum(xs))
    except OverflowError:
        return None


def _mean(xs: list[float]) -> float | None:
    s = total(xs)
    return None if s is None else s / len(xs)


class Series:
    """One metric's daily points (deleted days left out)."""

    __slots__ = ("denominators", "numerators", "ordinals", "ratios", "values")

    def __init__(self, points: Iterable[Point]):
        rows = sorted(points, key=lambda p: p.date)
        self.ordinals = [p.date.toordinal() for p in rows]
        self.values = [p.value for p in rows]
        self.numerators = [p.numerator for p in rows]
        self.denominators = [p.denominator for p in rows]
        self.ratios = [_ratio(p.numerator, p.denominator) for p in rows]

    @classmethod
    def from_columns(
        cls,
        ordinals: list[int],
        values: list[float | None],
        numerators: list[float | None],
        denominators: list[float | None],
    ) -> Series:
        """A series from columns already sorted by day (``date.toordinal()`` numbers)."""
        series = cls.__new__(cls)
        series.ordinals = ordinals
        series.values = values
        series.numerators = numerators
        series.denominators = denominators
        series.ratios = [_ratio(n, d) for n, d in zip(numerators, denominators, strict=True)]
        return series

    def __len__(self) -> int:
        return len(self.ordinals)

    def span(self, start: dt.date, end: dt.date) -> tuple[int, int]:
        """Index range [i, j) of the points inside [start, end]."""
        return (
            bisect_left(self.ordinals, start.toordinal()),
            bisect_right(self.ordinals, end.toordinal()),
        )

    def has_data(self, start: dt.date, end: dt.date) -> bool:
        i, j = self.span(start, end)
        return j > i

    def aggregate(self, aggregation: str, spans: Iterable[tuple[int, int]]) -> Aggregate:
        """Aggregate the points in ``spans`` (pooled, as one set of days)."""
        ranges = [(i, j) for i, j in spans if j > i]
        days = sum(j - i for i, j in ranges)
        if days == 0:
            return EMPTY
        if aggregation in RATIO_AGGREGATIONS:
            num = total(x for i, j in ranges for x in self.numerators[i:j] if x is not None)
            den = total(x for i, j in ranges for x in self.denominators[i:j] if x is not None)
            if aggregation == "pooled_ratio":
                pooled = finite(num / den) if num is not None and den else None
                return Aggregate(pooled, days, num, den)
            ratios = [x for i, j in ranges for x in self.ratios[i:j] if x is not None]
            return Aggregate(_mean(ratios) if ratios else None, days, num, den)
        values = [x for i, j in ranges for x in self.values[i:j] if x is not None]
        if not values:
            return Aggregate(None, days, None, None)
        if aggregation == "mean":
            return Aggregate(_mean(values), days, None, None)
        if aggregation == "sum":
            return Aggregate(total(values), days, None, None)
        if aggregation == "median":
            return Aggregate(finite(float(statistics.median(values))), days, None, None)
        raise ValueError(f"unknown aggregation {aggregation!r}")

    def window(self, aggregation: str, start: dt.date, end: dt.date) -> Aggregate:
        if start == end:  # the day window: one point at most, no pooling to do
            return self._one_day(aggregation, start)
        return self.aggregate(aggregation, [self.span(start, end)])

    def _one_day(self, aggregation: str, day: dt.date) -> Aggregate:
        ordinal = day.toordinal()
        i = bisect_left(self.ordinals, ordinal)
        if i == len(self.ordinals) or self.ordinals[i] != ordinal:
            return EMPTY
        if aggregation == "pooled_ratio":
            num, den = self.numerators[i], self.denominators[i]
            return Aggregate(_ratio(num, den), 1, num, den)
        if aggregation == "mean_of_ratios":
            return Aggregate(self.ratios[i], 1, self.numerators[i], self.denominators[i])
        return Aggregate(finite(self.values[i]), 1, None, None)
