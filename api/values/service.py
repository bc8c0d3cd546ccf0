"""Daily values: one metric's series by calendar period, the bulk download, revisions.

Bulk reads never build ORM objects: rows come from Core selects in keyset order, and a full
CSV download on PostgreSQL is PostgreSQL's own ``COPY ... TO STDOUT`` streamed through.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import and_, select
from sqlmodel import Session

from api.changes import service as changes
from api.changes.cache import cached
from api.cityscore.known import raw_values_sql, values_at
from api.errors import BadRequest, NotFound
from api.http.csv import format_number
from api.http.respond import Listing
from api.metrics import service as metrics_service
from api.scoring.aggregates import Point, Series
from api.scoring.windows import month_start
from api.values.schemas import INTERVALS, PERIOD_COLUMNS, REVISION_COLUMNS, VALUE_COLUMNS
from db.dialect import copy_csv_out, fetch_all, is_postgres, mark, name, raw_param, stream
from db.models import Department, Metric, MetricValue, ValueRevision

V = MetricValue.__table__  # type: ignore[attr-defined]
M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]

COPY_CHUNK = 256 * 1024


# --- bulk values ---------------------------------------------------------------------------


class BulkFilter(NamedTuple):
    metric_id: int | None
    department: str | None
    start: dt.date | None
    end: dt.date | None
    updated_since: dt.datetime | None
    known_at: dt.datetime | None = None


def _source(dialect: str, instant: dt.datetime | None) -> tuple[str, list[Any]]:
    """``metric_values``, or the values as known at ``instant`` (same columns)."""
    if instant is None:
        return "metric_values", []
    return raw_values_sql(dialect, instant)


# The bulk query's columns per (store is PostgreSQL, CSV). PostgreSQL's CSV form is formatted
# by COPY itself. SQLite's rows are its raw cells, without joins: building text in SQLite
# (slugs joined per row, instants trimmed with rtrim() and replace()) cost more than the
# fetch, and Python formats them from per-metric and per-instant lookups (``_SqliteText``).
# Both give the same text for the same row.
_SQLITE_COLUMNS = (
    "v.metric_id, v.date, v.value, v.numerator, v.denominator, v.deleted, v.updated_at"
)
_BULK_COLUMNS = {
    (False, True): _SQLITE_COLUMNS,
    (False, False): _SQLITE_COLUMNS,
    # Native text output (DateStyle ISO is set for the COPY): to_char() would cost a third of
    # the export's time. The instant's "T" and "Z" are put in by ``_iso_instants``.
    (True, True): (
        "m.slug, d.slug, v.date, v.value, v.numerator, v.denominator, "
        "CASE WHEN v.deleted THEN 'true' ELSE 'false' END, v.updated_at"
    ),
    (True, False): (
        "m.slug, d.slug, v.date, v.value, v.numerator, v.denominator, v.deleted, v.updated_at"
    ),
}
_JOINS = "JOIN metrics m ON m.id = v.metric_id JOIN departments d ON d.id = m.department_id "


def _bulk_sql(
    dialect: str, f: BulkFilter, *, after: tuple[int, dt.date] | None, limit: int | None, csv: bool
) -> tuple[str, list[Any]]:
    """The bulk values query in the driver's own SQL, so rows skip ORM and type processing."""
    q = mark(dialect)
    where: list[str] = []
    source, params = _source(dialect, f.known_at)

    def add(clause: str, *values: Any) -> None:
        where.append(clause.replace("?", q))
        params.extend(raw_param(dialect, v) for v in values)

    if f.metric_id is not None:
        add("v.metric_id = ?", f.metric_id)
    if f.department is not None:
        add(
            "v.metric_id IN (SELECT m2.id FROM metrics m2 JOIN departments d2 "
            "ON d2.id = m2.department_id WHERE d2.slug = ?)",
            f.department,
        )
    if f.start is not None:
        add("v.date >= ?", f.start)
    if f.end is not None:
        add("v.date <= ?", f.end)
    if f.updated_since is not None:
        add("v.updated_at > ?", f.updated_since)
    else:
        where.append("NOT v.deleted")
    if after is not None:
        add("(v.metric_id, v.date) > (?, ?)", after[0], after[1])
    postgres = is_postgres(dialect)
    sql = (
        f"SELECT {_BULK_COLUMNS[postgres, csv]} FROM {source} v {_JOINS if postgres else ''}"
        f"WHERE {' AND '.join(where)} ORDER BY v.metric_id, v.date"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


_E15 = re.compile(rb"(?<=,)-?\d(?:\.\d+)?e\+15(?=,)")


def _python_exponents(chunk: bytes) -> bytes:
    """PostgreSQL writes 1e15 <= |x| < 1e16 with an exponent, Python's repr in full; make the
    COPY text identical to what the Python writer gives for the same double."""
    if b"e+15" not in chunk:
        return chunk
    return _E15.sub(lambda m: format_number(float(m.group())).encode(), chunk)


def _iso_instants(chunk: bytes) -> bytes:
    """COPY writes ``updated_at``, each row's last cell, as "2026-05-01 12:00:00.5": make it
    "2026-05-01T12:00:00.5Z". Two passes over the bytes cost the server's query less than
    ``replace()`` on every row (3.5M rows: 6.2 s became 5.1-5.7 s of its time). No other cell
    holds a space (slugs, ISO dates, numbers, booleans) and every row ends with the instant.
    """
    return chunk.replace(b" ", b"T").replace(b"\n", b"Z\n")


def bulk_listing(
    session: Session,
    *,
    metric: str | None,
    department: str | None,
    start: dt.date | None,
    end: dt.date | None,
    updated_since: dt.datetime | None,
    known_at: dt.datetime | None = None,
) -> Listing:
    """Every metric's daily values in (metric, date) order; tombstones only with updated_since.
    With ``known_at``, each value's version as it stood at that instant."""

    def id_of(slug: str) -> int | None:
        return metrics_service.find_metric_id(session, slug)

    def names() -> dict[int, tuple[str, str]]:
        return metrics_service.names_by_id(session)

    metric_id = None if metric is None else (id_of(metric) or -1)
    f = BulkFilter(metric_id, department, start, end, updated_since, known_at)

    def parse_key(key: list[Any]) -> tuple[int, dt.date]:
        slug, day = key
        found = id_of(str(slug))
        if found is None:
            raise ValueError("unknown metric in cursor")
        return found, dt.date.fromisoformat(str(day))

    def key_of(row: Sequence[Any]) -> list[Any]:
        day = row[2]
        return [row[0], day if isinstance(day, str) else day.isoformat()]

    return Listing(
        name="values",
        columns=VALUE_COLUMNS,
        fetch=lambda after, limit: _bulk_rows(session.connection(), f, (after, limit), names),
        key_of=key_of,
        key_width=2,
        parse_key=parse_key,
        copy_csv=lambda: _bulk_csv(session.connection(), f, names),
    )


class _SqliteText:
    """Text of SQLite's raw bulk cells: each metric's slugs and each instant formatted once.
    Bulk writes give many rows one instant; past ``MAX_INSTANTS`` the instants start over,
    so memory stays bounded whatever the rows hold."""

    MAX_INSTANTS = 4096

    def __init__(self, names: dict[int, tuple[str, str]]) -> None:
        self.names = names
        self.instants: dict[str, str] = {}
        self.tails: tuple[dict[str, str], dict[str, str]] = ({}, {})

    @functools.cached_property
    def prefixes(self) -> dict[int, str]:
        """Each metric's first two CSV cells. Only the CSV needs them: a JSON page of a
        1,000-metric catalogue would spend ~0.25 ms making them (6% of a 1-row page)."""
        return {m: f"{slug},{department}," for m, (slug, department) in self.names.items()}

    def instant(self, raw: str) -> str:
        """The instant as orjson writes one (no ".000000")."""
        if len(self.instants) >= self.MAX_INSTANTS:
            self.instants.clear()
        text = self.instants[raw] = raw.replace(" ", "T").replace(".000000", "") + "Z"
        return text

    def tail(self, deleted: int, raw: str) -> str:
        """A CSV row's last two cells; the fraction's trailing zeros dropped, as PostgreSQL's
        timestamp text does."""
        tails = self.tails[deleted]
        if len(tails) >= self.MAX_INSTANTS:
            tails.clear()
        flag = "true," if deleted else "false,"
        text = tails[raw] = flag + raw.rstrip("0").rstrip(".").replace(" ", "T") + "Z\n"
        return text

    def json_rows(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        names, instants, instant = self.names, self.instants, self.instant
        return [
            (*names[m], d, v, n, dn, x == 1, instants.get(ts) or instant(ts))
            for m, d, v, n, dn, x, ts in rows
        ]

    def csv_text(self, rows: list[Any]) -> str:
        # repr() is the shortest text that reads back as the same double; whole numbers
        # lose their ".0" and nulls become empty cells, as in PostgreSQL's COPY. Safe on the
        # whole chunk: no other cell can contain ".0," or "None".
        prefixes, tails, tail = self.prefixes, self.tails, self.tail
        text = "".join(
            [
                f"{prefixes[m]}{d},{v!r},{n!r},{dn!r},{tails[x].get(ts) or tail(x, ts)}"
                for m, d, v, n, dn, x, ts in rows
            ]
        )
        return text.replace(".0,", ",").replace("None", "")


def _bulk_rows(
    connection: Any,
    f: BulkFilter,
    page: tuple[Any, int | None],
    names: Callable[[], dict[int, tuple[str, str]]],
) -> Iterator[tuple[Any, ...]]:
    """JSON rows of the bulk query on the driver's own cursor (``page``: after, limit)."""
    after, limit = page
    sql, params = _bulk_sql(name(connection), f, after=after, limit=limit, csv=False)
    postgres = is_postgres(connection)
    text = None if postgres else _SqliteText(names())
    for rows in stream(connection, sql, params):
        yield from (rows if text is None else text.json_rows(rows))


def _bulk_csv(
    connection: Any, f: BulkFilter, names: Callable[[], dict[int, tuple[str, str]]]
) -> Iterator[bytes]:
    """The whole download as CSV bytes, formatted by the database or in one tight loop."""
    yield (",".join(VALUE_COLUMNS) + "\n").encode()
    sql, params = _bulk_sql(name(connection), f, after=None, limit=None, csv=True)
    if is_postgres(connection):
        for chunk in copy_csv_out(connection, sql, params, COPY_CHUNK):
            yield _iso_instants(_python_exponents(chunk))
        return
    text = _SqliteText(names())
    for rows in stream(connection, sql, params, 20_000):
        yield text.csv_text(rows).encode()


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
    known_at: dt.datetime | None = None,
) -> Listing:
    """One metric's values per calendar period, aggregated by the metric's own aggregation
    (pooled sums for ratios, medians, means...), clipped to [start, end]; empty periods omitted.
    With ``known_at``, from each value's version as it stood at that instant."""
    period_of(dt.date(2000, 1, 1), interval)  # validate before any work
    cache: list[list[tuple[Any, ...]]] = []
    src: Any = V if known_at is None else values_at(known_at, [metric_id])

    def load() -> list[tuple[Any, ...]]:
        stmt = (
            select(src.c.date, src.c.value, src.c.numerator, src.c.denominator)
            .where(and_(src.c.metric_id == metric_id, ~src.c.deleted))
            .order_by(src.c.date)
        )
        if start is not None:
            stmt = stmt.where(src.c.date >= start)
        if end is not None:
            stmt = stmt.where(src.c.date <= end)
        points = [Point(*r) for r in session.execute(stmt).all()]
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
            rows.append((slug, first, last, agg.value, agg.numerator, agg.denominator, agg.days))
        return rows

    def fetch(after: Any, limit: int | None) -> list[tuple[Any, ...]]:
        if interval == "day":
            return _daily_rows(session, metric_id, slug, (start, end, after), limit, known_at)
        if not cache:
            cache.append(load())
        rows = cache[0] if after is None else [r for r in cache[0] if r[1] > after]
        return rows if limit is None else rows[:limit]

    return Listing(
        name=f"{slug}-values-{interval}",
        columns=PERIOD_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[1] if isinstance(row[1], str) else row[1].isoformat()],
        key_width=1,
        parse_key=lambda key: dt.date.fromisoformat(str(key[0])),
    )


def _daily_rows(
    session: Session,
    metric_id: int,
    slug: str,
    bounds: tuple[dt.date | None, dt.date | None, dt.date | None],
    limit: int | None,
    known_at: dt.datetime | None,
) -> list[tuple[Any, ...]]:
    """Day rows ``(metric, start, end, value, numerator, denominator, 1)`` on the driver's own
    cursor, keyset-paged in SQL (SQLite hands back ISO date text, which JSON and CSV print).
    ``bounds``: first date, last date, and the keyset key (dates after it)."""
    start, end, after = bounds
    connection = session.connection()
    q = mark(connection)
    where = [f"metric_id = {q}", "NOT deleted"]
    source, source_params = _source(name(connection), known_at)
    params: list[Any] = [slug, *source_params, metric_id]
    for clause, day in (("date >= ", start), ("date <= ", end), ("date > ", after)):
        if day is not None:
            where.append(clause + q)
            params.append(raw_param(connection, day))
    sql = (
        f"SELECT {q}, date, date, value, numerator, denominator, 1 FROM {source} v "
        f"WHERE {' AND '.join(where)} ORDER BY date"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return fetch_all(connection, sql, params)


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
    """The metric's id and aggregation (remembered by a GET's worker until the next change)."""

    def load() -> tuple[int, str]:
        row = session.execute(select(M.c.id, M.c.aggregation).where(M.c.slug == slug)).first()
        if row is None:
            raise NotFound(f"No metric '{slug}'.")
        return int(row[0]), str(row[1])

    return cached(session, ("metric-ref", slug), load)


def bulk_scopes(session: Session, metric: str | None, department: str | None) -> list[str]:
    """The change scopes behind a bulk values query: exactly the metrics it can show.

    One metric: that metric's scope (its values, and its department for ``?department=``).
    One department: each of its metrics (the set itself is in the token, so a metric moving
    in or out changes it). A name that matches nothing, or no filter: every value and
    definition, since a later write can make rows appear.
    """
    if metric is not None:
        found = metrics_service.find_metric_id(session, metric)
        if found is not None:
            return [f"metric:{found}"]
        return ["values", "metrics"]
    if department is not None:
        scopes = _department_scopes(session, department)
        return scopes if scopes is not None else ["values", "metrics", "departments"]
    return ["values", "metrics"]


def _department_scopes(session: Session, slug: str) -> list[str] | None:
    """The scopes of a department's data, or None (an unknown slug is not remembered)."""

    def load() -> tuple[str, ...]:  # shared by requests: immutable
        dept = session.execute(select(D.c.id).where(D.c.slug == slug)).scalar()
        if dept is None:
            raise NotFound(f"No department '{slug}'.")
        return tuple(changes.department_scopes(session, dept))

    try:
        return list(cached(session, ("department-scopes", slug), load))
    except NotFound:
        return None
