"""Department ingest: parse, validate every record, then upsert the batch set-based.

A batch is all-or-nothing. Parsing and validation never touch the store row by row: the
batch's metrics come in one query, each metric's current values in one (locked) range query,
and the writes are one bulk insert of superseded versions into ``value_revisions`` plus one
upsert of the new current rows (binary COPY into a staging table and one
``INSERT ... SELECT ... ON CONFLICT`` on PostgreSQL; one ``executemany`` upsert on SQLite).

Decisions a client can rely on (also in the README):

- Malformed JSON (or CSV that is not UTF-8) is a **422**, like every other invalid body:
  400 is reserved for a bad query string. The error lists ``row: null, field: "body"``.
- In JSON a field that is ``null`` counts as absent; in CSV an empty cell does.
- CSV blank lines are skipped and not counted; ``row`` counts data rows after the header.
- A value re-posted after its deletion counts as ``created`` (the tombstone is kept as a
  revision). Deleting a value that does not exist or is already deleted is ``unchanged``.
- ``Idempotency-Key`` (at most 200 characters) is remembered per API key with the SHA-256 of
  the body: a retry with the same body answers the first receipt again (header
  ``Idempotent-Replayed: true``) without re-applying it, a different body is 409. Dry runs
  ignore the header. A request that failed stores nothing, so it may be retried with the key.
- Concurrency: every writer takes ``db.session.begin_write`` (BEGIN IMMEDIATE on SQLite, one
  advisory lock on PostgreSQL) and, on PostgreSQL, a transaction-scoped advisory lock per
  touched metric (in id order) before it reads the current values, so concurrent batches for
  the same (metric, date) apply one after the other: the later one is current and the earlier
  one is kept as a revision. (Per-metric advisory locks instead of ``SELECT ... FOR UPDATE``:
  they also cover values that do not exist yet, and do not write a lock into every row.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, Table, select, text
from sqlalchemy.types import BigInteger, Boolean, Date, DateTime, Float, Integer
from sqlmodel import Session

from api.changes import service as changes
from api.cityscore import materialise
from api.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from api.ingest.parse import parse
from api.ingest.validate import ErrorList, MetricRef, Record, validate
from api.schemas import SLUG_RE
from db.dialect import advisory_locks, bulk_insert, insert, is_postgres, stream
from db.models import ApiKey, Department, IngestBatch, Metric, MetricValue, ValueRevision
from db.session import begin_write, write_instant

M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]
B = IngestBatch.__table__  # type: ignore[attr-defined]

VALUE_COLUMNS = ("metric_id", "date", "value", "numerator", "denominator", "deleted")
CURRENT_COLUMNS = (*VALUE_COLUMNS, "updated_at", "batch_id")
REVISION_COLUMNS = (*VALUE_COLUMNS, "batch_id", "key_id", "recorded_at")
MAX_IDEMPOTENCY_KEY = 200
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


def load_metrics(session: Session, slugs: Iterable[str]) -> dict[str, MetricRef]:
    """The metrics named by ``slugs`` (strings that cannot be slugs are never looked up)."""
    wanted = sorted({s for s in slugs if len(s) <= 100 and SLUG_RE.match(s)})
    out: dict[str, MetricRef] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        rows = session.execute(
            select(M.c.id, M.c.slug, M.c.department_id, M.c.aggregation).where(
                M.c.slug.in_(wanted[i : i + IN_CHUNK])
            )
        )
        for r in rows:
            out[r.slug] = MetricRef(r.id, r.slug, r.department_id, r.aggregation)
    return out


# --- planning and writing ------------------------------------------------------------------


@dataclass
class Plan:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    current: list[Record] = field(default_factory=list)  # new current rows to upsert
    superseded: list[Any] = field(default_factory=list)  # old rows to keep as revisions
    touched: dict[int, set[dt.date]] = field(default_factory=lambda: defaultdict(set))

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
            elif old is None or old[_DELETED]:
                out.created += 1
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


def _write_revisions(session: Session, superseded: Sequence[Any]) -> None:
    if not superseded:
        return
    keys = _batch_keys(session, (r[_BATCH] for r in superseded if r[_BATCH] is not None))
    # (metric_id, date, value, numerator, denominator, deleted, batch_id) + key_id, recorded_at
    rows = (
        (*r[:_DELETED], bool(r[_DELETED]), r[_BATCH], keys.get(r[_BATCH]), r[_UPDATED])
        for r in superseded
    )
    bulk_insert(session.connection(), R, REVISION_COLUMNS, rows)


def _upsert_current(
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


def invalid_batch(errors: ErrorList) -> Unprocessable:
    """The 422 for a batch with problems: the first ``MAX_ERRORS`` listed, the total counted."""
    cut = " (the first are listed)" if errors.truncated else ""
    return Unprocessable(
        f"{errors.count} problem(s) in {errors.bad_rows} record(s){cut}; nothing was written.",
        errors=errors.items,
        extra={"error_count": errors.count, "errors_truncated": errors.truncated},
    )


def receipt(row: Any) -> dict[str, Any]:
    return {
        "batch": row.id,
        "received": row.received,
        "created": row.created,
        "updated": row.updated,
        "unchanged": row.unchanged,
        "deleted": row.deleted,
        "dry_run": False,
    }


def _replay(session: Session, key: ApiKey, idempotency_key: str, body_hash: str) -> Any:
    """The batch stored under this Idempotency-Key, or None; 409 when the body differs."""
    row = session.execute(
        select(B).where(B.c.key_id == key.id, B.c.idempotency_key == idempotency_key)
    ).first()
    if row is not None and row.request_hash != body_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different body; use a new key."
        )
    return row


def _check_size(records: Sequence[Any], max_rows: int) -> None:
    """An empty batch is a 422, one over ``max_rows`` records a 413."""
    if not records:
        raise Unprocessable(
            "The batch has no records; send at least one.",
            errors=[
                {"row": None, "line": None, "field": "body", "message": "empty", "value": None}
            ],
        )
    if len(records) > max_rows:
        raise PayloadTooLarge(
            f"The batch has {len(records)} records; at most {max_rows} are accepted per batch."
        )


def _check_scope(key: ApiKey, metrics: dict[str, Any]) -> None:
    """A department key may write only its own department's metrics (403 for the batch)."""
    if key.admin:
        return
    foreign = sorted(s for s, m in metrics.items() if m.department_id != key.department_id)
    if foreign:
        raise Forbidden(
            "This key may only write its own department's metrics; the batch touches "
            + ", ".join(f"'{s}'" for s in foreign[:10])
            + (" and more" if len(foreign) > 10 else "")
            + "."
        )


def _insert_batch(
    session: Session,
    key: ApiKey,
    request: tuple[str | None, str],
    now: dt.datetime,
    counts: dict[str, int],
) -> int:
    """The batch's receipt row; ``request``: its idempotency key and the body's SHA-256."""
    idempotency_key, body_hash = request
    batch_id: int = session.execute(
        B.insert()
        .values(
            key_id=key.id,
            department_id=key.department_id,
            idempotency_key=idempotency_key,
            request_hash=body_hash,
            created_at=now,
            **counts,
        )
        .returning(B.c.id)
    ).scalar_one()
    return batch_id


@dataclass
class Outcome:
    receipt: dict[str, Any]
    replayed: bool = False


def ingest(
    session: Session,
    key: ApiKey,
    raw: bytes,
    content_type: str | None,
    *,
    today: dt.date,
    max_rows: int,
    dry_run: bool = False,
    idempotency_key: str | None = None,
) -> Outcome:
    """Validate and apply one batch (all or nothing) in the session's transaction (the
    request's session dependency commits it)."""
    parsed = parse(raw, content_type)
    records = parsed.records
    _check_size(records, max_rows)
    body_hash = hashlib.sha256(raw).hexdigest()
    use_key = idempotency_key if not dry_run else None
    if not dry_run:
        begin_write(session)
        if use_key is not None:
            previous = _replay(session, key, use_key, body_hash)
            if previous is not None:
                return Outcome(receipt(previous), replayed=True)

    slugs = (
        r["metric"] for r in records if isinstance(r, dict) and isinstance(r.get("metric"), str)
    )
    metrics = load_metrics(session, slugs)
    _check_scope(key, metrics)
    good, errors = validate(parsed, metrics, today)
    if errors.count:
        raise invalid_batch(errors)

    result = plan(session, good, lock=not dry_run)
    counts = {
        "received": len(records),
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "deleted": result.deleted,
    }
    if dry_run:
        return Outcome({"batch": None, **counts, "dry_run": True})

    now = write_instant(session)  # the store's clock, in commit order
    batch_id = _insert_batch(session, key, (use_key, body_hash), now, counts)
    _write_revisions(session, result.superseded)
    _upsert_current(session, result.current, now, batch_id)
    if result.changed:
        materialise.rescore_days(session, result.touched)
        changes.bump(
            session, ["values", "scores", *(f"metric:{m}" for m in sorted(result.touched))]
        )
    return Outcome({"batch": batch_id, **counts, "dry_run": False})


def get_batch(session: Session, key: ApiKey, batch_id: int) -> dict[str, Any]:
    """One batch's receipt, for its key's department or an admin (404 otherwise)."""
    row = session.execute(
        select(B, D.c.slug.label("department"))
        .outerjoin(D, D.c.id == B.c.department_id)
        .where(B.c.id == batch_id)
    ).first()
    mine = (
        key.department_id is not None and row is not None and row.department_id == key.department_id
    )
    if row is None or not (key.admin or mine):
        raise NotFound(f"No ingest batch {batch_id}.")
    out = receipt(row)
    del out["dry_run"]
    return {**out, "department": row.department, "created_at": row.created_at}
