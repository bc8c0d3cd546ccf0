"""Department scorecards: each department's score (all its metrics) and per-metric status."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import and_, func, select
from sqlmodel import Session

from api.cityscore import reads
from api.departments import service as departments_service
from api.http.respond import Listing, rows_listing
from api.scorecards.schemas import SCORECARD_COLUMNS
from api.scoring.scores import MetricSpec, WindowScore, mean_score
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


class MetricRow(NamedTuple):
    id: int
    slug: str
    name: str
    department_id: int


class Present:
    """Today's definitions, values and materialised scores: what a scorecard reads by default.
    ``api.cityscore.known.KnownAt`` answers the same questions as known at an instant."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def values(self, metric_ids: Sequence[int]) -> Any:
        """The table the values of these metrics are read from (today: ``metric_values``)."""
        return V

    def metrics(self, department_ids: Sequence[int] | None = None) -> list[MetricRow]:
        stmt = select(M.c.id, M.c.slug, M.c.name, M.c.department_id).order_by(M.c.slug)
        if department_ids is not None:
            stmt = stmt.where(M.c.department_id.in_(list(department_ids)))
        return [MetricRow(*r) for r in self.session.execute(stmt)]

    def scores_for(
        self, metric_ids: Sequence[int], as_of: dt.date
    ) -> dict[int, dict[str, WindowScore]]:
        return reads.scores_for(self.session, metric_ids, as_of)

    def specs(self, metric_ids: Sequence[int]) -> dict[int, MetricSpec]:
        return reads.load_specs(self.session, metric_ids)

    def weekly_scores(
        self, metric_id: int, week_starts: Sequence[dt.date]
    ) -> dict[dt.date, float | None]:
        return reads.weekly_scores(self.session, metric_id, week_starts)


def lens(session: Session, instant: dt.datetime | None) -> Any:
    """What a read sees: today (``Present``) or the store as known at ``instant``."""
    if instant is None:
        return Present(session)
    from api.cityscore.known import KnownAt

    return KnownAt(session, instant)


def with_week_data(
    session: Session, metric_ids: list[int], as_of: dt.date, values: Any = V
) -> set[int]:
    """The metrics with at least one live value in the week window as of ``as_of``."""
    if not metric_ids:
        return set()
    week = windows_as_of(as_of)["week"]
    return set(
        session.execute(
            select(values.c.metric_id)
            .where(
                and_(
                    values.c.metric_id.in_(metric_ids),
                    ~values.c.deleted,
                    values.c.date.between(week.start, week.end),
                )
            )
            .group_by(values.c.metric_id)
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
    scores = reads.weekly_scores(session, metric_id, starts)
    return [(w, scores[w]) for w in starts]


def listing(session: Session, as_of: dt.date, instant: dt.datetime | None = None) -> Listing:
    seen = lens(session, instant)

    def load() -> list[tuple[Any, ...]]:
        depts = session.execute(
            select(D.c.id, D.c.slug, D.c.name, D.c.cabinet).order_by(D.c.slug)
        ).all()
        metric_rows = [(m.id, m.department_id) for m in seen.metrics()]
        by_dept: dict[int, list[int]] = defaultdict(list)
        for metric_id, dept_id in metric_rows:
            by_dept[dept_id].append(metric_id)
        scores = seen.scores_for([m for m, _ in metric_rows], as_of)
        rows = []
        for dept_id, slug, name, cabinet in depts:
            ids = by_dept[dept_id]
            means = [mean_score([scores[m][w].score for m in ids]) for w in WINDOW_NAMES]
            week_scores = [scores[m]["week"].score for m in ids]
            below = sum(1 for w in week_scores if w is not None and w < 1)
            rows.append((slug, name, cabinet, as_of, len(ids), *means, below))
        return rows

    return rows_listing(
        f"scorecards-{as_of.isoformat()}",
        SCORECARD_COLUMNS,
        load,
        parse_key=lambda key: str(key[0]),
        text_columns=frozenset({"name", "cabinet"}),
    )


def scorecard(
    session: Session,
    slug: str,
    as_of: dt.date,
    *,
    trend_weeks: int = TREND_WEEKS,
    instant: dt.datetime | None = None,
) -> dict[str, Any]:
    """A department's scorecard document (404 for an unknown department)."""
    departments_service.get(session, slug)
    return scorecards(session, as_of, [slug], trend_weeks=trend_weeks, instant=instant)[0]


def _latest_values(
    session: Session, ids: list[int], as_of: dt.date, values: Any = V
) -> dict[int, dict[str, Any]]:
    """Each metric's last live value before ``as_of``. Most metrics reported lately, so the
    recent days are searched first (a short range of the key); only the rest scan further."""
    recent = as_of - dt.timedelta(days=RECENT_DAYS)
    found = _latest_since(session, ids, as_of, recent, values)
    missing = [i for i in ids if i not in found]
    if missing:
        found.update(_latest_since(session, missing, as_of, None, values))
    return found


def _latest_since(
    session: Session, ids: list[int], as_of: dt.date, since: dt.date | None, values: Any
) -> dict[int, dict[str, Any]]:
    v = values
    where = and_(v.c.metric_id.in_(ids), ~v.c.deleted, v.c.date < as_of)
    if since is not None:
        where = and_(where, v.c.date >= since)
    last = (
        select(v.c.metric_id, func.max(v.c.date).label("day"))
        .where(where)
        .group_by(v.c.metric_id)
        .subquery()
    )
    live = v if v is V else v.alias("latest_known")
    rows = session.execute(
        select(live.c.metric_id, live.c.date, live.c.value).join(
            last, and_(live.c.metric_id == last.c.metric_id, live.c.date == last.c.day)
        )
    )
    return {metric_id: {"date": day, "value": value} for metric_id, day, value in rows}


def scorecards(
    session: Session,
    as_of: dt.date,
    slugs: list[str] | None = None,
    *,
    trend_weeks: int = TREND_WEEKS,
    instant: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The scorecards of these departments (all when None), by slug, with the same few
    queries for any number of them. ``trend_weeks=0`` leaves the weekly trend out. With
    ``instant``, from the values and definitions as known then."""
    seen = lens(session, instant)
    stmt = select(D.c.id, D.c.slug, D.c.name, D.c.cabinet).order_by(D.c.slug)
    if slugs is not None:
        stmt = stmt.where(D.c.slug.in_(slugs))
    depts = session.execute(stmt).all()
    metrics = seen.metrics([d.id for d in depts])
    ids = [m.id for m in metrics]
    scores = seen.scores_for(ids, as_of)
    values = seen.values(ids)
    week_data = with_week_data(session, ids, as_of, values)
    specs = seen.specs(ids)
    latest = _latest_values(session, ids, as_of, values) if ids else {}
    starts = week_starts(as_of, trend_weeks) if trend_weeks else []
    rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in metrics:
        s = scores[m.id]
        trend = seen.weekly_scores(m.id, starts) if starts else {}
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
