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

from api.scoring.engine import Calendar, Dense, has_current_data, score_columns
from api.scoring.scores import MetricSpec
from api.scoring.windows import WINDOW_NAMES, as_of_dates_affected, date_range
from db.bulk import insert_columns
from db.models import CityScoreDaily, Metric, MetricScore, MetricTarget, MetricValue

M = Metric.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
S = MetricScore.__table__  # type: ignore[attr-defined]
C = CityScoreDaily.__table__  # type: ignore[attr-defined]

SCORE_COLUMNS = tuple(
    f"{w}_{part}" for w in WINDOW_NAMES for part in ("score", "numerator", "denominator")
)
# Windows reach back at most ~4 months before an as-of date; after the last value, scores are
# materialised this many days ahead (later as-of dates are computed on read).
AHEAD = 130
Columns = tuple[Any, Any, Any, Any]  # NumPy: day ordinals, value, numerator, denominator


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


def metric_columns(
    session: Session,
    metric_ids: Sequence[int],
    start: dt.date,
    end: dt.date,
    per_query: int = 200,
) -> Iterator[tuple[int, Columns]]:
    """Each metric's live points in [start, end] as NumPy columns, one metric at a time.

    One query per ``per_query`` metrics (bounded memory), straight into arrays: on PostgreSQL
    a binary ``COPY ... TO STDOUT`` of fixed-width rows (nulls sent as NaN, which no stored
    value can be) read with one ``np.frombuffer``; on SQLite the driver's rows as one float
    array. Metrics without live values in the range are left out.
    """
    connection = session.connection()
    for id_chunk in _chunks(sorted(metric_ids), per_query):
        if connection.dialect.name == "postgresql":
            table = _pg_points(connection, id_chunk, start, end)
        else:
            table = _sqlite_points(connection, id_chunk, start, end)
        if not len(table):
            continue
        ids = table[:, 0]
        cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
        for a, b in pairwise(cuts):
            block = table[a:b]
            yield (
                int(block[0, 0]),
                (block[:, 1].astype(np.int64), block[:, 2], block[:, 3], block[:, 4]),
            )


_POINTS = np.dtype(
    [
        ("count", ">i2"),
        ("l0", ">i4"),
        ("metric_id", ">i4"),
        ("l1", ">i4"),
        ("day", ">i4"),
        ("l2", ">i4"),
        ("value", ">f8"),
        ("l3", ">i4"),
        ("numerator", ">f8"),
        ("l4", ">i4"),
        ("denominator", ">f8"),
    ]
)


def _pg_points(connection: Any, ids: Sequence[int], start: dt.date, end: dt.date) -> Any:
    raw: Any = connection.connection.driver_connection
    nan = "'NaN'::float8"
    sql = (
        "COPY (SELECT v.metric_id, (v.date - DATE '0001-01-01' + 1)::int4, "
        f"COALESCE(v.value, {nan}), COALESCE(v.numerator, {nan}), "
        f"COALESCE(v.denominator, {nan}) FROM metric_values v "
        "WHERE NOT v.deleted AND v.metric_id = ANY(%s) AND v.date BETWEEN %s AND %s "
        "ORDER BY v.metric_id, v.date) TO STDOUT (FORMAT BINARY)"
    )
    with raw.cursor() as cur, cur.copy(sql, (list(ids), start, end)) as copy:
        data = b"".join(bytes(block) for block in copy)
    body = data[19:-2]  # the header (no extension) and the trailer
    rows = np.frombuffer(body, dtype=_POINTS)
    table = np.empty((len(rows), 5))
    for i, name in enumerate(("metric_id", "day", "value", "numerator", "denominator")):
        table[:, i] = rows[name]
    return table


def _sqlite_points(connection: Any, ids: Sequence[int], start: dt.date, end: dt.date) -> Any:
    raw: Any = connection.connection.driver_connection
    marks = ", ".join("?" for _ in ids)
    cur = raw.cursor()
    try:
        cur.execute(
            "SELECT v.metric_id, CAST(julianday(v.date) - 1721424.5 AS INTEGER), v.value, "
            "v.numerator, v.denominator FROM metric_values v WHERE NOT v.deleted "
            f"AND v.metric_id IN ({marks}) AND v.date BETWEEN ? AND ? "
            "ORDER BY v.metric_id, v.date",
            [*ids, start.isoformat(), end.isoformat()],
        )
        rows = cur.fetchall()
    finally:
        cur.close()
    return np.array(rows, dtype=float).reshape(-1, 5)


class _ScoreRows:
    """Score rows collected as NumPy blocks and written in large bulk inserts."""

    def __init__(self, session: Session, flush_rows: int = 200_000) -> None:
        self.session = session
        self.flush_rows = flush_rows
        self.blocks: list[tuple[int, Any, Any]] = []
        self.rows = 0

    def add(self, metric_id: int, as_of: Any, scores: Any) -> None:
        if len(as_of):
            self.blocks.append((metric_id, as_of, scores))
            self.rows += len(as_of)
            if self.rows >= self.flush_rows:
                self.flush()

    def flush(self) -> None:
        if not self.blocks:
            return
        ids = np.concatenate([np.full(len(a), m, dtype=np.int64) for m, a, _ in self.blocks])
        as_of = np.concatenate([a for _, a, _ in self.blocks])
        scores = np.concatenate([s for _, _, s in self.blocks])
        columns = [("metric_id", ids), ("as_of", as_of)]
        columns += [(name, scores[:, i]) for i, name in enumerate(SCORE_COLUMNS)]
        insert_columns(self.session.connection(), S, columns)
        self.blocks, self.rows = [], 0


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


def rescore_metrics(session: Session, metric_ids: Iterable[int]) -> None:
    """Recompute every score of these metrics (after a definition change or a bulk load).

    As-of dates from the day after a metric's first value to ``AHEAD`` days after its last.
    When the metrics include every in_cityscore metric (a bulk load), CityScore is computed
    from the new scores in memory instead of being read back.
    """
    specs = load_specs(session, metric_ids)
    ids = sorted(specs)
    if not ids:
        return
    old = session.execute(
        select(func.min(S.c.as_of), func.max(S.c.as_of)).where(S.c.metric_id.in_(ids))
    ).one()
    _delete_scores(session, ids, [])
    spans = _spans(session, ids)
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
    for metric_id, cols in metric_columns(session, ids, dt.date.min, dt.date.max, 25):
        dense = Dense(calendar, *cols)
        scores = score_columns(specs[metric_id], calendar, dense)
        a, b = spans[metric_id][0] - first, spans[metric_id][1] - first + 1
        writer.add(metric_id, calendar.as_of[a:b], scores[a:b])
        city.add(metric_id, a, scores[a:b])
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

    def add(self, metric_id: int, offset: int, scores: Any) -> None:
        if not self.complete or metric_id not in self.column:
            return
        j = self.column[metric_id]
        for w, matrix in enumerate(self.windows):
            matrix[offset : offset + len(scores), j] = scores[:, w * 3]

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


def rescore_days(session: Session, changed: Mapping[int, Iterable[dt.date]]) -> None:
    """Recompute the scores that can see values changed on these (metric, day) pairs.

    Set-based: metrics that share a reach (target metrics; baseline metrics with the same
    baseline_years) are recomputed together on the union of their affected as-of dates, with
    one calendar of windows, one DELETE per chunk of ranges, one streamed read of their values
    and one bulk insert of the new rows. Recomputing a date that did not change is harmless.
    """
    specs = load_specs(session, changed.keys())
    groups: dict[int, list[int]] = defaultdict(list)
    for metric_id in changed:
        spec = specs[metric_id]
        groups[spec.baseline_years if spec.reference == "baseline" else 0].append(metric_id)
    touched: set[dt.date] = set()
    writer = _ScoreRows(session)
    for years, ids in groups.items():
        days = set().union(*(set(changed[m]) for m in ids))
        affected = sorted(as_of_dates_affected(days, years))
        if not affected:
            continue
        _delete_scores(session, ids, _ranges(affected))
        calendar = Calendar(affected, years)
        reach = dt.timedelta(days=AHEAD + 366 * years)
        for metric_id, cols in metric_columns(session, ids, affected[0] - reach, affected[-1]):
            dense = Dense(calendar, *cols)
            keep = has_current_data(calendar, dense)
            if keep.any():
                scores = score_columns(specs[metric_id], calendar, dense)
                writer.add(metric_id, calendar.as_of[keep], scores[keep])
        touched.update(affected)
    writer.flush()
    refresh_cityscore(session, touched)


def refresh_cityscore(session: Session, as_of: Iterable[dt.date]) -> None:
    """Recompute CityScore (mean of in_cityscore metrics' scores) on these as-of dates."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    sqlite = mark == "?"
    for chunk in _chunks(_ranges(as_of), 200):
        session.execute(delete(C).where(_in_ranges(C.c.as_of, chunk)))
        between = " OR ".join(f"s.as_of BETWEEN {mark} AND {mark}" for _ in chunk)
        params = [d.isoformat() if sqlite else d for pair in chunk for d in pair]
        cur = raw.cursor()
        try:
            cur.execute(
                "SELECT s.as_of, s.day_score, s.week_score, s.month_score, s.quarter_score "
                "FROM metric_scores s JOIN metrics m ON m.id = s.metric_id "
                f"WHERE m.in_cityscore AND ({between}) ORDER BY s.as_of",
                params,
            )
            found = cur.fetchall()
        finally:
            cur.close()
        if not found:
            continue
        days = [r[0] for r in found]
        scores = np.array([r[1:] for r in found], dtype=float)
        starts = [0, *(i for i in range(1, len(days)) if days[i] != days[i - 1]), len(days)]
        ordinals, means = [], []
        for a, b in pairwise(starts):
            block = scores[a:b]
            row = _fsum_means(block.T)
            if not np.isnan(row).all():
                day = dt.date.fromisoformat(days[a]) if sqlite else days[a]
                ordinals.append(day.toordinal())
                means.append(row)
        if means:
            table = np.array(means)
            columns = [("as_of", np.array(ordinals, dtype=np.int64))]
            columns += [(w, table[:, i]) for i, w in enumerate(WINDOW_NAMES)]
            insert_columns(connection, C, columns)


def refresh_cityscore_all(session: Session) -> None:
    bounds = session.execute(select(func.min(S.c.as_of), func.max(S.c.as_of))).one()
    session.execute(delete(C))
    if bounds[0] is not None:
        refresh_cityscore(session, date_range(bounds[0], bounds[1]))
