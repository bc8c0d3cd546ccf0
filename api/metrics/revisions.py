"""Metric definitions through time: every version kept, and the one in force at an instant.

A PUT that changes a definition (or creates one) snapshots the new version into
``metric_revisions`` in the same transaction, so the latest revision is always the current
definition and ``valid_from`` is when it was written. ``as_known_at`` readers ask for the
versions in force at an instant; ``GET /v1/metrics/{slug}/revisions`` lists them all.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from api.http.respond import Listing, rows_listing
from api.metrics.schemas import MetricRevisionOut, targets_cell
from api.scoring.scores import MetricSpec, metric_logic
from db.models import Department, Metric, MetricRevision, MetricTarget

M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
MR = MetricRevision.__table__  # type: ignore[attr-defined]

FIELDS = (
    "slug",
    "name",
    "description",
    "department_id",
    "unit",
    "direction",
    "aggregation",
    "reference",
    "baseline_years",
    "in_cityscore",
    "source_url",
)
REVISION_COLUMNS = tuple(MetricRevisionOut.model_fields)


@dataclass(frozen=True)
class Definition:
    """One version of a metric definition (what scoring and publication need of it)."""

    metric_id: int
    slug: str
    name: str
    department_id: int
    in_cityscore: bool
    spec: MetricSpec

    @property
    def metric_logic(self) -> str:
        return metric_logic(self.spec.direction, self.spec.aggregation, self.spec.reference)


def record(session: Session, metric_ids: Iterable[int], at: dt.datetime) -> None:
    """Keep the current definitions of these metrics as their newest versions, valid from
    ``at`` (one insert for all of them)."""
    ids = sorted(set(metric_ids))
    if not ids:
        return
    targets: dict[int, list[list[Any]]] = defaultdict(list)
    for metric_id, day, value in session.execute(
        select(TG.c.metric_id, TG.c.effective_from, TG.c.value)
        .where(TG.c.metric_id.in_(ids))
        .order_by(TG.c.metric_id, TG.c.effective_from)
    ):
        targets[metric_id].append([day.isoformat(), value])
    rows = [
        {"metric_id": r.id, "valid_from": at, "targets": targets[r.id], **r._mapping}
        for r in session.execute(select(M.c.id, *(M.c[f] for f in FIELDS)).where(M.c.id.in_(ids)))
    ]
    for row in rows:
        row.pop("id")
    session.execute(MR.insert(), rows)


def _spec(row: Any) -> MetricSpec:
    targets = tuple((dt.date.fromisoformat(d), float(v)) for d, v in row.targets)
    return MetricSpec(row.direction, row.aggregation, row.reference, targets, row.baseline_years)


def definitions_at(
    session: Session, instant: dt.datetime, metric_ids: Sequence[int] | None = None
) -> dict[int, Definition]:
    """Each metric's definition in force at ``instant`` (metrics not yet defined are absent)."""
    latest = select(MR.c.metric_id, func.max(MR.c.id).label("id")).where(MR.c.valid_from <= instant)
    if metric_ids is not None:
        latest = latest.where(MR.c.metric_id.in_(list(metric_ids)))
    latest_q = latest.group_by(MR.c.metric_id).subquery()
    rows = session.execute(select(MR).join(latest_q, latest_q.c.id == MR.c.id))
    return {
        r.metric_id: Definition(
            r.metric_id, r.slug, r.name, r.department_id, bool(r.in_cityscore), _spec(r)
        )
        for r in rows
    }


def first_instant(session: Session) -> dt.datetime | None:
    """When the oldest kept definition was written (before it, nothing is known)."""
    found: dt.datetime | None = session.execute(select(func.min(MR.c.valid_from))).scalar()
    return found


def listing(session: Session, metric_id: int, slug: str) -> Listing:
    """Every version of one metric's definition, oldest first; the last is current."""
    rows = session.execute(
        select(MR, D.c.slug.label("department"))
        .join(D, D.c.id == MR.c.department_id, isouter=True)
        .where(MR.c.metric_id == metric_id)
        .order_by(MR.c.id)
    ).all()
    last = len(rows) - 1

    def public(n: int, r: Any) -> tuple[Any, ...]:
        fields = {
            **r._mapping,
            "revision": n + 1,
            "current": n == last,
            "in_cityscore": bool(r.in_cityscore),
            "targets": [
                {"effective_from": dt.date.fromisoformat(d), "value": v} for d, v in r.targets
            ],
            "metric_logic": metric_logic(r.direction, r.aggregation, r.reference),
        }
        return tuple(fields[c] for c in REVISION_COLUMNS)

    out = [public(n, r) for n, r in enumerate(rows)]
    at = REVISION_COLUMNS.index("targets")
    return rows_listing(
        f"{slug}-revisions",
        REVISION_COLUMNS,
        lambda: out,
        parse_key=lambda key: int(key[0]),
        text_columns=frozenset({"name", "description", "unit", "source_url"}),
        csv_row=lambda r: (*r[:at], targets_cell(r[at]), *r[at + 1 :]),
    )


def metric_ids_named(session: Session) -> dict[str, int]:
    """Current metric names to ids (Boston's exports name metrics, not slugs)."""
    return {name: id_ for id_, name in session.execute(select(M.c.id, M.c.name))}
