"""Answers as known at an instant (``as_known_at``): values and definitions as they stood.

Every version of a value is kept (``value_revisions`` holds the superseded ones, each with
the instant it was written; ``metric_values`` the current one) and so is every version of a
metric definition (``metric_revisions``). The value known at instant T is the version of that
(metric, date) with the latest write instant <= T (a tombstone reads as no value); the
definition is the latest revision with ``valid_from`` <= T. Scores are computed on read by the
same engine (``api.scoring.engine``) that materialises today's scores, on exactly the days the
windows read; the engine sums day by day in date order, so a figure computed here equals the
materialised one bit for bit when nothing has changed since.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    bindparam,
    column,
    select,
    text,
)
from sqlalchemy.sql.selectable import Subquery
from sqlmodel import Session

from api.errors import BadRequest
from api.http.params import instant_query, parse_instant
from api.metrics.revisions import Definition, definitions_at
from api.scoring.engine import Calendar, metric_rows, score_batches
from api.scoring.scores import MetricSpec, WindowScore, mean_score
from api.scoring.windows import WINDOW_NAMES, date_range
from db.dialect import mark, raw_param
from db.models import Department, utcnow

D = Department.__table__  # type: ignore[attr-defined]

# The version of each (metric, date) current at {t}: the newest write at or before it.
# {written}: the current rows' write instant as the filter names it. Reads of some metrics
# say COALESCE(updated_at, updated_at), which no index serves: bulk writes give many rows
# one instant, and SQLite's planner, seeing few distinct instants, scanned every row written
# before T through ix_metric_values_updated_at instead of seeking the metrics' days by key.
_KNOWN_SQL = (
    "SELECT metric_id, date, value, numerator, denominator, deleted, at AS updated_at, "
    "batch_id FROM (SELECT x.*, row_number() OVER (PARTITION BY metric_id, date "
    "ORDER BY at DESC, cur DESC, seq DESC) AS rn FROM ("
    "SELECT metric_id, date, value, numerator, denominator, deleted, updated_at AS at, "
    "batch_id, 1 AS cur, 0 AS seq FROM metric_values WHERE {written} <= {t}{extra} "
    "UNION ALL SELECT metric_id, date, value, numerator, denominator, deleted, "
    "recorded_at, batch_id, 0, id FROM value_revisions WHERE recorded_at <= {t}{extra}) x) y "
    "WHERE rn = 1"
)
EMPTY: tuple[Any, ...] = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))


KNOWN_AT = instant_query(
    "RFC 3339 instant: answer from the values and definitions as they stood then "
    "(a published figure asked for again); default: now"
)


def tag(text: str, instant: dt.datetime | None) -> str:
    """``text`` marked with the instant an answer is as known at (part of its ETag)."""
    return f"{text}@{instant.isoformat() if instant else ''}"


def parse_known_at(raw: str | None) -> dt.datetime | None:
    """The ``as_known_at`` query parameter: an RFC 3339 instant not in the future (400)."""
    instant = parse_instant("as_known_at", raw)
    if instant is not None and instant > utcnow():
        raise BadRequest("as_known_at is in the future; nothing is known about it yet.")
    return instant


def raw_values_sql(dialect: str, instant: dt.datetime) -> tuple[str, list[Any]]:
    """The values as known at ``instant`` as a driver-SQL subquery (columns as in
    ``metric_values``) and its parameters, for queries written on the raw cursor."""
    stamp = raw_param(dialect, instant)
    sql = _KNOWN_SQL.format(t=mark(dialect), extra="", written="updated_at")
    return f"({sql})", [stamp, stamp]


def values_at(
    instant: dt.datetime,
    metric_ids: Sequence[int] | None = None,
    spans: Sequence[tuple[dt.date, dt.date]] = (),
) -> Subquery:
    """The values as known at ``instant``, as a Core subquery shaped like ``metric_values``
    (tombstones included, as there: filter ``~deleted`` for live values), optionally only of
    these metrics and on the days of these spans (filtered before the versions are ranked)."""
    extra, written = "", "updated_at"
    binds: list[Any] = [bindparam("t", instant, type_=DateTime())]
    if metric_ids is not None:
        extra, written = " AND metric_id IN :ids", "COALESCE(updated_at, updated_at)"
        binds.append(bindparam("ids", [int(m) for m in metric_ids] or [-1], expanding=True))
    if spans:
        extra += (
            " AND (" + " OR ".join(f"date BETWEEN :a{i} AND :b{i}" for i in range(len(spans))) + ")"
        )
        for i, (a, b) in enumerate(spans):
            binds += [bindparam(f"a{i}", a, type_=Date()), bindparam(f"b{i}", b, type_=Date())]
    stmt = (
        text(_KNOWN_SQL.format(t=":t", extra=extra, written=written))
        .bindparams(*binds)
        .columns(
            column("metric_id", Integer),
            column("date", Date),
            column("value", Float),
            column("numerator", Float),
            column("denominator", Float),
            column("deleted", Boolean),
            column("updated_at", DateTime),
            column("batch_id", Integer),
        )
    )
    return stmt.subquery("known_values")


def _columns(
    session: Session,
    instant: dt.datetime,
    metric_ids: Sequence[int],
    spans: Sequence[tuple[dt.date, dt.date]],
) -> dict[int, tuple[Any, ...]]:
    """Each metric's live points known at ``instant`` on the days in ``spans``, as the
    engine's columns (ordinals, value, numerator, denominator)."""
    if not metric_ids or not spans:
        return {}
    kv = values_at(instant, metric_ids, spans)
    rows = session.execute(
        select(kv.c.metric_id, kv.c.date, kv.c.value, kv.c.numerator, kv.c.denominator)
        .where(~kv.c.deleted)
        .order_by(kv.c.metric_id, kv.c.date)
    ).all()
    grouped: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        grouped[r[0]].append(r)
    return {
        m: (
            np.array([p[1].toordinal() for p in points], dtype=np.int64),
            np.array([p[2] for p in points], dtype=float),
            np.array([p[3] for p in points], dtype=float),
            np.array([p[4] for p in points], dtype=float),
        )
        for m, points in grouped.items()
    }


def _window_scores(row: Any) -> dict[str, WindowScore]:
    cells = [None if np.isnan(x) else float(x) for x in row.tolist()]
    return {w: WindowScore(*cells[i * 3 : i * 3 + 3]) for i, w in enumerate(WINDOW_NAMES)}


class KnownAt:
    """Scores and definitions as known at one instant, computed on read by the engine."""

    def __init__(self, session: Session, instant: dt.datetime) -> None:
        self.session = session
        self.instant = instant
        self.definitions = definitions_at(session, instant)

    def values(self, metric_ids: Sequence[int]) -> Subquery:
        """These metrics' values as known at this instant, shaped like ``metric_values``
        (ranked for just these metrics, not the whole table)."""
        return values_at(self.instant, metric_ids)

    def metrics(self, department_ids: Sequence[int] | None = None) -> list[Any]:
        """The metrics defined at this instant (of these departments), by slug."""
        from api.scorecards.service import MetricRow

        return [
            MetricRow(d.metric_id, d.slug, d.name, d.department_id)
            for d in sorted(self.definitions.values(), key=lambda d: d.slug)
            if department_ids is None or d.department_id in department_ids
        ]

    def specs(self, metric_ids: Sequence[int]) -> dict[int, MetricSpec]:
        return {m: self.definitions[m].spec for m in metric_ids if m in self.definitions}

    def in_cityscore(self) -> list[Definition]:
        return sorted(
            (d for d in self.definitions.values() if d.in_cityscore), key=lambda d: d.slug
        )

    def matrices(self, metric_ids: Sequence[int], dates: Sequence[dt.date]) -> dict[int, Any]:
        """Each known metric's (dates, 12) score columns on these sorted as-of dates."""
        specs = {m: self.definitions[m].spec for m in metric_ids if m in self.definitions}
        if not specs or not dates:
            return {}
        years = max(
            (s.baseline_years for s in specs.values() if s.reference == "baseline"), default=0
        )
        calendar = Calendar(dates, years)
        points = _columns(self.session, self.instant, sorted(specs), calendar.spans())
        stream = ((m, points.get(m, EMPTY)) for m in specs)
        return dict(metric_rows(score_batches(specs, calendar, stream)))

    def scores_for(
        self, metric_ids: Sequence[int], as_of: dt.date
    ) -> dict[int, dict[str, WindowScore]]:
        return {m: _window_scores(x[0]) for m, x in self.matrices(metric_ids, [as_of]).items()}

    def metric_history(
        self, metric_id: int, start: dt.date, end: dt.date
    ) -> list[tuple[dt.date, dict[str, WindowScore]]]:
        dates = date_range(start, end)
        matrix = self.matrices([metric_id], dates).get(metric_id)
        if matrix is None:
            return []
        return [(d, _window_scores(matrix[i])) for i, d in enumerate(dates)]

    def cityscore_history(
        self, start: dt.date, end: dt.date
    ) -> list[tuple[dt.date, float | None, float | None, float | None, float | None]]:
        dates = date_range(start, end)
        members = self.matrices([d.metric_id for d in self.in_cityscore()], dates)
        out = []
        for i, day in enumerate(dates):
            rows = [_window_scores(m[i]) for m in members.values()]
            means = [mean_score([r[w].score for r in rows]) for w in WINDOW_NAMES]
            out.append((day, *means))
        return out  # type: ignore[return-value]

    def weekly_scores(
        self, metric_id: int, week_starts: Sequence[dt.date]
    ) -> dict[dt.date, float | None]:
        dates = [w + dt.timedelta(days=7) for w in week_starts]
        matrix = self.matrices([metric_id], dates).get(metric_id)
        if matrix is None:
            return dict.fromkeys(week_starts)
        return {w: _window_scores(matrix[i])["week"].score for i, w in enumerate(week_starts)}

    def document(self, as_of: dt.date) -> dict[str, Any]:
        """``/v1/cityscore``'s document for ``as_of`` as known at this instant."""
        members = self.in_cityscore()
        scores = self.scores_for([d.metric_id for d in members], as_of)
        departments = dict(self.session.execute(select(D.c.id, D.c.slug)).all())
        metrics: list[dict[str, Any]] = [
            {
                "metric": d.slug,
                "name": d.name,
                "department": departments.get(d.department_id),
                "target": d.spec.target_on(as_of),
                "metric_logic": d.metric_logic,
                **{w: scores[d.metric_id][w]._asdict() for w in WINDOW_NAMES},
            }
            for d in members
        ]
        from api.cityscore.publish import window_bounds

        return {
            "as_of": as_of,
            "windows": window_bounds(as_of),
            "score": {w: mean_score([m[w]["score"] for m in metrics]) for w in WINDOW_NAMES},
            "metrics": metrics,
        }


def document(session: Session, as_of: dt.date, instant: dt.datetime | None) -> dict[str, Any]:
    """``/v1/cityscore``'s document for ``as_of`` as known at ``instant`` (None: now, from
    the materialised scores)."""
    if instant is None:
        from api.cityscore import publish

        return publish.cityscore_document(session, as_of)
    return KnownAt(session, instant).document(as_of)
