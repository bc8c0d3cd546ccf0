"""Department ingest, orchestrated: parse (``parse``), validate every record (``validate``,
pure), then write the batch set-based (``write``), rescore and record the receipt.

A batch is all-or-nothing. Parsing and validation never touch the store row by row: the
batch's metrics come in one query; ``write`` reads each metric's current values in one
(locked) query and writes revisions and current rows in bulk.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from api.changes import service as changes
from api.cityscore import materialise
from api.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from api.ingest import write
from api.ingest.parse import parse
from api.ingest.validate import ErrorList, MetricRef, validate
from api.schemas import SLUG_RE
from db.dialect import any_of
from db.models import ApiKey, Department, IngestBatch, Metric, MetricValue, ValueRevision
from db.session import begin_write, write_instant

M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]
B = IngestBatch.__table__  # type: ignore[attr-defined]

MAX_IDEMPOTENCY_KEY = 200
IN_CHUNK = 500  # slugs per IN list


def load_metrics(session: Session, slugs: Iterable[str]) -> dict[str, MetricRef]:
    """The metrics named by ``slugs`` (strings that cannot be slugs are never looked up)."""
    wanted = sorted({s for s in slugs if len(s) <= 100 and SLUG_RE.match(s)})
    out: dict[str, MetricRef] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        rows = session.execute(
            select(M.c.id, M.c.slug, M.c.department_id, M.c.aggregation).where(
                any_of(session, M.c.slug, wanted[i : i + IN_CHUNK])
            )
        )
        for r in rows:
            out[r.slug] = MetricRef(r.id, r.slug, r.department_id, r.aggregation)
    return out


# --- planning and writing ------------------------------------------------------------------


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

    result = write.plan(session, good, lock=not dry_run)
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
    write.write_revisions(session, result.superseded)
    write.upsert_current(session, result.current, now, batch_id)
    if result.changed:
        materialise.rescore_days(session, result.touched, result.reshaped)
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
