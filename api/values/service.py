"""Daily values: one metric's series by calendar period, the bulk download, revisions.

Bulk reads never build ORM objects: rows come from Core selects in keyset order, and a full
CSV download on PostgreSQL is PostgreSQL's own ``COPY ... TO STDOUT`` streamed through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, select, tuple_
from sqlmodel import Session

from api.errors import BadRequest, NotFound
from api.http.respond import Listing
from api.scoring.aggregates import Point, Series
from api.scoring.windows import month_start
from api.values.schemas import INTERVALS, PERIOD_COLUMNS, REVISION_COLUMNS, VALUE_COLUMNS
from db.models import Department, Metric, MetricValue, ValueRevision

V = MetricValue.__table__  # type: ignore[attr-defined]
M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]

COPY_CHUNK = 256 * 1024
ISO_INSTANT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


# --- bulk values ---------------------------------------------------------------------------


def bulk_listing(
    session: Session,
    *,
    metric: str | None,
    department: str | None,
    start: dt.date | None,
    end: dt.date | None,
    updated_since: dt.datetime | None,
) -> Listing:
    """Every metric's daily values in (metric, date) order; tombstones only with updated_since."""
    slugs = dict(session.execute(select(M.c.id, M.c.slug)).all())
    ids = {slug: id_ for id_, slug in slugs.items()}
    conditions: list[Any] = []
    if metric is not None:
        conditions.append(V.c.metric_id == ids.get(metric, -1))
    if department is not None:
        dept_ids = select(M.c.id).join(D, D.c.id == M.c.department_id).where(D.c.slug == department)
        conditions.append(V.c.metric_id.in_(dept_ids))
    if start is not None:
        conditions.append(V.c.date >= start)
    if end is not None:
        conditions.append(V.c.date <= end)
    if updated_since is not None:
        conditions.append(V.c.updated_at > updated_since)
    else:
        conditions.append(~V.c.deleted)
    columns = (
        V.c.metric_id,
        V.c.date,
        V.c.value,
        V.c.numerator,
        V.c.denominator,
        V.c.deleted,
        V.c.updated_at,
    )

    def fetch(after: Any, limit: int | None) -> Iterator[tuple[Any, ...]]:
        stmt = select(*columns).where(and_(*conditions)).order_by(V.c.metric_id, V.c.date)
        if after is not None:
            stmt = stmt.where(tuple_(V.c.metric_id, V.c.date) > tuple_(*after))
        # A page is small; a full download streams from a server-side cursor.
        stmt = stmt.limit(limit) if limit is not None else stmt.execution_options(yield_per=10_000)
        result = session.execute(stmt)
        for part in result.partitions(10_000) if limit is None else [result.all()]:
            for row in part:
                yield (slugs[row[0]], *row[1:])

    def parse_key(key: list[Any]) -> tuple[int, dt.date]:
        slug, day = key
        if slug not in ids:
            raise ValueError("unknown metric in cursor")
        return ids[slug], dt.date.fromisoformat(str(day))

    copy_csv = None
    if session.get_bind().dialect.name == "postgresql":
        copy_csv = _copy_csv(session, conditions)

    return Listing(
        name="values",
        columns=VALUE_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[0], row[1].isoformat()],
        key_width=2,
        parse_key=parse_key,
        copy_csv=copy_csv,
    )


def _copy_csv(session: Session, conditions: list[Any]) -> Any:
    """PostgreSQL's COPY of the same rows, formatted exactly as the Python CSV writer would."""
    stmt = (
        select(
            M.c.slug,
            V.c.date,
            V.c.value,
            V.c.numerator,
            V.c.denominator,
            V.c.deleted,
            V.c.updated_at,
        )
        .join(M, M.c.id == V.c.metric_id)
        .where(and_(*conditions))
        .order_by(V.c.metric_id, V.c.date)
    )
    connection = session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    inner = str(compiled)
    query = (
        "COPY (SELECT slug, to_char(date, 'YYYY-MM-DD'), value, numerator, denominator, "
        "CASE WHEN deleted THEN 'true' ELSE 'false' END, "
        f"to_char(updated_at, '{ISO_INSTANT}') FROM ({inner}) AS q) "
        "TO STDOUT WITH (FORMAT csv)"
    )

    def stream() -> Iterator[bytes]:
        raw: Any = connection.connection.driver_connection
        yield (",".join(VALUE_COLUMNS) + "\n").encode()
        buffer = bytearray()
        with raw.cursor() as cur, cur.copy(query) as copy:
            for data in copy:
                buffer += data
                if len(buffer) >= COPY_CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
        if buffer:
            yield bytes(buffer)

    return stream


# --- one metric by period ------------------------------------------------------------------


def period_of(day: dt.date, interval: str) -> tuple[dt.date, dt.date]:
    """The calendar period (Monday-Sunday week, month, quarter, year) containing ``day``."""
    if interval == "day":
        return day, day
    if interval == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if interval == "month":
        start = month_start(day)
        return start, month_start(day, -1) - dt.timedelta(days=1)
    if interval == "quarter":
        start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        return start, month_start(start, -3) - dt.timedelta(days=1)
    if interval == "year":
        return dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)
    raise BadRequest(f"interval must be one of {', '.join(INTERVALS)}; got {interval!r}.")


def metric_values_listing(
    session: Session,
    metric_id: int,
    aggregation: str,
    slug: str,
    *,
    start: dt.date | None,
    end: dt.date | None,
    interval: str,
) -> Listing:
    """One metric's values per calendar period, aggregated by the metric's own aggregation
    (pooled sums for ratios, medians, means...), clipped to [start, end]; empty periods omitted."""
    period_of(dt.date(2000, 1, 1), interval)  # validate before any work
    cache: list[list[tuple[Any, ...]]] = []

    def load() -> list[tuple[Any, ...]]:
        stmt = (
            select(V.c.date, V.c.value, V.c.numerator, V.c.denominator)
            .where(and_(V.c.metric_id == metric_id, ~V.c.deleted))
            .order_by(V.c.date)
        )
        if start is not None:
            stmt = stmt.where(V.c.date >= start)
        if end is not None:
            stmt = stmt.where(V.c.date <= end)
        points = [Point(*r) for r in session.execute(stmt).all()]
        if interval == "day":
            return [(p.date, p.date, p.value, p.numerator, p.denominator, 1) for p in points]
        series = Series(points)
        periods: list[tuple[dt.date, dt.date]] = []
        for p in points:
            first, last = period_of(p.date, interval)
            if not periods or periods[-1][0] != first:
                periods.append((first, last))
        rows = []
        for first, last in periods:
            first = max(first, start) if start else first
            last = min(last, end) if end else last
            agg = series.window(aggregation, first, last)
            rows.append((first, last, agg.value, agg.numerator, agg.denominator, agg.days))
        return rows

    def fetch(after: Any, limit: int | None) -> list[tuple[Any, ...]]:
        if not cache:
            cache.append(load())
        rows = cache[0] if after is None else [r for r in cache[0] if r[0] > after]
        return rows if limit is None else rows[:limit]

    return Listing(
        name=f"{slug}-values-{interval}",
        columns=PERIOD_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[0].isoformat()],
        key_width=1,
        parse_key=lambda key: dt.date.fromisoformat(str(key[0])),
    )


# --- revisions -----------------------------------------------------------------------------


def revisions_listing(session: Session, metric_id: int, slug: str, day: dt.date) -> Listing:
    """Every version of one value, oldest first; the last one is the current version."""
    old = session.execute(
        select(
            R.c.id,
            R.c.value,
            R.c.numerator,
            R.c.denominator,
            R.c.deleted,
            R.c.batch_id,
            R.c.recorded_at,
        )
        .where(and_(R.c.metric_id == metric_id, R.c.date == day))
        .order_by(R.c.recorded_at, R.c.id)
    ).all()
    current = session.execute(
        select(
            V.c.value, V.c.numerator, V.c.denominator, V.c.deleted, V.c.batch_id, V.c.updated_at
        ).where(and_(V.c.metric_id == metric_id, V.c.date == day))
    ).first()
    if current is None and not old:
        raise NotFound(f"Metric '{slug}' has no value on {day}.")
    rows: list[tuple[Any, ...]] = [(slug, day, *r[1:], False) for r in old]
    if current is not None:
        rows.append((slug, day, *current, True))
    numbered = list(enumerate(rows))

    def fetch(after: Any, limit: int | None) -> list[tuple[Any, ...]]:
        picked = [r for i, r in numbered if after is None or i > after]
        return picked if limit is None else picked[:limit]

    index = {id(r): i for i, r in numbered}
    return Listing(
        name=f"{slug}-{day}-revisions",
        columns=REVISION_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [index[id(row)]],
        key_width=1,
        parse_key=lambda key: int(key[0]),
    )


def metric_ref(session: Session, slug: str) -> tuple[int, str]:
    row = session.execute(select(M.c.id, M.c.aggregation).where(M.c.slug == slug)).first()
    if row is None:
        raise NotFound(f"No metric '{slug}'.")
    return int(row[0]), str(row[1])
