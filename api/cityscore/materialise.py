"""Writing materialised scores: ``metric_score_runs`` (per metric and window kind, runs of
as-of dates with the same figures inside one window period) and CityScore.

A metric's runs cover every as-of date from the day after its first live value to ``AHEAD``
days after its last, all four kinds on each date. A write recomputes, per window kind, the
periods whose figures can see the changed days, in the same transaction, with the fast
engine (``api.scoring.engine``): one calendar of distinct windows per group of metrics that
share a reach, dense NumPy arrays per metric, one DELETE per kind and chunk of date ranges
and one bulk insert of whole columns (binary COPY on PostgreSQL). CityScore is the fsum mean
of the in_cityscore metrics' scores, as ``scores.mean_score`` computes it, so a partial
refresh equals a full one bit for bit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select
from sqlmodel import Session

from api.cityscore.points import Columns, metric_columns
from api.observability.metrics import timed
from api.scoring.engine import (
    UNIX_ORDINAL,
    Calendar,
    FloatArray,
    IntArray,
    metric_rows,
    score_batches,
)
from api.scoring.scores import MetricSpec
from api.scoring.windows import (
    REACH_DAYS,
    WINDOW_NAMES,
    as_of_dates_affected_by_window,
    date_range,
    month_start,
)
from db.bulk import insert_columns
from db.dialect import any_of, day_ordinal, fetch_all, mark, raw_param
from db.models import (
    RUN_LOOKBACK,
    CityScoreDaily,
    Metric,
    MetricScoreRun,
    MetricTarget,
    MetricValue,
)

M = Metric.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
R = MetricScoreRun.__table__  # type: ignore[attr-defined]
C = CityScoreDaily.__table__  # type: ignore[attr-defined]

RUN_FIGURES = ("score", "numerator", "denominator")
SCORE_COLUMNS = tuple(f"{w}_{part}" for w in WINDOW_NAMES for part in RUN_FIGURES)
HELD = 12  # score_batches(held=True): columns 12..15 say whether each window holds a point
REFERENCE = 16  # and (references=True) 16..19 the baseline each window was scored against
# After a metric's last value, scores are materialised as far as windows reach (later as-of
# dates, which no window of theirs sees any value, are computed on read).
AHEAD = REACH_DAYS
FLUSH_ROWS = 200_000  # as-of rows (20 figures each) per bulk insert of runs, full rescore


def load_specs(session: Session, metric_ids: Iterable[int] | None = None) -> dict[int, MetricSpec]:
    stmt = select(M.c.id, M.c.direction, M.c.aggregation, M.c.reference, M.c.baseline_years)
    tstmt = select(TG.c.metric_id, TG.c.effective_from, TG.c.value).order_by(
        TG.c.metric_id, TG.c.effective_from
    )
    if metric_ids is not None:
        ids = list(metric_ids)
        stmt = stmt.where(any_of(session, M.c.id, ids))
        tstmt = tstmt.where(any_of(session, TG.c.metric_id, ids))
    targets: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    for metric_id, day, value in session.execute(tstmt):
        targets[metric_id].append((day, value))
    return {
        r.id: MetricSpec(
            r.direction, r.aggregation, r.reference, tuple(targets[r.id]), r.baseline_years
        )
        for r in session.execute(stmt)
    }


def _ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Contiguous [start, end] runs covering ``days``."""
    out: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if out and (day - out[-1][1]).days == 1:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _in_ranges(column: Any, ranges: Sequence[tuple[dt.date, dt.date]]) -> Any:
    return or_(*(column.between(a, b) for a, b in ranges))


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def period_keys(kind: int, ordinals: IntArray) -> IntArray:
    """Per as-of ordinal, which window period of this kind it belongs to (a run never spans
    two): the date itself (day), its Monday (week), or its month (month, quarter)."""
    if kind == 0:
        return ordinals
    if kind == 1:
        return ordinals - (ordinals - 1) % 7  # ordinal 1 (0001-01-01) is a Monday
    return (
        (ordinals - UNIX_ORDINAL).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    )


def run_bounds(
    kind: int, ordinals: IntArray, figures: FloatArray, groups: IntArray | None = None
) -> tuple[IntArray, IntArray]:
    """Indexes of the first and last row of each run of equal figures, for as-of
    ``ordinals`` sorted within each group (``groups``: e.g. metric ids, in blocks) and their
    (n, k) ``figures``. A run breaks at a gap, a new period, a new group or a change (NaN
    equals NaN)."""
    n = len(ordinals)
    keys = period_keys(kind, ordinals)
    a, b = figures[1:], figures[:-1]
    same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
    same &= (ordinals[1:] - ordinals[:-1] == 1) & (keys[1:] == keys[:-1])
    if groups is not None:
        same &= groups[1:] == groups[:-1]
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    ends = np.concatenate((starts[1:] - 1, [n - 1]))
    return starts, ends


def encode_runs(kind: int, ordinals: IntArray, figures: FloatArray) -> tuple[Any, Any, Any]:
    """Runs of equal figures: (valid_from, valid_to, figures) for sorted as-of ``ordinals``
    and their (n, k) ``figures`` (``run_bounds``)."""
    if not len(ordinals):
        return ordinals, ordinals, figures
    starts, ends = run_bounds(kind, ordinals, figures)
    return ordinals[starts], ordinals[ends], figures[starts]


def expand_to_periods(kind: int, ordinals: Iterable[int]) -> set[int]:
    """Every as-of ordinal of each period (of this kind) that holds one of ``ordinals``."""
    days = set(ordinals)
    if kind == 0:
        return days
    out: set[int] = set()
    if kind == 1:
        for monday in {o - (o - 1) % 7 for o in days}:
            out.update(range(monday, monday + 7))
        return out
    for first in {dt.date.fromordinal(o).replace(day=1) for o in days}:
        nxt = month_start(first, -1)
        out.update(range(first.toordinal(), nxt.toordinal()))
    return out


# Per kind, the score columns a run keeps: score, numerator, denominator, held, reference.
RUN_COLUMNS = [np.array([k * 3, k * 3 + 1, k * 3 + 2, HELD + k, REFERENCE + k]) for k in range(4)]


class _RunRows:
    """Metrics' figures per as-of date, encoded into runs and written in large bulk inserts.

    A metric's whole span (a full rescore) is encoded at once, while its block is in cache;
    masked parts (a partial rescore: a few dates each of a thousand metrics) are held and
    encoded per kind for all metrics in one NumPy pass at the flush."""

    def __init__(self, session: Session, flush_rows: int | None = None) -> None:
        self.session = session
        self.flush_rows = FLUSH_ROWS if flush_rows is None else flush_rows
        self.blocks: list[tuple[Any, ...]] = []  # encoded: ids, kinds, first, last, figures
        self.parts: list[tuple[Any, Any, Any, Any]] = []  # to encode: ids, dates, scores, masks
        self.rows = 0  # as-of rows held

    def add(self, metric_id: int, as_of: IntArray, scores: FloatArray) -> None:
        """A metric's (n, 20) scores, window flags and references (``score_batches(held=True,
        references=True)``) on sorted as-of ordinals, all four kinds on each."""
        if not len(as_of):
            return
        for kind, picked in enumerate(RUN_COLUMNS):
            figures = scores[:, picked]
            starts, ends = run_bounds(kind, as_of, figures)
            ids, kinds = np.full(len(starts), metric_id), np.full(len(starts), kind)
            self.blocks.append((ids, kinds, as_of[starts], as_of[ends], figures[starts]))
        self.rows += len(as_of)
        if self.rows >= self.flush_rows:
            self.flush()

    def add_masked(
        self, metric_ids: Sequence[int], as_of: IntArray, scores: FloatArray, masks: Any
    ) -> None:
        """A batch of metrics' (metrics, n, 20) scores on the same sorted as-of ordinals, per
        kind where ``masks[:, :, kind]`` (a (metrics, n, 4) bool array), held as they are:
        only the masked rows are picked out, at the flush."""
        self.parts.append((np.asarray(metric_ids, dtype=np.int64), as_of, scores, masks))
        self.rows += int(masks.any(axis=2).sum())
        if self.rows >= self.flush_rows:
            self.flush()

    def _encode_parts(self) -> None:
        """Per kind, the masked rows of every held batch, encoded in one NumPy pass (each
        metric is in one batch, its rows in date order)."""
        for kind, picked in enumerate(RUN_COLUMNS):
            ids, dates, figures = [], [], []
            for metric_ids, as_of, scores, masks in self.parts:
                rows, at = np.nonzero(masks[:, :, kind])
                ids.append(metric_ids[rows])
                dates.append(as_of[at])
                figures.append(scores[rows[:, None], at[:, None], picked])
            kind_ids = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
            if not len(kind_ids):
                continue
            kind_dates, kind_figures = np.concatenate(dates), np.concatenate(figures)
            starts, ends = run_bounds(kind, kind_dates, kind_figures, kind_ids)
            first, last = kind_dates[starts], kind_dates[ends]
            kinds = np.full(len(starts), kind, dtype=np.int64)
            self.blocks.append((kind_ids[starts], kinds, first, last, kind_figures[starts]))
        self.parts = []

    def _columns(self) -> list[tuple[str, Any]]:
        self._encode_parts()
        if not self.blocks:
            return []
        ids, kinds, first, last, figures = (
            np.concatenate(c) for c in zip(*self.blocks, strict=True)
        )
        columns = [("metric_id", ids), ("kind", kinds), ("valid_from", first), ("valid_to", last)]
        columns += [(name, figures[:, i]) for i, name in enumerate(RUN_FIGURES)]
        columns += [("points", figures[:, 3] > 0)]
        if not np.isnan(figures[:, 4]).all():  # target metrics have none: the column's NULL
            columns += [("reference", figures[:, 4])]  # default, one parameter less a row
        return columns

    def flush(self) -> None:
        if self.rows:
            insert_columns(self.session.connection(), R, self._columns())
        self.blocks, self.parts, self.rows = [], [], 0


def _delete_runs(
    session: Session,
    metric_ids: Sequence[int],
    kind: int | None = None,
    ranges: Sequence[tuple[dt.date, dt.date]] = (),
    returning: bool = False,
) -> list[Any]:
    """Delete these metrics' runs (of one kind) starting in the ranges (all when none);
    ``returning``: the deleted runs' (metric id, kind, valid_from, reference)."""
    out: list[Any] = []
    for id_chunk in _chunks(sorted(metric_ids), 1000):
        where = any_of(session, R.c.metric_id, id_chunk)
        if kind is None:
            session.execute(delete(R).where(where))
            continue
        for chunk in _chunks(ranges, 200):
            stmt = delete(R).where(and_(where, R.c.kind == kind, _in_ranges(R.c.valid_from, chunk)))
            if returning:
                back = stmt.returning(R.c.metric_id, R.c.kind, R.c.valid_from, R.c.reference)
                out.extend(session.execute(back).all())
            else:
                session.execute(stmt)
    return out


@timed("metrics")
def rescore_metrics(
    session: Session, metric_ids: Iterable[int], known: Mapping[int, Columns] | None = None
) -> None:
    """Recompute every score of these metrics (after a definition change or a bulk load).

    As-of dates from the day after a metric's first value to ``AHEAD`` days after its last,
    all four windows on every one of them. ``known``: the metrics' live points when the
    caller holds them (a bulk load), so they are not read back. When the metrics include
    every in_cityscore metric, CityScore is computed from the new scores in memory instead of
    being read back.
    """
    specs = load_specs(session, metric_ids)
    ids = sorted(specs)
    if not ids:
        return
    old = _stored_spans(session, ids)
    _delete_runs(session, ids)
    if known is None:
        spans = _spans(session, ids)
        points = metric_columns(session, ids, [(dt.date.min, dt.date.max)], 25)
    else:
        spans = {
            m: (int(c[0][0]) + 1, int(c[0][-1]) + AHEAD) for m, c in known.items() if len(c[0])
        }
        points = ((m, known[m]) for m in ids if m in spans)
    touched = [(dt.date.fromordinal(a), dt.date.fromordinal(b)) for a, b in old.values()]
    if not spans:
        refresh_cityscore(session, _expand(touched))
        return
    first = min(a for a, _ in spans.values())
    last = max(b for _, b in spans.values())
    years = max(s.baseline_years if s.reference == "baseline" else 0 for s in specs.values())
    calendar = Calendar(date_range(dt.date.fromordinal(first), dt.date.fromordinal(last)), years)
    city = _InMemoryCity(session, ids, calendar)
    writer = _RunRows(session)
    for metric_id, scores in metric_rows(
        score_batches(specs, calendar, points, held=True, references=True)
    ):
        a, b = spans[metric_id]
        inside = (calendar.as_of >= a) & (calendar.as_of <= b)
        writer.add(metric_id, calendar.as_of[inside], scores[inside])
        city.add(metric_id, scores)
    writer.flush()
    touched.append((dt.date.fromordinal(first), dt.date.fromordinal(last)))
    if city.complete:
        session.execute(delete(C).where(_in_ranges(C.c.as_of, _ranges(_expand(touched)))))
        city.write()
    else:
        refresh_cityscore(session, _expand(touched))


def _stored_spans(session: Session, metric_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Each metric's materialised as-of ordinals (first, last): its day runs are one date
    each, so two index probes per metric."""
    out = {}
    day_runs = and_(R.c.metric_id == M.c.id, R.c.kind == 0)
    for id_chunk in _chunks(sorted(metric_ids), 1000):
        lo = select(func.min(R.c.valid_from)).where(day_runs).scalar_subquery()
        hi = select(func.max(R.c.valid_from)).where(day_runs).scalar_subquery()
        rows = session.execute(select(M.c.id, lo, hi).where(any_of(session, M.c.id, id_chunk)))
        out.update({m: (a.toordinal(), b.toordinal()) for m, a, b in rows if a is not None})
    return out


def _spans(session: Session, metric_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Each metric's as-of ordinals to materialise: first value + 1 .. last value + AHEAD."""
    out = {}
    for id_chunk in _chunks(metric_ids, 1000):
        rows = session.execute(
            select(V.c.metric_id, func.min(V.c.date), func.max(V.c.date))
            .where(and_(any_of(session, V.c.metric_id, id_chunk), ~V.c.deleted))
            .group_by(V.c.metric_id)
        )
        out.update({m: (a.toordinal() + 1, b.toordinal() + AHEAD) for m, a, b in rows})
    return out


def _expand(ranges: Iterable[tuple[dt.date, dt.date]]) -> set[dt.date]:
    return {d for a, b in ranges for d in date_range(a, b)}


class _InMemoryCity:
    """CityScore from scores still in memory, when they cover every in_cityscore metric."""

    def __init__(self, session: Session, metric_ids: Sequence[int], calendar: Calendar) -> None:
        wanted = set(session.execute(select(M.c.id).where(M.c.in_cityscore)).scalars().all()) - {
            None
        }
        self.session = session
        self.calendar = calendar
        self.members = wanted
        self.complete = wanted <= set(metric_ids)
        n = len(calendar.as_of) if self.complete else 0
        self.windows = [np.full((n, len(wanted)), np.nan) for _ in WINDOW_NAMES]
        self.column = {m: i for i, m in enumerate(sorted(wanted))}

    def add(self, metric_id: int, scores: Any) -> None:
        if not self.complete or metric_id not in self.column:
            return
        j = self.column[metric_id]
        for w, matrix in enumerate(self.windows):
            matrix[:, j] = scores[:, w * 3]

    def write(self) -> None:
        means = [_fsum_means(matrix) for matrix in self.windows]
        keep = ~np.all(np.isnan(np.column_stack(means)), axis=1) if means[0].size else []
        as_of = self.calendar.as_of[keep]
        columns = [("as_of", as_of)]
        columns += [(w, m[keep]) for w, m in zip(WINDOW_NAMES, means, strict=True)]
        insert_columns(self.session.connection(), C, columns)


def _fsum_means(matrix: Any) -> Any:
    """Per row: ``mean_score`` of the non-NaN entries (fsum / count), NaN when none."""
    out = np.full(matrix.shape[0], np.nan)
    present = ~np.isnan(matrix)
    counts = present.sum(axis=1)
    for i in np.flatnonzero(counts).tolist():
        out[i] = math.fsum(matrix[i][present[i]].tolist()) / int(counts[i])
    return out


@timed("days")
def rescore_days(
    session: Session,
    changed: Mapping[int, Iterable[dt.date]],
    reshaped: Iterable[int] | None = None,
) -> None:
    """Recompute the score runs that can see values changed on these (metric, day) pairs.

    Per window kind, only the periods whose figures can change: a changed day rewrites one
    day run, one week's, one month's and three months' runs (and the same for each baseline
    year), not every as-of date that can see it. Metrics that share a reach (target metrics;
    baseline metrics with the same baseline_years) are recomputed together on the union of
    their periods, with one calendar of windows, one DELETE per kind and chunk of ranges, one
    streamed read of their values and one bulk insert. A metric whose materialised span
    (first value + 1 .. last value + ``AHEAD``) moved has the moved dates rewritten too.
    CityScore is refreshed per kind on the dates whose runs were rewritten.

    ``reshaped``: the metrics a write gave or took a live date (None: any may have); the
    others' materialised span is their live one (``_old_and_new_spans``).
    """
    days_of = {m: set(days) for m, days in changed.items()}
    old_spans, new_spans = _old_and_new_spans(session, days_of.keys(), reshaped)
    specs = load_specs(session, days_of.keys())
    groups: dict[int, list[int]] = defaultdict(list)
    for metric_id in changed:
        spec = specs[metric_id]
        groups[spec.baseline_years if spec.reference == "baseline" else 0].append(metric_id)
    writer = _RunRows(session, flush_rows=1 << 62)  # one bulk insert at the end
    rewritten: list[set[int]] = [set() for _ in WINDOW_NAMES]
    members = _city_members(session)
    in_city = set(members)
    fresh: list[_FreshCity] = []
    for years, ids in groups.items():
        days = set().union(*(days_of[m] for m in ids))
        old = {m: old_spans[m] for m in ids if m in old_spans}
        new = {m: new_spans[m] for m in ids if m in new_spans}
        moved = _moved_days(ids, old, new)
        by_kind = [
            expand_to_periods(k, {d.toordinal() for d in dates} | moved)
            for k, dates in enumerate(as_of_dates_affected_by_window(days, years))
        ]
        spans = [*old.values(), *new.values()]  # CityScore can change only where runs were
        first, last = min((a for a, _ in spans), default=0), max((b for _, b in spans), default=0)
        fresh.append(city := _FreshCity(by_kind, [m for m in ids if m in in_city]))
        deleted: list[Any] = []
        for kind, ordinals in enumerate(by_kind):
            inside = [o for o in ordinals if first <= o <= last]  # no run is outside
            rewritten[kind].update(inside)
            if inside:
                deleted += _delete_runs(session, ids, kind, _ordinal_ranges(inside), years > 0)
        if not new:
            continue
        lo, hi = min(a for a, _ in new.values()), max(b for _, b in new.values())
        dates = sorted(o for o in set().union(*by_kind) if lo <= o <= hi)
        if not dates:
            continue
        out = (writer, city)
        _score_group(session, specs, ids, years, dates, by_kind, new, deleted, days_of, out)
    writer.flush()
    rewritten_arrays = [np.array(sorted(k), dtype=np.int64) for k in rewritten]
    _refresh_city_kinds(session, rewritten_arrays, members, fresh)


def _old_and_new_spans(
    session: Session, metric_ids: Iterable[int], reshaped: Iterable[int] | None
) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """The metrics' materialised spans and their live ones (``rescore_days``): the stored
    runs are probed only for the ``reshaped`` metrics (all when None); for the others the
    materialised span is the live one."""
    ids = set(metric_ids)
    new = _live_spans(session, sorted(ids))
    probed = ids if reshaped is None else ids & set(reshaped)
    old = {m: span for m, span in new.items() if m not in probed}
    old.update(_stored_spans(session, sorted(probed)))
    return old, new


def _score_group(
    session: Session,
    specs: Mapping[int, MetricSpec],
    ids: Sequence[int],
    years: int,
    dates: Sequence[int],
    by_kind: Sequence[set[int]],
    spans: Mapping[int, tuple[int, int]],
    deleted: Sequence[Any],
    days_of: Mapping[int, set[dt.date]],
    out: tuple[_RunRows, _FreshCity],
) -> None:
    """Score one rescore group's metrics on the sorted as-of ``dates``; the runs of each
    kind's dates (``by_kind``, inside each metric's ``spans``) go to the writer and the
    in_cityscore scores to the fresh CityScore of ``out``. Metrics whose baselines the
    ``deleted`` runs give are scored without reading the baseline years."""
    writer, city = out
    as_of = [dt.date.fromordinal(o) for o in dates]
    calendar = Calendar(as_of, years)
    masks = [np.isin(calendar.as_of, sorted(k)) for k in by_kind]
    kind_masks = np.column_stack(masks)
    city.start(calendar.as_of)
    live = [m for m in ids if m in spans and spans[m][0] <= dates[-1] and spans[m][1] >= dates[0]]
    stored = _reusable_baselines(calendar, masks, deleted, spans, days_of)
    # Metrics with stored baselines need no baseline years: a calendar without them has
    # the same distinct windows (they follow from the as-of dates alone) over a short
    # span of days, so their dense arrays cover months, not years.
    passes = [(calendar, [m for m in live if m not in stored])]
    if stored:
        passes.append((Calendar(as_of, 0), [m for m in live if m in stored]))
    for cal, group in passes:
        scored: set[int] = set()
        columns = metric_columns(session, group, cal.spans())
        points = chain(_noted(columns, scored), _no_points(spans, group, scored))
        scoring = score_batches(specs, cal, points, held=True, references=True, stored=stored)
        for batch, scores in scoring:
            bounds = np.array([spans[m] for m in batch], dtype=np.int64)
            inside = (cal.as_of >= bounds[:, :1]) & (cal.as_of <= bounds[:, 1:])
            picked = kind_masks & inside[:, :, None]  # (metrics, dates, kinds)
            writer.add_masked(batch, cal.as_of, scores, picked)
            city.add(batch, scores, picked)


WINDOW_SCORES = [k * 3 for k in range(4)]  # the score column of each window kind


class _FreshCity:
    """One rescore group's new scores of its in_cityscore metrics, kept for the CityScore
    refresh: on the dates of a kind where the group rewrote every run (``kinds``), the
    refresh takes these instead of reading back what was just written. NaN where a metric
    has no run (outside its span, or a date the calendar did not score)."""

    def __init__(self, kinds: Sequence[set[int]], members: Sequence[int]) -> None:
        self.kinds = [np.array(sorted(k), dtype=np.int64) for k in kinds]
        self.members = list(members)
        self.column = {m: j for j, m in enumerate(self.members)}
        self.start(np.empty(0, dtype=np.int64))

    def start(self, as_of: IntArray) -> None:
        self.as_of = as_of
        # (members, dates, kinds): a metric's scores are one contiguous block
        self.scores = np.full((len(self.members), len(as_of), len(WINDOW_NAMES)), np.nan)

    def add(self, metric_ids: Sequence[int], scores: FloatArray, masks: Any) -> None:
        """A batch's (metrics, dates, 20) scores where its (metrics, dates, kinds) ``masks``."""
        pairs = [(i, j) for i, m in enumerate(metric_ids) if (j := self.column.get(m)) is not None]
        if not pairs:
            return
        rows, members = (np.array(c, dtype=np.int64) for c in zip(*pairs, strict=True))
        fresh = scores[:, :, WINDOW_SCORES][rows]
        self.scores[members] = np.where(masks[rows], fresh, self.scores[members])

    def covers(self, kind: int, dates: IntArray) -> bool:
        """Whether this group rewrote every run of ``kind`` on these dates."""
        return bool(np.isin(dates, self.kinds[kind]).all())

    def matrix(self, kind: int, dates: IntArray) -> FloatArray:
        """(dates, members) scores of ``kind`` on these dates."""
        out = np.full((len(dates), len(self.members)), np.nan)
        if len(self.as_of):
            rows = np.minimum(np.searchsorted(self.as_of, dates), len(self.as_of) - 1)
            here = self.as_of[rows] == dates
            out[here] = self.scores[:, rows[here], kind].T
        return out


def _city_members(session: Session) -> list[int]:
    """The in_cityscore metrics' ids, sorted."""
    return sorted(session.execute(select(M.c.id).where(M.c.in_cityscore)).scalars().all())


BASELINE_OF_KIND = ("week", "week", "month", "quarter")  # the day is scored on its week's


def _reusable_baselines(
    calendar: Calendar,
    masks: Sequence[Any],
    deleted: Sequence[Any],
    spans: Mapping[int, tuple[int, int]],
    changed: Mapping[int, set[dt.date]],
) -> dict[int, dict[str, FloatArray]]:
    """Per metric whose baselines this rescore can take from its deleted runs: the baseline
    of each of the calendar's windows (kind -> (windows,), NaN where none or not needed).

    A metric qualifies when none of its changed days is inside any baseline window of the
    calendar (all are later than the last day one reads: a department's new numbers), and a
    deleted run gave the reference of every window that one of the dates it gets runs for
    (``masks[kind]``, inside its span) is scored on. Otherwise its values are read again.
    """
    end = calendar.baseline_end()
    if end is None or not deleted:
        return {}
    table: dict[int, list[Any]] = defaultdict(list)
    for metric_id, kind, valid_from, reference in deleted:
        table[metric_id].append(
            (kind, valid_from.toordinal(), np.nan if reference is None else reference)
        )
    out = {}
    n = len(calendar.as_of)
    for metric_id, runs in table.items():
        if metric_id not in spans or min(changed[metric_id]).toordinal() <= end:
            continue
        a, b = spans[metric_id]
        inside = (calendar.as_of >= a) & (calendar.as_of <= b)
        kinds, ordinals, references = (np.array(c) for c in zip(*runs, strict=True))
        at = np.minimum(np.searchsorted(calendar.as_of, ordinals), n - 1)
        found = (calendar.as_of[at] == ordinals) & inside[at]
        values = {k: np.full(len(w.start), np.nan) for k, w in calendar.windows.items()}
        given = {k: np.zeros(len(w.start), dtype=bool) for k, w in calendar.windows.items()}
        for kind, name in enumerate(BASELINE_OF_KIND):
            pick = found & (kinds == kind)
            window = calendar.windows[name].of_as_of[at[pick]]
            values[name][window] = references[pick]
            given[name][window] = True
        if all(
            given[name][calendar.windows[name].of_as_of[masks[kind] & inside]].all()
            for kind, name in enumerate(BASELINE_OF_KIND)
        ):
            out[metric_id] = values
    return out


def _noted(points: Iterable[tuple[int, Columns]], seen: set[int]) -> Iterator[tuple[int, Columns]]:
    for metric_id, columns in points:
        seen.add(metric_id)
        yield metric_id, columns


def _no_points(
    spans: Mapping[int, Any], ids: Sequence[int], scored: set[int]
) -> Iterator[tuple[int, Columns]]:
    """Empty columns for the metrics the value read left out (no point in reach): their
    materialised dates still get runs (null scores with the reference they publish)."""
    empty = np.empty(0, dtype=np.int64)
    nothing = np.empty(0)
    for metric_id in ids:
        if metric_id in spans and metric_id not in scored:
            yield metric_id, (empty, nothing, nothing, nothing)


def _moved_days(
    ids: Iterable[int], old: Mapping[int, tuple[int, int]], new: Mapping[int, tuple[int, int]]
) -> set[int]:
    """The as-of ordinals in one of a metric's old and new spans but not both, for the
    metrics whose span moved (a span is years of days: the others are not expanded)."""
    moved = (m for m in ids if old.get(m) != new.get(m))
    return set().union(*(_span_days(old.get(m)) ^ _span_days(new.get(m)) for m in moved))


def _span_days(span: tuple[int, int] | None) -> set[int]:
    return set() if span is None else set(range(span[0], span[1] + 1))


def _ordinal_ranges(ordinals: Iterable[int]) -> list[tuple[dt.date, dt.date]]:
    return _ranges(dt.date.fromordinal(o) for o in ordinals)


def _live_spans(session: Session, metric_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Each metric's as-of ordinals to materialise (first live value + 1 .. last + AHEAD):
    two index probes per metric, not a scan of its values."""
    out = {}
    live = and_(V.c.metric_id == M.c.id, ~V.c.deleted)
    for id_chunk in _chunks(sorted(metric_ids), 1000):
        lo = select(func.min(V.c.date)).where(live).scalar_subquery()
        hi = select(func.max(V.c.date)).where(live).scalar_subquery()
        rows = session.execute(select(M.c.id, lo, hi).where(any_of(session, M.c.id, id_chunk)))
        out.update(
            {m: (a.toordinal() + 1, b.toordinal() + AHEAD) for m, a, b in rows if a is not None}
        )
    return out


def refresh_cityscore(session: Session, as_of: Iterable[dt.date]) -> None:
    """Recompute CityScore (mean of in_cityscore metrics' scores) on these as-of dates."""
    ordinals = np.array(sorted({d.toordinal() for d in as_of}), dtype=np.int64)
    _refresh_city_kinds(session, [ordinals] * len(WINDOW_NAMES))


CITY_BLOCK = 400  # as-of dates per CityScore refresh step (bounded memory)


def _refresh_city_kinds(
    session: Session,
    by_kind: Sequence[IntArray],
    members: Sequence[int] | None = None,
    fresh: Sequence[_FreshCity] = (),
) -> None:
    """Recompute CityScore's window ``k`` on the sorted ordinals ``by_kind[k]``.

    Each step reads the stored CityScore rows of a block of dates, the in_cityscore runs
    (non-null scores) of each kind covering the block's dates of that kind, replaces those
    windows with the fsum means (``scores.mean_score``), and rewrites the block's rows (a row
    is kept where any window is not null). ``members``: the in_cityscore metrics when the
    caller has them; ``fresh``: scores a rescore just wrote, taken instead of its runs where
    one covers a kind's dates (when they cover every member, no run is read at all).
    """
    union = np.unique(np.concatenate(by_kind)) if by_kind else np.empty(0, dtype=np.int64)
    if not len(union):
        return
    connection = session.connection()
    members = _city_members(session) if members is None else list(members)
    column = {m: i for i, m in enumerate(members)}
    for block in _blocks(union):
        ranges = _ordinal_ranges(block.tolist())
        table = np.full((len(block), len(WINDOW_NAMES)), np.nan)
        for ordinal, *windows in _city_rows(connection, int(block[0]), int(block[-1])):
            i = np.searchsorted(block, ordinal)
            if block[i] == ordinal:
                table[i] = windows
        for kind, ordinals in enumerate(by_kind):
            dates = ordinals[(ordinals >= block[0]) & (ordinals <= block[-1])]
            if not len(dates):
                continue
            matrix = np.full((len(dates), len(members)), np.nan)
            taken: set[int] = set()
            for city in fresh:
                if city.members and city.covers(kind, dates):
                    matrix[:, [column[m] for m in city.members]] = city.matrix(kind, dates)
                    taken.update(city.members)
            if len(taken) < len(members):
                runs = _city_runs(connection, kind, int(dates[0]), int(dates[-1]))
                _fill(matrix, dates, [r for r in runs if r[0] not in taken], column)
            table[np.searchsorted(block, dates), kind] = _fsum_means(matrix)
        for chunk in _chunks(ranges, 200):
            session.execute(delete(C).where(_in_ranges(C.c.as_of, chunk)))
        keep = ~np.isnan(table).all(axis=1)
        if keep.any():
            columns = [("as_of", block[keep])]
            columns += [(w, table[keep, i]) for i, w in enumerate(WINDOW_NAMES)]
            insert_columns(connection, C, columns)


def _blocks(ordinals: IntArray) -> Iterator[IntArray]:
    """Sorted ordinals in blocks of at most ``CITY_BLOCK`` with no gap over a month inside
    (each block reads the runs over its whole [first, last]: the dates a baseline change
    rewrites lie years apart)."""
    cuts = np.flatnonzero(np.diff(ordinals) > 31) + 1
    for part in np.split(ordinals, cuts):
        for at in range(0, len(part), CITY_BLOCK):
            yield part[at : at + CITY_BLOCK]


def _fill(matrix: Any, dates: IntArray, runs: list[Any], column: Mapping[int, int]) -> None:
    """Put each run's score on the rows of ``dates`` it covers, in its metric's column."""
    if not runs:
        return
    table = np.array(runs, dtype=float)
    cols = np.array([column[int(m)] for m in table[:, 0]], dtype=np.int64)
    i = np.searchsorted(dates, table[:, 1].astype(np.int64))
    j = np.searchsorted(dates, table[:, 2].astype(np.int64), side="right")
    lengths = np.maximum(j - i, 0)
    rows = np.repeat(i, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    matrix[rows, np.repeat(cols, lengths)] = np.repeat(table[:, 3], lengths)


def _city_rows(connection: Any, lo: int, hi: int) -> list[Any]:
    """Stored CityScore rows (ordinal, 4 windows; NaN for null) with as-of in [lo, hi]."""
    m = mark(connection)
    sql = (
        f"SELECT {day_ordinal(connection, 'as_of')}, day, week, month, quarter "
        f"FROM cityscore_daily WHERE as_of BETWEEN {m} AND {m}"
    )
    params = [raw_param(connection, dt.date.fromordinal(o)) for o in (lo, hi)]
    rows = fetch_all(connection, sql, params)
    return [(o, *(np.nan if w is None else w for w in windows)) for o, *windows in rows]


def _city_runs(connection: Any, kind: int, lo: int, hi: int) -> list[Any]:
    """(metric id, first, last ordinal, score) of the in_cityscore metrics' runs of one kind
    with a score, covering any as-of date in [lo, hi]."""
    m = mark(connection)
    sql = (
        f"SELECT r.metric_id, {day_ordinal(connection, 'r.valid_from')}, "
        f"{day_ordinal(connection, 'r.valid_to')}, r.score "
        "FROM metric_score_runs r JOIN metrics m ON m.id = r.metric_id "
        f"WHERE m.in_cityscore AND r.kind = {m} AND r.valid_from BETWEEN {m} AND {m} "
        f"AND r.valid_to >= {m} AND r.score IS NOT NULL"
    )
    first = dt.date.fromordinal(lo - RUN_LOOKBACK[kind])
    params = [kind, *(raw_param(connection, d) for d in (first, dt.date.fromordinal(hi)))]
    params.append(raw_param(connection, dt.date.fromordinal(lo)))
    return fetch_all(connection, sql, params)


def refresh_cityscore_all(session: Session) -> None:
    bounds = session.execute(
        select(func.min(R.c.valid_from), func.max(R.c.valid_to)).where(R.c.kind == 0)
    ).one()
    session.execute(delete(C))
    if bounds[0] is not None:
        refresh_cityscore(session, date_range(bounds[0], bounds[1]))
