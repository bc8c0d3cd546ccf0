"""Materialised scores: every metric's four window scores per as-of date, and CityScore.

Scores are computed when data changes (ingest, metric edits), never on read: a write
recomputes exactly the as-of dates whose windows or baselines can see the changed days, in the
same transaction, so a reader never sees new values with old scores.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlmodel import Session

from api.scoring.aggregates import Point, Series
from api.scoring.scores import (
    MetricSpec,
    ScoreRow,
    WindowScore,
    has_current_data,
    mean_score,
    score_as_of,
)
from api.scoring.windows import WINDOW_NAMES, as_of_dates_affected, date_range
from db.dialect import bulk_insert
from db.models import CityScoreDaily, Metric, MetricScore, MetricTarget, MetricValue

M = Metric.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
S = MetricScore.__table__  # type: ignore[attr-defined]
C = CityScoreDaily.__table__  # type: ignore[attr-defined]

SCORE_COLUMNS = tuple(
    f"{w}_{part}" for w in WINDOW_NAMES for part in ("score", "numerator", "denominator")
)


# --- loading -------------------------------------------------------------------------------


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


def load_series(
    session: Session,
    metric_id: int,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Series:
    """The metric's live daily points, optionally only those in [start, end]."""
    stmt = select(V.c.date, V.c.value, V.c.numerator, V.c.denominator).where(
        and_(V.c.metric_id == metric_id, ~V.c.deleted)
    )
    if start is not None:
        stmt = stmt.where(V.c.date >= start)
    if end is not None:
        stmt = stmt.where(V.c.date <= end)
    return Series(Point(*r) for r in session.execute(stmt).all())


# --- writing -------------------------------------------------------------------------------


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


def _flat(metric_id: int, row: ScoreRow) -> tuple[Any, ...]:
    return (metric_id, row.as_of, *row.day, *row.week, *row.month, *row.quarter)


def _score_rows(
    metric_id: int, spec: MetricSpec, series: Series, dates: Sequence[dt.date]
) -> Iterator[tuple[Any, ...]]:
    """Score rows for the as-of dates (sorted) whose windows hold any of the series' data."""
    if not len(series):
        return iter(())
    # Beyond these bounds no window can reach the data: skip the per-date check.
    first = dt.date.fromordinal(series.ordinals[0])
    last = dt.date.fromordinal(series.ordinals[-1]) + dt.timedelta(days=130)
    with_data = [d for d in dates if first < d <= last and has_current_data(series, d)]
    return (_flat(metric_id, r) for r in score_as_of(spec, series, with_data))


def _all_data_dates(series: Series) -> list[dt.date]:
    if not len(series):
        return []
    first = dt.date.fromordinal(series.ordinals[0])
    last = dt.date.fromordinal(series.ordinals[-1])
    return date_range(first + dt.timedelta(days=1), last + dt.timedelta(days=130))


def rescore_metrics(session: Session, metric_ids: Iterable[int]) -> None:
    """Recompute every score of these metrics (after a definition change or a bulk load)."""
    specs = load_specs(session, metric_ids)
    touched: set[dt.date] = set()
    for metric_id, spec in specs.items():
        old = session.execute(select(S.c.as_of).where(S.c.metric_id == metric_id)).scalars().all()
        touched.update(old)
        session.execute(delete(S).where(S.c.metric_id == metric_id))
        series = load_series(session, metric_id)
        dates = _all_data_dates(series)
        rows = (_flat(metric_id, r) for r in score_as_of(spec, series, dates))
        bulk_insert(session.connection(), S, ("metric_id", "as_of", *SCORE_COLUMNS), rows)
        touched.update(dates)
    refresh_cityscore(session, touched)


def rescore_days(session: Session, changed: Mapping[int, Iterable[dt.date]]) -> None:
    """Recompute the scores that can see values changed on these (metric, day) pairs.

    Set-based: metrics that share a reach (target metrics; baseline metrics with the same
    baseline_years) are recomputed together on the union of their affected as-of dates, with
    one DELETE, one streamed read of their values and one COPY of the new rows. Recomputing
    a date that did not change is harmless, so the union is exact enough.
    """
    specs = load_specs(session, changed.keys())
    groups: dict[int, list[int]] = defaultdict(list)
    for metric_id in changed:
        spec = specs[metric_id]
        groups[spec.baseline_years if spec.reference == "baseline" else 0].append(metric_id)
    touched: set[dt.date] = set()
    columns = ("metric_id", "as_of", *SCORE_COLUMNS)
    for years, ids in groups.items():
        days = set().union(*(set(changed[m]) for m in ids))
        affected = sorted(as_of_dates_affected(days, years))
        if not affected:
            continue
        ranges = _ranges(affected)
        for id_chunk in _chunks(sorted(ids), 1000):
            for chunk in _chunks(ranges, 200):
                session.execute(
                    delete(S).where(and_(S.c.metric_id.in_(id_chunk), _in_ranges(S.c.as_of, chunk)))
                )
        # Windows reach back at most ~4 months before an as-of date; baselines whole years.
        reach = dt.timedelta(days=130 + 366 * years)
        series = _series_by_metric(session, ids, affected[0] - reach, affected[-1])
        rows = chain.from_iterable(
            _score_rows(metric_id, specs[metric_id], points, affected)
            for metric_id, points in series
        )
        bulk_insert(session.connection(), S, columns, list(rows))
        touched.update(affected)
    refresh_cityscore(session, touched)


def _series_by_metric(
    session: Session, metric_ids: Sequence[int], start: dt.date, end: dt.date
) -> Iterator[tuple[int, Series]]:
    """Each metric's live points in [start, end], one metric at a time.

    One query per 200 metrics (bounded memory) on the driver's own cursor: days come back as
    ordinal numbers and the rows go straight into column lists, no per-row objects between.
    """
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    postgres = connection.dialect.name == "postgresql"
    ordinal = (
        "(v.date - DATE '0001-01-01' + 1)"
        if postgres
        else "CAST(julianday(v.date) - 1721424.5 AS INTEGER)"
    )
    for id_chunk in _chunks(sorted(metric_ids), 200):
        if postgres:
            where, params = (
                "v.metric_id = ANY(%s) AND v.date BETWEEN %s AND %s",
                [
                    list(id_chunk),
                    start,
                    end,
                ],
            )
        else:
            marks = ", ".join("?" for _ in id_chunk)
            where = f"v.metric_id IN ({marks}) AND v.date BETWEEN ? AND ?"
            params = [*id_chunk, start.isoformat(), end.isoformat()]
        sql = (
            f"SELECT v.metric_id, {ordinal}, v.value, v.numerator, v.denominator "
            f"FROM metric_values v WHERE NOT v.deleted AND {where} "
            "ORDER BY v.metric_id, v.date"
        )
        cur = raw.cursor()
        try:
            cur.execute(sql, params)
            rows = cur.fetchall()
        finally:
            cur.close()
        seen = set()
        for metric_id, group in groupby(rows, key=itemgetter(0)):
            seen.add(metric_id)
            _, ordinals, values, numerators, denominators = (
                list(column) for column in zip(*group, strict=True)
            )
            yield metric_id, Series.from_columns(ordinals, values, numerators, denominators)
        for metric_id in id_chunk:  # no live values in range
            if metric_id not in seen:
                yield metric_id, Series([])


def refresh_cityscore(session: Session, as_of: Iterable[dt.date]) -> None:
    """Recompute CityScore (mean of in_cityscore metrics' scores) on these as-of dates."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    sqlite = mark == "?"
    ranges = _ranges(as_of)
    for chunk in _chunks(ranges, 200):
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
        rows = []
        for day, group in groupby(found, key=itemgetter(0)):
            columns = list(zip(*group, strict=True))
            means = [mean_score(columns[i]) for i in range(1, 5)]
            if any(m is not None for m in means):
                rows.append((dt.date.fromisoformat(day) if sqlite else day, *means))
        bulk_insert(connection, C, ("as_of", *WINDOW_NAMES), rows)


def refresh_cityscore_all(session: Session) -> None:
    bounds = session.execute(select(S.c.as_of).order_by(S.c.as_of).limit(1)).scalar()
    last = session.execute(select(S.c.as_of).order_by(S.c.as_of.desc()).limit(1)).scalar()
    session.execute(delete(C))
    if bounds is not None and last is not None:
        refresh_cityscore(session, date_range(bounds, last))


# --- reading -------------------------------------------------------------------------------


def _row_scores(row: Any) -> dict[str, WindowScore]:
    values = list(row)
    return {w: WindowScore(*values[i * 3 : i * 3 + 3]) for i, w in enumerate(WINDOW_NAMES)}


def scores_for(
    session: Session, metric_ids: Sequence[int], as_of: dt.date
) -> dict[int, dict[str, WindowScore]]:
    """Each metric's four window scores as of one date."""
    if not metric_ids:
        return {}
    stmt = select(S.c.metric_id, *(S.c[c] for c in SCORE_COLUMNS)).where(
        and_(S.c.as_of == as_of, S.c.metric_id.in_(metric_ids))
    )
    out = {r[0]: _row_scores(r[1:]) for r in session.execute(stmt).all()}
    missing = [m for m in metric_ids if m not in out]
    if missing:
        specs = load_specs(session, missing)
        for metric_id in missing:
            out[metric_id] = _scores_without_rows(session, metric_id, specs[metric_id], [as_of])[
                as_of
            ]
    return out


def _scores_without_rows(
    session: Session, metric_id: int, spec: MetricSpec, dates: Sequence[dt.date]
) -> dict[dt.date, dict[str, WindowScore]]:
    """Scores on as-of dates with no current data: null, but with the published reference."""
    series = load_series(session, metric_id) if spec.reference == "baseline" else Series([])
    rows = score_as_of(spec, series, dates)
    return {r.as_of: dict(zip(WINDOW_NAMES, r[1:], strict=True)) for r in rows}


def metric_history(
    session: Session, metric_id: int, start: dt.date, end: dt.date
) -> list[tuple[dt.date, dict[str, WindowScore]]]:
    """One metric's window scores for every as-of date in [start, end]."""
    stmt = (
        select(S.c.as_of, *(S.c[c] for c in SCORE_COLUMNS))
        .where(and_(S.c.metric_id == metric_id, S.c.as_of.between(start, end)))
        .order_by(S.c.as_of)
    )
    found = {r[0]: _row_scores(r[1:]) for r in session.execute(stmt).all()}
    dates = date_range(start, end)
    missing = [d for d in dates if d not in found]
    if missing:
        spec = load_specs(session, [metric_id])[metric_id]
        found.update(_scores_without_rows(session, metric_id, spec, missing))
    return [(d, found[d]) for d in dates]


def cityscore_history(
    session: Session, start: dt.date, end: dt.date
) -> list[tuple[dt.date, float | None, float | None, float | None, float | None]]:
    stmt = (
        select(C.c.as_of, C.c.day, C.c.week, C.c.month, C.c.quarter)
        .where(C.c.as_of.between(start, end))
        .order_by(C.c.as_of)
    )
    found = {r[0]: tuple(r) for r in session.execute(stmt).all()}
    return [found.get(d, (d, None, None, None, None)) for d in date_range(start, end)]


def weekly_scores(
    session: Session, metric_id: int, week_starts: Sequence[dt.date]
) -> dict[dt.date, float | None]:
    """The week score of each week starting on ``week_starts`` (read as of the Monday after)."""
    as_of = [w + dt.timedelta(days=7) for w in week_starts]
    stmt = select(S.c.as_of, S.c.week_score).where(
        and_(S.c.metric_id == metric_id, S.c.as_of.in_(as_of))
    )
    found = dict(session.execute(stmt).all())
    return {w: found.get(w + dt.timedelta(days=7)) for w in week_starts}
