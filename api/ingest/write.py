"""Writing a validated batch set-based: compare it with the current rows, keep the superseded
versions as revisions, upsert the new current rows.

Each metric's current values come in one (locked) query; the writes are one bulk insert of
superseded versions into ``value_revisions`` plus one upsert of the new current rows (binary
COPY into a staging table and one ``INSERT ... SELECT ... ON CONFLICT`` on PostgreSQL; one
``executemany`` upsert on SQLite). Concurrency: the caller holds ``begin_write``; on
PostgreSQL a transaction-scoped advisory lock per touched metric (in id order) is taken
before the current values are read.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, Table, select, text
from sqlalchemy.types import BigInteger, Boolean, Date, DateTime, Float, Integer
from sqlmodel import Session

from api.ingest.validate import Record
from db.dialect import advisory_locks, bulk_insert, insert, is_postgres, stream
from db.models import IngestBatch, MetricValue, ValueRevision

V = MetricValue.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]
B = IngestBatch.__table__  # type: ignore[attr-defined]

VALUE_COLUMNS = ("metric_id", "date", "value", "numerator", "denominator", "deleted")
CURRENT_COLUMNS = (*VALUE_COLUMNS, "updated_at", "batch_id")
REVISION_COLUMNS = (*VALUE_COLUMNS, "batch_id", "key_id", "recorded_at")
IN_CHUNK = 500
INGEST_LOCK_SPACE = 0x494E4753  # "INGS": the first key of the per-metric advisory locks

# The PostgreSQL staging table: a session-local temp table dropped at commit.
STAGE = Table(
    "cityscore_ingest_stage",
    MetaData(),
    Column("metric_id", Integer),
    Column("date", Date),
    Column("value", Float),
    Column("numerator", Float),
    Column("denominator", Float),
    Column("deleted", Boolean),
    Column("updated_at", DateTime),
    Column("batch_id", BigInteger),
)
_STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE.name} (metric_id integer, date date, "
    "value double precision, numerator double precision, denominator double precision, "
    "deleted boolean, updated_at timestamp, batch_id bigint) ON COMMIT DROP"
)
_STAGE_UPSERT = (
    f"INSERT INTO metric_values ({', '.join(CURRENT_COLUMNS)}) "
    f"SELECT {', '.join(CURRENT_COLUMNS)} FROM {STAGE.name} "
    "ON CONFLICT (metric_id, date) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in CURRENT_COLUMNS[2:])
)


# --- reading the batch's metrics ------------------------------------------------------


@dataclass
class Plan:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    current: list[Record] = field(default_factory=list)  # new current rows to upsert
    superseded: list[Any] = field(default_factory=list)  # old rows to keep as revisions
    touched: dict[int, set[dt.date]] = field(default_factory=lambda: defaultdict(set))
    reshaped: set[int] = field(default_factory=set)  # metrics given or losing a live date

    @property
    def changed(self) -> bool:
        return bool(self.current)


# Columns of a current row as ``plan`` reads it (tuples, by index: 50,000 rows stay cheap).
OLD_COLUMNS = (
    V.c.metric_id,
    V.c.date,
    V.c.value,
    V.c.numerator,
    V.c.denominator,
    V.c.deleted,
    V.c.batch_id,
    V.c.updated_at,
)
_DATE, _VALUE, _NUMERATOR, _DENOMINATOR, _DELETED, _BATCH, _UPDATED = 1, 2, 3, 4, 5, 6, 7


def lock_metrics(session: Session, metric_ids: Iterable[int]) -> None:
    """On PostgreSQL, take a transaction-scoped advisory lock per metric, in id order.

    Writers are already serialised by ``begin_write``; these locks make the read-compare-write
    of one metric's values safe on their own too, without marking every row FOR UPDATE.
    """
    advisory_locks(session, INGEST_LOCK_SPACE, metric_ids)


_CURRENT_SQL = (
    "SELECT v.metric_id, v.date, v.value, v.numerator, v.denominator, v.deleted, v.batch_id, "
    "v.updated_at FROM metric_values v JOIN unnest(%s::int[], %s::date[]) AS k(metric_id, date) "
    "ON v.metric_id = k.metric_id AND v.date = k.date"
)


def _current_rows(
    session: Session, by_metric: dict[int, list[Record]]
) -> dict[int, dict[dt.date, Any]]:
    """The current rows of the batch's (metric, date) pairs, by metric and date.

    PostgreSQL: one join against the pairs sent as two arrays (one round trip for any batch).
    SQLite (in-process, no round trips): one range query per metric.
    """
    out: dict[int, dict[dt.date, Any]] = defaultdict(dict)
    if is_postgres(session):
        ids = [m for m, recs in by_metric.items() for _ in recs]
        days = [r.date for recs in by_metric.values() for r in recs]
        for rows in stream(session, _CURRENT_SQL, (ids, days)):
            for row in rows:
                out[row[0]][row[_DATE]] = row
        return out
    for metric_id, recs in by_metric.items():
        dates = {r.date for r in recs}
        stmt = select(*OLD_COLUMNS).where(
            V.c.metric_id == metric_id, V.c.date.between(min(dates), max(dates))
        )
        out[metric_id] = {r[_DATE]: r for r in session.execute(stmt) if r[_DATE] in dates}
    return out


def plan(session: Session, records: Sequence[Record], *, lock: bool) -> Plan:
    """Compare the batch with the current rows (read with one range query per metric)."""
    by_metric: dict[int, list[Record]] = defaultdict(list)
    for rec in records:
        by_metric[rec.metric_id].append(rec)
    if lock:
        lock_metrics(session, by_metric)
    out = Plan()
    existing = _current_rows(session, by_metric)
    for metric_id in sorted(by_metric):
        recs = by_metric[metric_id]
        current = existing.get(metric_id, {})
        touched = out.touched[metric_id]
        for rec in recs:
            old = current.get(rec.date)
            if rec.deleted:
                if old is None or old[_DELETED]:
                    out.unchanged += 1
                    continue
                out.deleted += 1
                out.reshaped.add(metric_id)
            elif old is None or old[_DELETED]:
                out.created += 1
                out.reshaped.add(metric_id)
            elif (
                old[_VALUE] == rec.value
                and old[_NUMERATOR] == rec.numerator
                and old[_DENOMINATOR] == rec.denominator
            ):
                out.unchanged += 1
                continue
            else:
                out.updated += 1
            if old is not None:
                out.superseded.append(old)
            out.current.append(rec)
            touched.add(rec.date)
        if not touched:
            del out.touched[metric_id]
    return out


def _batch_keys(session: Session, batch_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(batch_ids))
    out: dict[int, int] = {}
    for i in range(0, len(ids), IN_CHUNK):
        rows = session.execute(select(B.c.id, B.c.key_id).where(B.c.id.in_(ids[i : i + IN_CHUNK])))
        out.update({r.id: r.key_id for r in rows})
    return out


def write_revisions(session: Session, superseded: Sequence[Any]) -> None:
    if not superseded:
        return
    keys = _batch_keys(session, (r[_BATCH] for r in superseded if r[_BATCH] is not None))
    # (metric_id, date, value, numerator, denominator, deleted, batch_id) + key_id, recorded_at
    rows = (
        (*r[:_DELETED], bool(r[_DELETED]), r[_BATCH], keys.get(r[_BATCH]), r[_UPDATED])
        for r in superseded
    )
    bulk_insert(session.connection(), R, REVISION_COLUMNS, rows)


def upsert_current(
    session: Session, records: Sequence[Record], now: dt.datetime, batch_id: int
) -> None:
    if not records:
        return
    conn = session.connection()
    rows = [
        (r.metric_id, r.date, r.value, r.numerator, r.denominator, r.deleted, now, batch_id)
        for r in records
    ]
    if is_postgres(conn):
        conn.exec_driver_sql(_STAGE_DDL)
        conn.exec_driver_sql(f"TRUNCATE {STAGE.name}")
        bulk_insert(conn, STAGE, CURRENT_COLUMNS, rows)
        conn.execute(text(_STAGE_UPSERT))
        return
    stmt = insert(conn, V)
    stmt = stmt.on_conflict_do_update(
        index_elements=[V.c.metric_id, V.c.date],
        set_={c: stmt.excluded[c] for c in CURRENT_COLUMNS[2:]},
    )
    session.execute(stmt, [dict(zip(CURRENT_COLUMNS, row, strict=True)) for row in rows])
