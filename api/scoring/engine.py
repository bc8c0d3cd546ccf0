"""The fast scoring engine: the reference method of ``scores.py``, vectorised with NumPy.

``score_as_of`` in ``scores.py`` is the reference (table-tested with Boston's figures); this
module computes the same rows for many as-of dates at once, and a property test holds the
two equal to 1e-12. The cost follows the distinct windows, not the as-of dates:

- A ``Calendar`` is built once for a sorted set of as-of dates and shared by every metric
  scored on them: each date's week, month and quarter window as an index into the distinct
  windows (~52 + 12 + 12 a year, not 3 x 365), the year-shifted baseline windows, and the
  dense-day gather indices of all of them.
- A metric's points become dense daily arrays over the calendar's day span. Counts come from
  integer prefix sums (exact, O(1) a window). Float sums are added day by day in window order
  with elementwise NumPy adds over all windows at once, so a window's sum depends only on the
  days inside it: an incremental rescore (a partial load) equals a full one bit for bit, and
  there is no cancellation (``S[j] - S[i]`` prefix differences lose precision when a large
  value precedes a small window).
- Medians sort each distinct window's values once.

Columns are float arrays with NaN for null; any non-finite result is null (1e308 values
overflow a sum to inf: the score is then null, never an error).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from api.scoring.scores import MetricSpec
from api.scoring.windows import Window, shift_window

FloatArray = Any  # numpy.ndarray of float64 (NaN = null)
IntArray = Any  # numpy.ndarray of int64
NAN = float("nan")
UNIX_ORDINAL = dt.date(1970, 1, 1).toordinal()
# The window kinds that get a distinct-window table (the day window is read directly).
KINDS = ("week", "month", "quarter")


def _month_starts(as_of: IntArray, months_back: int) -> IntArray:
    """Ordinal of the first day of the month ``months_back`` before each as-of date's month."""
    months = (as_of - UNIX_ORDINAL).astype("datetime64[D]").astype("datetime64[M]")
    first = (months - np.timedelta64(months_back, "M")).astype("datetime64[D]")
    return first.astype(np.int64) + UNIX_ORDINAL


@dataclass
class _Windows:
    """One kind's distinct windows: bounds, the as-of dates' indexes, and gather indices."""

    start: IntArray  # ordinal of each distinct window's first day
    end: IntArray  # ordinal of its last day
    of_as_of: IntArray  # for each as-of date, the index of its window
    gather: IntArray  # (max length, windows) dense-day indices, PAD past a window's end
    shifted: list[tuple[IntArray, IntArray, IntArray]]  # per year back: start, end, gather
    length: FloatArray  # days in each window (a sum baseline scales by it)
    # Filled by the calendar: dense (i, j, gather) of the windows and of each shifted set.
    part: tuple[Any, ...] = ()
    shifted_parts: list[tuple[Any, ...]] = field(default_factory=list)


class Calendar:
    """The windows of a sorted set of as-of dates, shared by every metric scored on them."""

    def __init__(self, as_of: Sequence[dt.date], baseline_years: int):
        self.dates = list(as_of)
        self.as_of = np.array([d.toordinal() for d in self.dates], dtype=np.int64)
        self.baseline_years = baseline_years
        a = self.as_of
        monday = a - (a - 1) % 7  # ordinal 1 (0001-01-01) is a Monday
        this_month = _month_starts(a, 0)
        bounds = {
            "week": (monday - 7, monday - 1),
            "month": (_month_starts(a, 1), this_month - 1),
            "quarter": (_month_starts(a, 3), this_month - 1),
        }
        raw: dict[str, tuple[IntArray, IntArray, IntArray]] = {}
        lo = hi = int(a.max()) - 1 if len(a) else 0
        for kind, (starts, ends) in bounds.items():
            keys, index = np.unique(starts * (1 << 21) + ends, return_inverse=True)
            s, e = keys >> 21, keys & ((1 << 21) - 1)
            raw[kind] = (s, e, index.reshape(-1))
            if len(s):
                lo = min(lo, int(s.min()))
        self.shifts: dict[str, list[tuple[IntArray, IntArray]]] = {}
        for kind, (s, e, _) in raw.items():
            per_year = []
            for k in range(1, baseline_years + 1):
                shifted = [
                    shift_window(Window(dt.date.fromordinal(x), dt.date.fromordinal(y)), k)
                    for x, y in zip(s.tolist(), e.tolist(), strict=True)
                ]
                ss = np.array([w.start.toordinal() for w in shifted], dtype=np.int64)
                ee = np.array([w.end.toordinal() for w in shifted], dtype=np.int64)
                if len(ss):
                    lo = min(lo, int(ss.min()))
                per_year.append((ss, ee))
            self.shifts[kind] = per_year
        self.lo, self.hi = lo, hi
        self.size = hi - lo + 1  # dense days; index ``size`` is the zero pad
        self.windows = {
            kind: _Windows(
                s,
                e,
                index,
                self._gather(s, e),
                [(ss, ee, self._gather(ss, ee)) for ss, ee in self.shifts[kind]],
                (e - s + 1).astype(float),
            )
            for kind, (s, e, index) in raw.items()
        }
        for windows in self.windows.values():  # dense index bounds, shared by every metric
            windows.part = (*self.bounds(windows.start, windows.end), windows.gather)
            windows.shifted_parts = [(*self.bounds(a, b), g) for a, b, g in windows.shifted]

    def spans(self, baselines: bool = True) -> list[tuple[dt.date, dt.date]]:
        """The day ranges any window (and, with ``baselines``, any baseline window) of these
        as-of dates reads, merged."""
        parts = [(self.as_of - 1, self.as_of - 1)]
        for windows in self.windows.values():
            parts.append((windows.start, windows.end))
            if baselines:
                parts.extend((s, e) for s, e, _ in windows.shifted)
        starts = np.concatenate([p[0] for p in parts])
        ends = np.concatenate([p[1] for p in parts])
        order = np.argsort(starts, kind="stable")
        merged: list[list[int]] = []
        for a, b in zip(starts[order].tolist(), ends[order].tolist(), strict=True):
            if merged and a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return [(dt.date.fromordinal(a), dt.date.fromordinal(b)) for a, b in merged]

    def baseline_end(self) -> int | None:
        """The last day any baseline window of these as-of dates reads (None without any):
        a value changed after it leaves every baseline of this calendar as it was."""
        ends = [int(e.max()) for w in self.windows.values() for _, e, _ in w.shifted if len(e)]
        return max(ends, default=None)

    def _gather(self, starts: IntArray, ends: IntArray) -> IntArray:
        """(max window length, windows) dense indices of every window's days (PAD after)."""
        if not len(starts):
            return np.zeros((0, 0), dtype=np.int64)
        width = int((ends - starts).max()) + 1
        days = starts[None, :] + np.arange(width, dtype=np.int64)[:, None]
        inside = (days <= ends[None, :]) & (days >= self.lo) & (days <= self.hi)
        return np.where(inside, days - self.lo, self.size)

    def bounds(self, starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
        """Dense index ranges [i, j) of the windows [start, end] (clipped to the span)."""
        i = np.clip(starts - self.lo, 0, self.size)
        j = np.maximum(np.clip(ends - self.lo + 1, 0, self.size), i)
        return i, j

    def count(self, prefix: IntArray, starts: IntArray, ends: IntArray) -> IntArray:
        """Points in each [start, end] from a prefix count over the dense days (the last
        axis; one row per metric or a single prefix)."""
        i, j = self.bounds(starts, ends)
        return prefix[..., j] - prefix[..., i]


class Dense:
    """Metrics' points as dense daily arrays over a calendar's day span: one row per metric,
    one column per day, plus a pad column (index ``size``) that reads as no point.

    ``Dense(calendar, ordinals, values, numerators, denominators)`` is one metric (the
    functions below then return one metric's arrays); ``Dense.of_many(calendar, columns)``
    stacks many, so that one NumPy operation scores them all (``score_many``). Every
    operation is elementwise along the metric axis, so a metric's figures are the same bits
    alone or in a batch.
    """

    def __init__(
        self,
        calendar: Calendar,
        ordinals: Sequence[int],
        values: Sequence[float | None],
        numerators: Sequence[float | None],
        denominators: Sequence[float | None],
    ):
        self._build(calendar, [(ordinals, values, numerators, denominators)])
        self.single = True

    @classmethod
    def of_many(cls, calendar: Calendar, columns: Sequence[Sequence[Any]]) -> Dense:
        """Many metrics' (ordinals, values, numerators, denominators), one row each."""
        out = cls.__new__(cls)
        out._build(calendar, columns)
        out.single = False
        return out

    def _build(self, calendar: Calendar, columns: Sequence[Sequence[Any]]) -> None:
        size = calendar.size
        self.lo = calendar.lo
        self.rows = len(columns)
        shape = (self.rows, size + 1)
        self.present = np.zeros(shape, dtype=bool)
        self.value = np.full(shape, NAN)
        self.numerator = np.full(shape, NAN)
        self.denominator = np.full(shape, NAN)
        if columns:  # every row's points at once: one scatter per column, not per row
            days = [np.asarray(c[0], dtype=np.int64) for c in columns]
            o = np.concatenate(days) - calendar.lo
            rows = np.repeat(np.arange(self.rows), [len(d) for d in days])
            keep = (o >= 0) & (o < size)
            rows, at = rows[keep], o[keep]
            self.present[rows, at] = True
            for target, i in ((self.value, 1), (self.numerator, 2), (self.denominator, 3)):
                xs = np.concatenate([np.asarray(c[i], dtype=float) for c in columns])
                target[rows, at] = xs[keep]  # None becomes NaN
        with np.errstate(all="ignore"):
            ratio = self.numerator / self.denominator
        ratio[~(self.denominator != 0) | np.isnan(self.numerator)] = NAN
        self.ratio = ratio
        self.prefix_points = _prefix(self.present[:, :size])
        self.prefix_values = _prefix(~np.isnan(self.value[:, :size]))
        self.prefix_ratios = _prefix(~np.isnan(self.ratio[:, :size]))
        self.zero_filled: dict[str, FloatArray] = {}

    def is_live(self, ordinal: int) -> bool:
        """Whether the (single) metric has a point on this day (within the calendar's span)."""
        at = ordinal - self.lo
        return 0 <= at < self.present.shape[1] - 1 and bool(self.present[0, at])

    def zeros(self, name: str) -> FloatArray:
        """The column with null days as 0 (for sums); the pad stays 0."""
        out = self.zero_filled.get(name)
        if out is None:
            out = self.zero_filled[name] = np.nan_to_num(getattr(self, name), nan=0.0)
        return out

    def shaped(self, out: Any) -> Any:
        """One metric's row when this is a single metric, else every row."""
        return out[0] if self.single else out


def _prefix(flags: Any) -> IntArray:
    """Per row, the count of true flags before each column (a leading 0 column)."""
    flags = np.atleast_2d(flags)
    out = np.zeros((flags.shape[0], flags.shape[1] + 1), dtype=np.int64)
    np.cumsum(flags, axis=1, out=out[:, 1:])
    return out


def _window_sum(column: FloatArray, gather: IntArray) -> FloatArray:
    """Each window's sum per row, added day by day in date order (independent of the dense
    span and of the other rows)."""
    if not gather.shape[0]:
        return np.zeros((column.shape[0], gather.shape[1]))
    total = column[:, gather[0]]
    for row in gather[1:]:
        total += column[:, row]
    return total


def _ratio_of(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(all="ignore"):
        out = numerator / denominator
    out[(denominator == 0) | np.isnan(denominator)] = NAN
    return out


@dataclass
class _Agg:
    """Aggregates of a set of windows: value, published sums (NaN = null), (rows, windows)."""

    value: FloatArray
    numerator: FloatArray
    denominator: FloatArray


def _median(dense: Dense, spans: list[list[tuple[int, int]]]) -> FloatArray:
    """Per row, the median of the non-null values of each window (a list of day spans)."""
    out = np.full((dense.rows, len(spans)), NAN)
    values = dense.value
    rows = np.arange(dense.rows)
    for w, parts in enumerate(spans):
        chunks = [values[:, i:j] for i, j in parts if j > i]
        if not chunks:
            continue
        pooled = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
        ordered = np.sort(pooled, axis=1)  # NaN sorts last
        n = np.count_nonzero(~np.isnan(pooled), axis=1)
        mid = n // 2
        upper = ordered[rows, np.minimum(mid, ordered.shape[1] - 1)]
        lower = ordered[rows, np.maximum(mid - 1, 0)]
        out[:, w] = np.where(n % 2 == 1, upper, (lower + upper) / 2)
        out[n == 0, w] = NAN
    return out


def _counts(prefix: IntArray, parts: list[tuple[IntArray, IntArray, IntArray]]) -> IntArray:
    total = prefix[:, parts[0][1]] - prefix[:, parts[0][0]]
    for i, j, _ in parts[1:]:
        total = total + (prefix[:, j] - prefix[:, i])
    return total


def _aggregate(
    calendar: Calendar,
    dense: Dense,
    aggregation: str,
    parts: list[tuple[IntArray, IntArray, IntArray]],
) -> _Agg:
    """Pooled aggregates of windows made of ``parts`` (dense i, j, gather), like ``Series``."""
    empty = _counts(dense.prefix_points, parts) == 0
    nothing = np.full(empty.shape, NAN)
    if aggregation in ("pooled_ratio", "mean_of_ratios"):
        num = _sum_parts(dense.zeros("numerator"), parts)
        den = _sum_parts(dense.zeros("denominator"), parts)
        if aggregation == "pooled_ratio":
            value = _ratio_of(num, den)
        else:
            count = _counts(dense.prefix_ratios, parts)
            value = _ratio_of(_sum_parts(dense.zeros("ratio"), parts), count.astype(float))
        num[empty], den[empty], value[empty] = NAN, NAN, NAN
        return _Agg(value, num, den)
    count = _counts(dense.prefix_values, parts)
    if aggregation == "median":
        spans = [list(zip(i.tolist(), j.tolist(), strict=True)) for i, j, _ in parts]
        value = _median(dense, [list(w) for w in zip(*spans, strict=True)])
    else:
        total = _sum_parts(dense.zeros("value"), parts)
        value = total if aggregation == "sum" else _ratio_of(total, count.astype(float))
    value[count == 0] = NAN
    return _Agg(value, nothing, nothing.copy())


def _sum_parts(column: FloatArray, parts: list[tuple[IntArray, IntArray, IntArray]]) -> FloatArray:
    total = _window_sum(column, parts[0][2])
    for _, _, gather in parts[1:]:
        total = total + _window_sum(column, gather)
    return total


def _day(calendar: Calendar, dense: Dense, aggregation: str) -> _Agg:
    """The day window (the day before each as-of date): one point at most."""
    t = calendar.as_of - 1 - calendar.lo
    t = np.where((t >= 0) & (t < calendar.size), t, calendar.size)
    present = dense.present[:, t]
    num, den = dense.numerator[:, t], dense.denominator[:, t]
    if aggregation == "pooled_ratio":
        value = _ratio_of(num, den)
    elif aggregation == "mean_of_ratios":
        value = dense.ratio[:, t]
    else:
        value = dense.value[:, t]
        num, den = np.full(present.shape, NAN), np.full(present.shape, NAN)
    value = np.where(present, value, NAN)
    return _Agg(value, np.where(present, num, NAN), np.where(present, den, NAN))


def _divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Score of a ratio: null without data or with a zero divisor; no cap; floor 0."""
    with np.errstate(all="ignore"):
        score = numerator / denominator
    score[~np.isfinite(score) | (denominator == 0)] = NAN
    return np.where(np.isnan(score), NAN, np.maximum(score, 0.0))


def _window_score(
    spec: MetricSpec, current: _Agg, reference: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    a = current.value
    reference = np.broadcast_to(reference, a.shape)
    if spec.aggregation == "pooled_ratio" and spec.reference == "target":
        score = _divide(a, reference) if spec.higher_is_better else _divide(reference, a)
        return score, current.numerator, current.denominator
    numerator, denominator = (a, reference) if spec.higher_is_better else (reference, a)
    score = _divide(numerator, denominator)
    if spec.aggregation == "mean_of_ratios":
        none = np.full(a.shape, NAN)
        return score, none, none
    return score, numerator, denominator


def _targets(spec: MetricSpec, calendar: Calendar) -> FloatArray:
    if spec.reference != "target" or not spec.targets:
        return np.full(len(calendar.as_of), NAN)
    starts = np.array([t[0].toordinal() for t in spec.targets], dtype=np.int64)
    values = np.array([t[1] for t in spec.targets], dtype=float)
    i = np.searchsorted(starts, calendar.as_of, side="right")
    return np.where(i > 0, values[np.maximum(i - 1, 0)], NAN)


def batch_key(spec: MetricSpec) -> tuple[str, str, str, int]:
    """Metrics with the same key can be scored in one batch (``score_many``)."""
    years = spec.baseline_years if spec.reference == "baseline" else 0
    return spec.aggregation, spec.reference, spec.direction, years


def score_columns(spec: MetricSpec, calendar: Calendar, dense: Dense) -> FloatArray:
    """One metric's (as-of dates, 12) score columns: day, week, month, quarter x score,
    numerator, denominator.

    Equal (to rounding) to ``scores.score_as_of`` on the same dates; NaN is null.
    """
    out: FloatArray = score_many([spec], calendar, dense)[0]
    return out


def score_many(
    specs: Sequence[MetricSpec],
    calendar: Calendar,
    dense: Dense,
    baselines: Baselines | None = None,
    width: int = 12,
) -> FloatArray:
    """(metrics, as-of dates, 12) score columns of the rows of ``dense``, one spec per row;
    the specs share a ``batch_key`` (targets may differ). ``baselines``: the rows' baselines
    (``baselines_of``) when the caller holds them, so the baseline windows' values need not
    be in ``dense``. ``width`` > 12 leaves that many columns, unset after the 12th, for the
    caller to fill (no copy to append them)."""
    spec = specs[0]
    if len({batch_key(s) for s in specs}) > 1 or len(specs) != dense.rows:
        raise ValueError("one spec per row, all with the same batch_key")
    # Column-major: each figure is one contiguous (metrics, dates) block, so writing it is a
    # plain copy (into (metrics, dates, 20) rows it was a strided one, a third of the time)
    # and a metric's column is a contiguous run of dates. Callers see (metrics, dates, width).
    out = np.empty((width, dense.rows, len(calendar.as_of))).transpose(1, 2, 0)
    aggregation = spec.aggregation
    by_baseline = spec.reference == "baseline"
    if by_baseline and baselines is None:
        baselines = baselines_of(specs, calendar, dense)
    targets = None if by_baseline else np.stack([_targets(s, calendar) for s in specs])
    week_reference = None
    with np.errstate(all="ignore"):
        for position, kind in enumerate(KINDS, start=1):
            windows = calendar.windows[kind]
            current = _aggregate(calendar, dense, aggregation, [windows.part])
            if by_baseline:
                assert baselines is not None
                reference = baselines[kind][:, windows.of_as_of]
                if kind == "week":
                    week_reference = reference
                reference = _scaled(spec, reference, windows.length[windows.of_as_of])
            else:
                assert targets is not None
                reference = targets
            at = _Agg(
                current.value[:, windows.of_as_of],
                current.numerator[:, windows.of_as_of],
                current.denominator[:, windows.of_as_of],
            )
            _put(out, position * 3, _window_score(spec, at, reference))
        if by_baseline:
            assert week_reference is not None
            day_reference = week_reference  # the day uses the week's baseline, as Boston does
        else:
            assert targets is not None
            day_reference = targets
        _put(out, 0, _window_score(spec, _day(calendar, dense, aggregation), day_reference))
    figures = out.transpose(2, 0, 1)[:12]  # contiguous
    figures[~np.isfinite(figures)] = NAN
    return out


def _put(out: FloatArray, first: int, columns: Sequence[Any]) -> None:
    """Write (metrics, dates) ``columns`` into ``out[:, :, first:]``, one column at a time."""
    for j, column in enumerate(columns):
        out[:, :, first + j] = column


Baselines = dict[str, FloatArray]  # per kind of KINDS: (rows, distinct windows), NaN = none


def baselines_of(specs: Sequence[MetricSpec], calendar: Calendar, dense: Dense) -> Baselines:
    """Each row's baseline of every distinct week, month and quarter window: the same window
    1..baseline_years back, pooled (unscaled: a sum's is a daily mean). The specs share a
    ``batch_key`` with reference ``baseline``."""
    spec = specs[0]
    if spec.baseline_years > calendar.baseline_years:
        raise ValueError("the calendar has fewer baseline years than the metric")
    aggregation = "mean" if spec.aggregation == "sum" else spec.aggregation
    out = {}
    for kind in KINDS:
        windows = calendar.windows[kind]
        parts = windows.shifted_parts[: spec.baseline_years]
        if not parts:
            out[kind] = np.full((dense.rows, len(windows.start)), NAN)
        else:
            out[kind] = _aggregate(calendar, dense, aggregation, parts).value
    return out


def reference_columns(calendar: Calendar, baselines: Baselines | None, rows: int) -> FloatArray:
    """(rows, as-of dates, 4): the baseline each as-of date's day, week, month and quarter
    figures were scored against (the day's is its week's), NaN without one."""
    if baselines is None:
        return np.full((rows, len(calendar.as_of), 4), NAN)
    return np.stack(_reference_list(calendar, baselines), axis=-1)


def _reference_list(calendar: Calendar, baselines: Baselines) -> list[FloatArray]:
    week = calendar.windows["week"]
    columns = [baselines["week"][:, week.of_as_of]]
    for kind in KINDS:
        columns.append(baselines[kind][:, calendar.windows[kind].of_as_of])
    return columns


def _scaled(spec: MetricSpec, reference: FloatArray, days: FloatArray) -> FloatArray:
    """A sum's baseline is a daily mean: expect that much on every day of the window."""
    return reference * days if spec.aggregation == "sum" else reference


def has_current_data(calendar: Calendar, dense: Dense) -> Any:
    """Per as-of date: any point from the quarter's first day to the day before."""
    quarter = calendar.windows["quarter"]
    starts = quarter.start[quarter.of_as_of]
    return dense.shaped(calendar.count(dense.prefix_points, starts, calendar.as_of - 1) > 0)


def window_held(calendar: Calendar, dense: Dense) -> Any:
    """(rows, as-of dates, 4) booleans: whether each of the day, week, month and quarter
    windows holds a point."""
    return np.stack(_held_counts(calendar, dense), axis=-1) > 0


def _held_counts(calendar: Calendar, dense: Dense) -> list[IntArray]:
    prefix = dense.prefix_points
    day = calendar.count(prefix, calendar.as_of - 1, calendar.as_of - 1)
    held = [day]
    for kind in KINDS:
        windows = calendar.windows[kind]
        held.append(
            calendar.count(prefix, windows.start[windows.of_as_of], windows.end[windows.of_as_of])
        )
    return held


def has_window_data(calendar: Calendar, dense: Dense) -> Any:
    """Per as-of date: whether any of its four windows holds a point."""
    return dense.shaped(window_held(calendar, dense).any(axis=-1))


def day_prefix(calendar: Calendar, ordinals: Sequence[int]) -> IntArray:
    """A prefix count over the calendar's dense days of these days (outside ones ignored)."""
    flags = np.zeros(calendar.size, dtype=bool)
    o = np.asarray(list(ordinals), dtype=np.int64) - calendar.lo
    flags[o[(o >= 0) & (o < calendar.size)]] = True
    out: IntArray = _prefix(flags)[0]
    return out


BATCH = 64  # metrics per score_many call over ten years: a few MB of dense arrays per batch
BATCH_CELLS = BATCH * 2 * 3653  # dense days + as-of dates a batch may hold, whatever the span
MAX_BATCH = 1024


def batch_size(calendar: Calendar) -> int:
    """Metrics per ``score_many`` call: as many as ``BATCH_CELLS`` dense days and as-of dates
    hold, so a rescore of a few weeks of as-of dates scores a thousand metrics in a call or
    two instead of sixteen (NumPy's per-call cost is paid per batch)."""
    cells = calendar.size + len(calendar.as_of)
    return max(1, min(MAX_BATCH, BATCH_CELLS // max(cells, 1)))


def metric_rows(
    batches: Iterable[tuple[list[int], FloatArray]],
) -> Iterator[tuple[int, FloatArray]]:
    """(metric id, (as-of dates, width) scores), one metric at a time, from the batches of
    ``score_batches``."""
    for ids, scores in batches:
        yield from zip(ids, scores, strict=True)


def score_batches(
    specs: Mapping[int, MetricSpec],
    calendar: Calendar,
    points: Iterable[tuple[int, Sequence[Any]]],
    batch: int | None = None,
    *,
    held: bool = False,
    references: bool = False,
    stored: Mapping[int, Mapping[str, FloatArray]] | None = None,
) -> Iterator[tuple[list[int], FloatArray]]:
    """(metric ids, (metrics, as-of dates, 12) scores) for a stream of (metric id, columns),
    scored in batches of metrics that share a ``batch_key``: NumPy's per-call cost is paid
    once per batch, not once per metric. Metrics come out grouped by batch, not in input
    order. ``held``: four more columns, 1.0 where the day, week, month or quarter window
    holds a point (``window_held``). ``references``: four more, the baseline each window was
    scored against (``reference_columns``). ``stored``: per metric id, its baselines of the
    calendar's windows (kind -> (windows,)) as stored earlier, used instead of its values."""
    pending: dict[tuple[Any, ...], list[tuple[int, Sequence[Any]]]] = {}
    known = stored or {}
    width = 12 + 4 * held + 4 * references
    batch = batch or batch_size(calendar)

    def run(items: list[tuple[int, Sequence[Any]]]) -> tuple[list[int], FloatArray]:
        dense = Dense.of_many(calendar, [columns for _, columns in items])
        batch_specs = [specs[m] for m, _ in items]
        baselines = None
        if batch_specs[0].reference == "baseline":
            if items[0][0] in known:
                baselines = {k: np.stack([known[m][k] for m, _ in items]) for k in KINDS}
            else:
                baselines = baselines_of(batch_specs, calendar, dense)
        scores = score_many(batch_specs, calendar, dense, baselines, width)
        if held:
            _put(scores, 12, [count > 0 for count in _held_counts(calendar, dense)])
        if references:
            if baselines is None:
                scores[:, :, width - 4 :] = NAN
            else:
                _put(scores, width - 4, _reference_list(calendar, baselines))
        return [m for m, _ in items], scores

    for metric_id, columns in points:
        items = pending.setdefault((*batch_key(specs[metric_id]), metric_id in known), [])
        items.append((metric_id, columns))
        if len(items) >= batch:
            yield run(items)
            items.clear()
    for items in pending.values():
        if items:
            yield run(items)
