"""Writing materialised scores: ``metric_scores`` (four windows per as-of date) and CityScore.

A write recomputes exactly the as-of dates whose windows or baselines can see the changed
days, in the same transaction, with the fast engine (``api.scoring.engine``): one calendar of
distinct windows per group of metrics that share a reach, dense NumPy arrays per metric,
one DELETE per chunk of date ranges and one bulk insert of whole columns (binary COPY on
PostgreSQL). CityScore is the fsum mean of the in_cityscore metrics' scores, as
``scores.mean_score`` computes it, so a partial refresh equals a full one bit for bit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select
from sqlmodel import Session

from api.cityscore.points import Columns, metric_columns
from api.observability.metrics import timed
from api.scoring.engine import (
    Calendar,
    Dense,
    has_window_data,
    score_columns,
)
from api.scoring.scores import MetricSpec
from api.scoring.windows import REACH_DAYS, WINDOW_NAMES, as_of_dates_affected, date_range
from db.bulk import insert_columns, pg_select_arrays
from db.dialect import day_ordinal, fetch_all, is_postgres, raw_param
from db.models import CityScoreDaily, Metric, MetricScore, MetricTarget, MetricValue

M = Metric.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
S = MetricScore.__table__  # type: ignore[attr-defined]
C = CityScoreDaily.__table__  # type: ignore[attr-defined]

SCORE_COLUMNS = tuple(
    f"{w}_{part}" for w in WINDOW_NAMES for part in ("score", "numerator", "denominator")
)
# After a metric's last value, scores are materialised as far as windows reach (later as-of
# dates, which no window of theirs sees any value, are computed on read).
AHEAD = REACH_DAYS
HORIZON = dt.timedelta(days=AHEAD)
FLUSH_ROWS = 200_000  # score rows per bulk insert during a full rescore


def load_specs(session: Session, metric_ids: Iterable[int] | None = None) -> dict[int, MetricSpec]:
    stmt = select(M.c.id, M.c.direction, M.c.aggregation, M.c.reference, M.c.baseline_years)
    tstmt = select(TG.c.metric_id, TG.c.effective_from, TG.c.value).order_by(
        TG.c.metric_id, TG.c.effective_from
    )
    if metric_ids is not None:
        ids = list(metric_ids)
        stmt = stmt.where(M.c.id.in_(ids))
        tstmt = tstmt.where(TG.c.metric_id.in_(ids))
    targets: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    for metric_id, day, value in session.execute(tstmt):
        targets[metric_id].append((day, value))
    return {
        r.id: MetricSpec(
            r.direction, r.aggregation, r.reference, tuple(targets[r.id]), r.baseline_years
        )
        for r in session.execute(stmt)
    }


def _last_dates(session: Session, metric_ids: Sequence[int]) -> dict[int, dt.date]:
    """Each metric's latest day with a row (live or deleted): one index probe per metric."""
    out: dict[int, dt.date] = {}
    for id_chunk in _chunks(sorted(metric_ids), 1000):
        latest = select(func.max(V.c.date)).where(V.c.metric_id == M.c.id).scalar_subquery()
        rows = session.execute(select(M.c.id, latest).where(M.c.id.in_(id_chunk)))
        out.update({m: day for m, day in rows if day is not None})
    return out


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


class _ScoreRows:
    """Score rows collected as NumPy blocks and written in large bulk inserts."""

    def __init__(self, session: Session, flush_rows: int | None = None) -> None:
        self.session = session
        self.flush_rows = FLUSH_ROWS if flush_rows is None else flush_rows
        self.blocks: list[tuple[int, Any, Any]] = []
        self.rows = 0

    def add(self, metric_id: int, as_of: Any, scores: Any) -> None:
        if len(as_of):
            self.blocks.append((metric_id, as_of, scores))
            self.rows += len(as_of)
            if self.rows >= self.flush_rows:
                self.flush()

    def _columns(self) -> list[tuple[str, Any]]:
        ids = np.concatenate([np.full(len(a), m, dtype=np.int64) for m, a, _ in self.blocks])
        as_of = np.concatenate([a for _, a, _ in self.blocks])
        scores = np.concatenate([s for _, _, s in self.blocks])
        columns = [("metric_id", ids), ("as_of", as_of)]
        columns += [(name, scores[:, i]) for i, name in enumerate(SCORE_COLUMNS)]
        return columns

    def flush(self) -> None:
        if self.blocks:
            insert_columns(self.session.connection(), S, self._columns())
            self.blocks, self.rows = [], 0


class _ScoreRewrite(_ScoreRows):
    """Rewrites the affected as-of ranges: delete what is there, insert the new rows.

    Cheaper than an upsert on PostgreSQL (an update writes a new row version and index
    entries anyway, and checks the conflict per row). Knows which as-of dates can have had
    or now have a row, so CityScore is refreshed only there.
    """

    def __init__(self, session: Session) -> None:
        super().__init__(session, flush_rows=1 << 62)  # one bulk insert at the end
        self.changed: set[dt.date] = set()

    def delete(self, metric_ids: Sequence[int], as_of: Sequence[dt.date]) -> None:
        """Delete these metrics' rows on these as-of dates; CityScore is refreshed on all of
        them (a superset of the dates that had a row: cheaper than returning every row)."""
        if as_of:  # (no ranges would mean every row)
            self.changed.update(as_of)
            _delete_scores(self.session, metric_ids, _ranges(as_of))

    def apply(self) -> set[dt.date]:
        for _, as_of, _ in self.blocks:
            self.changed.update(dt.date.fromordinal(o) for o in np.unique(as_of).tolist())
        self.flush()
        return self.changed


def _delete_scores(
    session: Session, metric_ids: Sequence[int], ranges: Sequence[tuple[dt.date, dt.date]]
) -> None:
    for id_chunk in _chunks(sorted(metric_ids), 1000):
        if not ranges:
            session.execute(delete(S).where(S.c.metric_id.in_(id_chunk)))
        for chunk in _chunks(ranges, 200):
            session.execute(
                delete(S).where(and_(S.c.metric_id.in_(id_chunk), _in_ranges(S.c.as_of, chunk)))
            )


@timed("metrics")
def rescore_metrics(
    session: Session, metric_ids: Iterable[int], known: Mapping[int, Columns] | None = None
) -> None:
    """Recompute every score of these metrics (after a definition change or a bulk load).

    As-of dates from the day after a metric's first value to ``AHEAD`` days after its last.
    ``known``: the metrics' live points when the caller holds them (a bulk load), so they
    are not read back. When the metrics include every in_cityscore metric, CityScore is
    computed from the new scores in memory instead of being read back.
    """
    specs = load_specs(session, metric_ids)
    ids = sorted(specs)
    if not ids:
        return
    old = session.execute(
        select(func.min(S.c.as_of), func.max(S.c.as_of)).where(S.c.metric_id.in_(ids))
    ).one()
    _delete_scores(session, ids, [])
    if known is None:
        spans = _spans(session, ids)
        points = metric_columns(session, ids, [(dt.date.min, dt.date.max)], 25)
    else:
        spans = {
            m: (int(c[0][0]) + 1, int(c[0][-1]) + AHEAD) for m, c in known.items() if len(c[0])
        }
        points = ((m, known[m]) for m in ids if m in spans)
    touched: list[tuple[dt.date, dt.date]] = []
    if old[0] is not None:
        touched.append((old[0], old[1]))
    if not spans:
        refresh_cityscore(session, [d for a, b in touched for d in date_range(a, b)])
        return
    first = min(a for a, _ in spans.values())
    last = max(b for _, b in spans.values())
    years = max(s.baseline_years if s.reference == "baseline" else 0 for s in specs.values())
    calendar = Calendar(date_range(dt.date.fromordinal(first), dt.date.fromordinal(last)), years)
    city = _InMemoryCity(session, ids, calendar)
    writer = _ScoreRows(session)
    for metric_id, cols in points:
        dense = Dense(calendar, *cols)
        scores = score_columns(specs[metric_id], calendar, dense)
        keep = has_window_data(calendar, dense)  # a row is stored where a window has data
        writer.add(metric_id, calendar.as_of[keep], scores[keep])
        city.add(metric_id, scores)
    writer.flush()
    touched.append((dt.date.fromordinal(first), dt.date.fromordinal(last)))
    if city.complete:
        session.execute(delete(C).where(_in_ranges(C.c.as_of, _ranges(_expand(touched)))))
        city.write()
    else:
        refresh_cityscore(session, _expand(touched))


def _spans(session: Session, metric_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Each metric's as-of ordinals to materialise: first value + 1 .. last value + AHEAD."""
    out = {}
    for id_chunk in _chunks(metric_ids, 1000):
        rows = session.execute(
            select(V.c.metric_id, func.min(V.c.date), func.max(V.c.date))
            .where(and_(V.c.metric_id.in_(id_chunk), ~V.c.deleted))
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
def rescore_days(session: Session, changed: Mapping[int, Iterable[dt.date]]) -> None:
    """Recompute the scores that can see values changed on these (metric, day) pairs.

    Set-based: metrics that share a reach (target metrics; baseline metrics with the same
    baseline_years) are recomputed together on the union of their affected as-of dates, with
    one calendar of windows, one DELETE per chunk of date ranges, one streamed read of their
    values and one bulk insert; CityScore is refreshed on the as-of dates that had or now have
    a row of these metrics.
    """
    specs = load_specs(session, changed.keys())
    groups: dict[int, list[int]] = defaultdict(list)
    for metric_id in changed:
        spec = specs[metric_id]
        groups[spec.baseline_years if spec.reference == "baseline" else 0].append(metric_id)
    writer = _ScoreRewrite(session)
    for years, ids in groups.items():
        days = set().union(*(set(changed[m]) for m in ids))
        # No window reaches a value from beyond AHEAD days after it: no row there.
        horizon = max(_last_dates(session, ids).values(), default=max(days)) + HORIZON
        affected = sorted(d for d in as_of_dates_affected(days, years) if d <= horizon)
        if not affected:
            continue
        writer.delete(ids, affected)
        calendar = Calendar(affected, years)
        for metric_id, cols in metric_columns(session, ids, calendar.spans()):
            dense = Dense(calendar, *cols)
            keep = has_window_data(calendar, dense)  # a row is stored where a window has data
            if keep.any():
                scores = score_columns(specs[metric_id], calendar, dense)
                writer.add(metric_id, calendar.as_of[keep], scores[keep])
    refresh_cityscore(session, writer.apply())


def refresh_cityscore(session: Session, as_of: Iterable[dt.date]) -> None:
    """Recompute CityScore (mean of in_cityscore metrics' scores) on these as-of dates."""
    dates = sorted(set(as_of))
    if not dates:
        return
    connection = session.connection()
    ranges = _ranges(dates)
    for chunk in _chunks(ranges, 200):
        session.execute(delete(C).where(_in_ranges(C.c.as_of, chunk)))
    if is_postgres(connection):
        table = _pg_city_scores(connection, dates)
    else:
        table = _sqlite_city_scores(connection, ranges)
    if not len(table):
        return
    days = table[:, 0]
    cuts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), len(days)]
    ordinals, means = [], []
    for a, b in pairwise(cuts):
        row = _fsum_means(table[a:b, 1:].T)
        if not np.isnan(row).all():
            ordinals.append(int(days[a]))
            means.append(row)
    if means:
        matrix = np.array(means)
        columns = [("as_of", np.array(ordinals, dtype=np.int64))]
        columns += [(w, matrix[:, i]) for i, w in enumerate(WINDOW_NAMES)]
        insert_columns(connection, C, columns)


def _pg_city_scores(connection: Any, dates: Sequence[dt.date]) -> Any:
    """(as-of ordinal, 4 scores) rows, read as one array_agg row per as-of date."""
    nan = "'NaN'::float8"
    scores = ", ".join(f"array_agg(COALESCE(s.{w}_score, {nan}))" for w in WINDOW_NAMES)
    sql = (
        f"SELECT {day_ordinal(connection, 's.as_of')}, {scores} "
        "FROM metric_scores s JOIN metrics m ON m.id = s.metric_id "
        "WHERE m.in_cityscore AND s.as_of = ANY(%s) GROUP BY s.as_of ORDER BY s.as_of"
    )
    blocks = []
    for ordinal, columns in pg_select_arrays(connection, sql, (list(dates),), ("float8",) * 4):
        block = np.empty((len(columns[0]), 5))
        block[:, 0] = ordinal
        for i, column in enumerate(columns):
            block[:, i + 1] = column
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.empty((0, 5))


def _sqlite_city_scores(connection: Any, ranges: Sequence[tuple[dt.date, dt.date]]) -> Any:
    out = []
    for chunk in _chunks(ranges, 200):
        between = " OR ".join("s.as_of BETWEEN ? AND ?" for _ in chunk)
        sql = (
            f"SELECT {day_ordinal(connection, 's.as_of')}, s.day_score, "
            "s.week_score, s.month_score, s.quarter_score "
            "FROM metric_scores s JOIN metrics m ON m.id = s.metric_id "
            f"WHERE m.in_cityscore AND ({between}) ORDER BY s.as_of"
        )
        params = [raw_param(connection, d) for pair in chunk for d in pair]
        out.extend(fetch_all(connection, sql, params))
    return np.array(out, dtype=float).reshape(-1, 5)


def refresh_cityscore_all(session: Session) -> None:
    bounds = session.execute(select(func.min(S.c.as_of), func.max(S.c.as_of))).one()
    session.execute(delete(C))
    if bounds[0] is not None:
        refresh_cityscore(session, date_range(bounds[0], bounds[1]))
