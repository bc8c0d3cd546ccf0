"""Reading the materialised scores: a metric's four window scores per as-of date, and
CityScore (written by ``api.cityscore.materialise`` whenever data changes, never on read).

As-of dates past the materialised horizon (no current data) are scored here with the
reference engine: null scores with the reference (target or baseline) they would publish.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from api.cityscore.materialise import RUN_FIGURES, R, V, load_specs
from api.scoring.aggregates import Point, Series
from api.scoring.scores import MetricSpec, WindowScore, score_as_of
from api.scoring.windows import WINDOW_NAMES, date_range
from db.dialect import day_ordinal, fetch_all, mark, raw_param
from db.models import RUN_LOOKBACK

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


def _covering(as_of: dt.date, kinds: Sequence[int] = (0, 1, 2, 3)) -> Any:
    """Runs of these kinds that cover ``as_of``: each kind's start is bounded by its
    ``RUN_LOOKBACK``, so the index scan is a few entries per metric and kind."""
    return or_(
        *(
            and_(
                R.c.kind == kind,
                R.c.valid_from.between(as_of - dt.timedelta(days=RUN_LOOKBACK[kind]), as_of),
                R.c.valid_to >= as_of,
            )
            for kind in kinds
        )
    )


EMPTY = WindowScore(None, None, None)


def scores_for(
    session: Session, metric_ids: Sequence[int], as_of: dt.date
) -> dict[int, dict[str, WindowScore]]:
    """Each metric's four window scores as of one date."""
    if not metric_ids:
        return {}
    stmt = select(R.c.metric_id, R.c.kind, *(R.c[c] for c in RUN_FIGURES)).where(
        and_(R.c.metric_id.in_(metric_ids), _covering(as_of))
    )
    found: dict[int, list[WindowScore]] = {}
    for metric_id, kind, *figures in session.execute(stmt).all():
        found.setdefault(metric_id, [EMPTY] * len(WINDOW_NAMES))[kind] = WindowScore(*figures)
    out = {m: dict(zip(WINDOW_NAMES, w, strict=True)) for m, w in found.items()}
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
    stmt = select(R.c.kind, R.c.valid_from, R.c.valid_to, *(R.c[c] for c in RUN_FIGURES)).where(
        and_(
            R.c.metric_id == metric_id,
            R.c.valid_from.between(start - dt.timedelta(days=max(RUN_LOOKBACK)), end),
            R.c.valid_to >= start,
        )
    )
    first = start.toordinal()
    rows: list[list[WindowScore] | None] = [None] * (end.toordinal() - first + 1)
    for kind, valid_from, valid_to, *figures in session.execute(stmt).all():
        window = WindowScore(*figures)
        lo = max(valid_from.toordinal(), first) - first
        hi = min(valid_to.toordinal() - first, len(rows) - 1)
        for i in range(lo, hi + 1):
            row = rows[i]
            if row is None:
                row = rows[i] = [EMPTY] * len(WINDOW_NAMES)
            row[kind] = window
    dates = date_range(start, end)
    found = {
        d: dict(zip(WINDOW_NAMES, r, strict=True))
        for d, r in zip(dates, rows, strict=True)
        if r is not None
    }
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
    """The week score of each week starting on ``week_starts`` (read as of the Monday after:
    the week run starting on that Monday)."""
    if not week_starts:
        return {}
    mondays = [w + dt.timedelta(days=7) for w in week_starts]
    stmt = select(R.c.valid_from, R.c.score).where(
        and_(
            R.c.metric_id == metric_id,
            R.c.kind == 1,
            R.c.valid_from.between(min(mondays), max(mondays)),
        )
    )
    found = dict(session.execute(stmt).all())
    return {w: found.get(w + dt.timedelta(days=7)) for w in week_starts}
