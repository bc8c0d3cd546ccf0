"""Metrics: definitions with time-versioned targets; Boston's metric_logic is derived."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlmodel import Session, col

from api.changes import service as changes
from api.changes.cache import cached
from api.cityscore import materialise
from api.errors import Conflict, NotFound, Unprocessable
from api.http.respond import Listing
from api.metrics import revisions
from api.metrics.schemas import METRIC_COLUMNS, MetricIn, targets_cell
from api.scoring.aggregates import RATIO_AGGREGATIONS
from api.scoring.scores import MetricSpec, metric_logic
from db.models import Department, Metric, MetricTarget, MetricValue, utcnow
from db.session import begin_write

M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]

SCOPES = ("metrics",)

_BASE_COLUMNS = (
    M.c.id,
    M.c.slug,
    M.c.name,
    M.c.description,
    D.c.slug.label("department"),
    M.c.unit,
    M.c.direction,
    M.c.aggregation,
    M.c.reference,
    M.c.baseline_years,
    M.c.in_cityscore,
    M.c.source_url,
    M.c.updated_at,
)


def targets_for(session: Session, metric_ids: list[int]) -> dict[int, list[tuple[dt.date, float]]]:
    out: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    if not metric_ids:
        return out
    rows = session.execute(
        select(TG.c.metric_id, TG.c.effective_from, TG.c.value)
        .where(TG.c.metric_id.in_(metric_ids))
        .order_by(TG.c.metric_id, TG.c.effective_from)
    )
    for metric_id, day, value in rows:
        out[metric_id].append((day, value))
    return out


def _public_rows(session: Session, rows: list[Any], today: dt.date) -> list[tuple[Any, ...]]:
    targets = targets_for(session, [r.id for r in rows])
    out = []
    for r in rows:
        spec = MetricSpec(r.direction, r.aggregation, r.reference, tuple(targets[r.id]))
        out.append(
            (
                r.slug,
                r.name,
                r.description,
                r.department,
                r.unit,
                r.direction,
                r.aggregation,
                r.reference,
                spec.target_on(today),
                [{"effective_from": d, "value": v} for d, v in targets[r.id]],
                r.baseline_years,
                r.in_cityscore,
                metric_logic(r.direction, r.aggregation, r.reference),
                r.source_url,
                r.updated_at,
            )
        )
    return out


def listing(
    session: Session,
    today: dt.date,
    *,
    department: str | None = None,
    in_cityscore: bool | None = None,
    q: str | None = None,
) -> Listing:
    def fetch(after: Any, limit: int | None) -> list[Any]:
        stmt = select(*_BASE_COLUMNS).join(D, D.c.id == M.c.department_id).order_by(M.c.slug)
        if department is not None:
            stmt = stmt.where(D.c.slug == department)
        if in_cityscore is not None:
            stmt = stmt.where(M.c.in_cityscore == in_cityscore)
        if q:
            like = (
                "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            stmt = stmt.where(
                or_(
                    func.lower(M.c.slug).like(like, escape="\\"),
                    func.lower(M.c.name).like(like, escape="\\"),
                    func.lower(func.coalesce(M.c.description, "")).like(like, escape="\\"),
                )
            )
        if after is not None:
            stmt = stmt.where(M.c.slug > after)
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = _public_rows(session, list(session.execute(stmt)), today)
        return rows

    def fetch_for_csv(after: Any, limit: int | None) -> list[Any]:
        return [(*r[:9], targets_cell(r[9]), *r[10:]) for r in fetch(after, limit)]

    return Listing(
        name="metrics",
        columns=METRIC_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[0]],
        key_width=1,
        parse_key=lambda key: str(key[0]),
        text_columns=frozenset({"name", "description", "unit", "source_url"}),
        csv_fetch=fetch_for_csv,
    )


def get_row(session: Session, slug: str) -> Any:
    row = session.execute(
        select(*_BASE_COLUMNS).join(D, D.c.id == M.c.department_id).where(M.c.slug == slug)
    ).first()
    if row is None:
        raise NotFound(f"No metric '{slug}'.")
    return row


def get_public(session: Session, slug: str, today: dt.date) -> dict[str, Any]:
    row = get_row(session, slug)
    return dict(zip(METRIC_COLUMNS, _public_rows(session, [row], today)[0], strict=True))


def metric_id(session: Session, slug: str) -> int:
    """The metric's id (a 404 problem when there is none); a GET's session remembers it until
    the next change anywhere (``api.changes.cache``)."""

    def load() -> int:
        found = session.execute(select(M.c.id).where(M.c.slug == slug)).scalar()
        if found is None:
            raise NotFound(f"No metric '{slug}'.")
        return int(found)

    return cached(session, ("metric-id", slug), load)


def find_metric_id(session: Session, slug: str) -> int | None:
    """The metric's id, or None (an unknown slug is not remembered: clients choose them)."""
    try:
        return metric_id(session, slug)
    except NotFound:
        return None


def names_by_id(session: Session) -> dict[int, tuple[str, str]]:
    """Every metric's (slug, department slug) by id; a GET's session remembers them until the
    next change anywhere. Shared by requests: read, never change."""

    def load() -> dict[int, tuple[str, str]]:
        rows = session.execute(
            select(M.c.id, M.c.slug, D.c.slug).join(D, D.c.id == M.c.department_id)
        )
        return {id_: (slug, department) for id_, slug, department in rows}

    return cached(session, ("metric-names",), load)


def ids_by_slug(session: Session) -> dict[str, int]:
    return {slug: id_ for id_, slug in session.execute(select(M.c.id, M.c.slug))}


def put(session: Session, slug: str, body: MetricIn, today: dt.date) -> tuple[dict[str, Any], bool]:
    """Create or fully replace a metric; rescore it when anything scoring depends on changed."""
    begin_write(session)
    dept_id = session.execute(select(D.c.id).where(D.c.slug == body.department)).scalar()
    if dept_id is None:
        raise Unprocessable(
            f"No department '{body.department}'.",
            errors=[{"row": None, "field": "department", "message": "unknown department"}],
        )
    fields = body.model_dump(exclude={"department", "targets"})
    fields["department_id"] = dept_id
    new_targets = sorted((t.effective_from, t.value) for t in body.targets)
    metric = session.scalars(select(Metric).where(col(Metric.slug) == slug)).first()
    created = metric is None
    old_targets: list[tuple[dt.date, float]] = []
    if metric is None:
        metric = Metric(slug=slug, updated_at=utcnow(), **fields)
        session.add(metric)
        session.flush()
        changed = rescore = True
        in_cityscore_changed = False
    else:
        assert metric.id is not None
        old_targets = targets_for(session, [metric.id])[metric.id]
        if (metric.aggregation in RATIO_AGGREGATIONS) != (body.aggregation in RATIO_AGGREGATIONS):
            has_values = session.execute(
                select(V.c.metric_id).where(and_(V.c.metric_id == metric.id, ~V.c.deleted)).limit(1)
            ).first()
            if has_values:
                raise Conflict(
                    "This metric has values; its aggregation cannot switch between "
                    "numerator/denominator and single-value kinds."
                )
        scoring_fields = ("direction", "aggregation", "reference", "baseline_years")
        rescore = old_targets != new_targets or any(
            getattr(metric, f) != fields[f] for f in scoring_fields
        )
        in_cityscore_changed = metric.in_cityscore != fields["in_cityscore"]
        changed = rescore or any(getattr(metric, k) != v for k, v in fields.items())
        if changed:
            for k, v in fields.items():
                setattr(metric, k, v)
            metric.updated_at = utcnow()
    assert metric.id is not None
    if created or old_targets != new_targets:
        session.execute(delete(TG).where(TG.c.metric_id == metric.id))
        if new_targets:
            session.execute(
                TG.insert(),
                [{"metric_id": metric.id, "effective_from": d, "value": v} for d, v in new_targets],
            )
    session.flush()
    if changed:
        revisions.record(session, [metric.id], metric.updated_at)
        changes.bump(session, ["metrics", f"metric:{metric.id}", "scores"])
    if rescore and not created:
        materialise.rescore_metrics(session, [metric.id])
    elif in_cityscore_changed:
        materialise.refresh_cityscore_all(session)
    return get_public(session, slug, today), created
