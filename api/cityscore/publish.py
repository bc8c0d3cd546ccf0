"""Read side of CityScore: the as-of document, history, and a metric's score history."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from api.cityscore import reads
from api.cityscore.history import HistoryTable
from api.cityscore.known import KnownAt
from api.cityscore.materialise import C, M
from api.errors import ServiceUnavailable
from api.http.respond import Listing, Row, rows_listing
from api.scoring.scores import metric_logic
from api.scoring.windows import WINDOW_NAMES, windows_as_of
from db.models import Department

D = Department.__table__  # type: ignore[attr-defined]


def cityscore_document(session: Session, as_of: dt.date) -> dict[str, Any]:
    rows = session.execute(
        select(
            M.c.id,
            M.c.slug,
            M.c.name,
            D.c.slug.label("department"),
            M.c.direction,
            M.c.aggregation,
            M.c.reference,
        )
        .join(D, D.c.id == M.c.department_id)
        .where(M.c.in_cityscore)
        .order_by(M.c.slug)
    ).all()
    ids = [r.id for r in rows]
    scores = reads.scores_for(session, ids, as_of)
    specs = reads.load_specs(session, ids)
    daily = session.execute(
        select(C.c.day, C.c.week, C.c.month, C.c.quarter).where(C.c.as_of == as_of)
    ).first()
    metrics = []
    for r in rows:
        s = scores[r.id]
        metrics.append(
            {
                "metric": r.slug,
                "name": r.name,
                "department": r.department,
                "target": specs[r.id].target_on(as_of),
                "metric_logic": metric_logic(r.direction, r.aggregation, r.reference),
                **{w: s[w]._asdict() for w in WINDOW_NAMES},
            }
        )
    return {
        "as_of": as_of,
        "windows": window_bounds(as_of),
        "score": dict(zip(WINDOW_NAMES, daily or (None,) * 4, strict=True)),
        "metrics": metrics,
    }


def window_bounds(as_of: dt.date) -> dict[str, dict[str, dt.date]]:
    """The four windows' first and last days as of a date, as the document shows them."""
    windows = windows_as_of(as_of)
    return {w: {"start": windows[w].start, "end": windows[w].end} for w in WINDOW_NAMES}


def cityscore_csv_rows(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for m in doc["metrics"]:
        cells: list[Any] = [m["metric"], m["name"], m["department"], doc["as_of"], m["target"]]
        cells.append(m["metric_logic"])
        for w in WINDOW_NAMES:
            cells += [m[w]["score"], m[w]["numerator"], m[w]["denominator"]]
        out.append(tuple(cells))
    return out


def _date_listing(
    name: str,
    columns: tuple[str, ...],
    load: Callable[[], Sequence[Row]],
    json_rows: Callable[[Sequence[Row]], bytes] | None = None,
) -> Listing:
    """A listing over rows computed on first use, keyed by their first column (an as-of date)."""
    return rows_listing(
        name,
        columns,
        load,
        parse_key=lambda key: dt.date.fromisoformat(str(key[0])),
        json_rows=json_rows,
    )


# CityScore's history as known at an instant is computed on read from every CityScore
# metric's values: ~28 s for a year of 1,000 metrics on the bench host. One at a time per
# worker, so such requests cannot take every thread and core; the others are told to retry.
KNOWN_HISTORY = threading.BoundedSemaphore(1)


def _known_history(session: Session, instant: dt.datetime, start: dt.date, end: dt.date) -> Any:
    if not KNOWN_HISTORY.acquire(blocking=False):
        raise ServiceUnavailable(
            "This worker is computing another CityScore history as known at an instant; "
            "retry shortly.",
            headers={"Retry-After": "5"},
        )
    try:
        return list(KnownAt(session, instant).cityscore_history(start, end))
    finally:
        KNOWN_HISTORY.release()


def history_listing(
    session: Session,
    start: dt.date,
    end: dt.date,
    instant: dt.datetime | None = None,
    memory: HistoryTable | None = None,
) -> Listing:
    """CityScore per as-of date: materialised (from ``memory``, the table of the version the
    caller read, when given), or as known at ``instant``."""
    from api.cityscore.schemas import HISTORY_COLUMNS

    def load() -> list[Row]:
        if instant is not None:
            rows: list[Row] = _known_history(session, instant, start, end)
            return rows
        if memory is not None:
            return memory.between(start, end)
        return list(reads.cityscore_history(session, start, end))

    json_rows = memory.json_rows if memory is not None and instant is None else None
    return _date_listing("cityscore-history", HISTORY_COLUMNS, load, json_rows)


def metric_scores_listing(
    session: Session,
    metric_id: int,
    slug: str,
    start: dt.date,
    end: dt.date,
    instant: dt.datetime | None = None,
) -> Listing:
    """A metric's window scores per as-of date: materialised, or as known at ``instant``."""
    from api.cityscore.schemas import HISTORY_COLUMNS

    def load() -> list[tuple[Any, ...]]:
        if instant is not None:
            history = KnownAt(session, instant).metric_history(metric_id, start, end)
        else:
            history = reads.metric_history(session, metric_id, start, end)
        return [(d, *(s[w].score for w in WINDOW_NAMES)) for d, s in history]

    return _date_listing(f"{slug}-scores", HISTORY_COLUMNS, load)
