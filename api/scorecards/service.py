"""Department scorecards: each department's score (all its metrics) and per-metric status."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel import Session

from api.cityscore import service as scores_service
from api.departments import service as departments_service
from api.http.respond import Listing
from api.scorecards.schemas import SCORECARD_COLUMNS
from api.scoring.scores import mean_score
from api.scoring.windows import WINDOW_NAMES, windows_as_of
from db.models import Department, Metric, MetricValue

M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
TREND_WEEKS = 12
RECENT_DAYS = 31


STATUSES = ("above_target", "below_target", "not_scored", "no_data")


def status(week_score: float | None, has_data: bool = False) -> str:
    """A metric's status from its week score: ``not_scored`` when the week has data but no
    score (zero events against a historical average, a missing target), ``no_data`` when the
    week has no value at all."""
    if week_score is None:
        return "not_scored" if has_data else "no_data"
    return "above_target" if week_score >= 1 else "below_target"


def with_week_data(session: Session, metric_ids: list[int], as_of: dt.date) -> set[int]:
    """The metrics with at least one live value in the week window as of ``as_of``."""
    if not metric_ids:
        return set()
    week = windows_as_of(as_of)["week"]
    return set(
        session.execute(
            select(V.c.metric_id)
            .where(
                and_(
                    V.c.metric_id.in_(metric_ids),
                    ~V.c.deleted,
                    V.c.date.between(week.start, week.end),
                )
            )
            .group_by(V.c.metric_id)
        ).scalars()
    )


def week_starts(as_of: dt.date, weeks: int = TREND_WEEKS) -> list[dt.date]:
    """The Mondays of the ``weeks`` complete weeks before ``as_of``, oldest first."""
    last_week = windows_as_of(as_of)["week"].start
    return [last_week - dt.timedelta(days=7 * k) for k in range(weeks - 1, -1, -1)]


def trend(
    session: Session, metric_id: int, as_of: dt.date, weeks: int = TREND_WEEKS
) -> list[tuple[dt.date, float | None]]:
    """A metric's week scores for the ``weeks`` complete weeks before ``as_of``."""
    starts = week_starts(as_of, weeks)
    scores = scores_service.weekly_scores(session, metric_id, starts)
    return [(w, scores[w]) for w in starts]


def listing(session: Session, as_of: dt.date) -> Listing:
    cache: list[list[tuple[Any, ...]]] = []

    def load() -> list[tuple[Any, ...]]:
        depts = session.execute(
            select(D.c.id, D.c.slug, D.c.name, D.c.cabinet).order_by(D.c.slug)
        ).all()
        metric_rows = session.execute(select(M.c.id, M.c.department_id)).all()
        by_dept: dict[int, list[int]] = defaultdict(list)
        for metric_id, dept_id in metric_rows:
            by_dept[dept_id].append(metric_id)
        scores = scores_service.scores_for(session, [m for m, _ in metric_rows], as_of)
        rows = []
        for dept_id, slug, name, cabinet in depts:
            ids = by_dept[dept_id]
            means = [mean_score([scores[m][w].score for m in ids]) for w in WINDOW_NAMES]
            week_scores = [scores[m]["week"].score for m in ids]
            below = sum(1 for w in week_scores if w is not None and w < 1)
            rows.append((slug, name, cabinet, as_of, len(ids), *means, below))
        return rows

    def fetch(after: Any, limit: int | None) -> list[tuple[Any, ...]]:
        if not cache:
            cache.append(load())
        rows = [r for r in cache[0] if after is None or r[0] > after]
        return rows if limit is None else rows[:limit]

    return Listing(
        name=f"scorecards-{as_of.isoformat()}",
        columns=SCORECARD_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[0]],
        key_width=1,
        parse_key=lambda key: str(key[0]),
        text_columns=frozenset({"name", "cabinet"}),
    )


def scorecard(
    session: Session, slug: str, as_of: dt.date, *, trend_weeks: int = TREND_WEEKS
) -> dict[str, Any]:
    """A department's scorecard document (404 for an unknown department)."""
    departments_service.get(session, slug)
    return scorecards(session, as_of, [slug], trend_weeks=trend_weeks)[0]


def _latest_values(session: Session, ids: list[int], as_of: dt.date) -> dict[int, dict[str, Any]]:
    """Each metric's last live value before ``as_of``. Most metrics reported lately, so the
    recent days are searched first (a short range of the key); only the rest scan further."""
    found = _latest_since(session, ids, as_of, as_of - dt.timedelta(days=RECENT_DAYS))
    missing = [i for i in ids if i not in found]
    if missing:
        found.update(_latest_since(session, missing, as_of, None))
    return found


def _latest_since(
    session: Session, ids: list[int], as_of: dt.date, since: dt.date | None
) -> dict[int, dict[str, Any]]:
    where = and_(V.c.metric_id.in_(ids), ~V.c.deleted, V.c.date < as_of)
    if since is not None:
        where = and_(where, V.c.date >= since)
    last = (
        select(V.c.metric_id, func.max(V.c.date).label("day"))
        .where(where)
        .group_by(V.c.metric_id)
        .subquery()
    )
    rows = session.execute(
        select(V.c.metric_id, V.c.date, V.c.value).join(
            last, and_(V.c.metric_id == last.c.metric_id, V.c.date == last.c.day)
        )
    )
    return {metric_id: {"date": day, "value": value} for metric_id, day, value in rows}


def scorecards(
    session: Session,
    as_of: dt.date,
    slugs: list[str] | None = None,
    *,
    trend_weeks: int = TREND_WEEKS,
) -> list[dict[str, Any]]:
    """The scorecards of these departments (all when None), by slug, with the same few
    queries for any number of them. ``trend_weeks=0`` leaves the weekly trend out."""
    stmt = select(D.c.id, D.c.slug, D.c.name, D.c.cabinet).order_by(D.c.slug)
    if slugs is not None:
        stmt = stmt.where(D.c.slug.in_(slugs))
    depts = session.execute(stmt).all()
    metrics = session.execute(
        select(M.c.id, M.c.slug, M.c.name, M.c.department_id)
        .where(M.c.department_id.in_([d.id for d in depts]))
        .order_by(M.c.slug)
    ).all()
    ids = [m.id for m in metrics]
    scores = scores_service.scores_for(session, ids, as_of)
    week_data = with_week_data(session, ids, as_of)
    specs = scores_service.load_specs(session, ids)
    latest = _latest_values(session, ids, as_of) if ids else {}
    starts = week_starts(as_of, trend_weeks) if trend_weeks else []
    rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in metrics:
        s = scores[m.id]
        trend = scores_service.weekly_scores(session, m.id, starts) if starts else {}
        rows[m.department_id].append(
            {
                "metric": m.slug,
                "name": m.name,
                "target": specs[m.id].target_on(as_of),
                "latest": latest.get(m.id),
                **{w: s[w].score for w in WINDOW_NAMES},
                "status": status(s["week"].score, m.id in week_data),
                "trend": [{"week_start": w, "score": trend[w]} for w in starts],
            }
        )
    return [
        {
            "department": d.slug,
            "name": d.name,
            "cabinet": d.cabinet,
            "as_of": as_of,
            "score": {w: mean_score([m[w] for m in rows[d.id]]) for w in WINDOW_NAMES},
            "metrics": rows[d.id],
        }
        for d in depts
    ]


def scorecard_csv_rows(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A scorecard document as CSV rows, one per metric (``SCORECARD_CSV_COLUMNS``)."""
    out = []
    for m in doc["metrics"]:
        latest = m["latest"] or {}
        out.append(
            (
                m["metric"],
                m["name"],
                m["target"],
                latest.get("date"),
                latest.get("value"),
                *(m[w] for w in WINDOW_NAMES),
                m["status"],
            )
        )
    return out
