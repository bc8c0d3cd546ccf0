"""Reading the materialised scores: a metric's four window scores per as-of date, and
CityScore (written by ``api.cityscore.materialise`` whenever data changes, never on read).

As-of dates past the materialised horizon (no current data) are scored here with the
reference engine: null scores with the reference (target or baseline) they would publish.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session

from api.cityscore.materialise import SCORE_COLUMNS, S, V, load_specs
from api.scoring.aggregates import Point, Series
from api.scoring.scores import MetricSpec, WindowScore, score_as_of
from api.scoring.windows import WINDOW_NAMES, date_range
from db.dialect import day_ordinal, fetch_all, mark, raw_param

# --- loading -------------------------------------------------------------------------------


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
    session: Session, start: dt.date, end: dt.date, *, fill: bool = True
) -> list[tuple[dt.date, float | None, float | None, float | None, float | None]]:
    """CityScore on every as-of date in [start, end] (null windows where none is stored;
    ``fill=False``: the stored rows only, in date order).

    Ten years are 3,651 rows read on every uncached request: on the driver's own cursor,
    dates as day ordinals, so no SQLAlchemy row or date parsing per row.
    """
    sql = (
        f"SELECT {day_ordinal(session, 'as_of')}, day, week, month, quarter "
        f"FROM cityscore_daily WHERE as_of BETWEEN {mark(session)} AND {mark(session)} "
        "ORDER BY as_of"
    )
    found = fetch_all(session, sql, [raw_param(session, start), raw_param(session, end)])
    if not fill:
        return [(dt.date.fromordinal(o), *windows) for o, *windows in found]
    first = start.toordinal()
    rows: list[Any] = [None] * (end.toordinal() - first + 1)
    for ordinal, *windows in found:
        rows[ordinal - first] = (dt.date.fromordinal(ordinal), *windows)
    return [
        r or (dt.date.fromordinal(first + i), None, None, None, None) for i, r in enumerate(rows)
    ]


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
