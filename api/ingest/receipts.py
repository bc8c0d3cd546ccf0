"""Reading ingest receipts: a key's department's batches (every batch for an admin key)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from api.http.respond import Listing, Row
from db.models import ApiKey, Department, IngestBatch

B = IngestBatch.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]

# The row shape of GET /v1/ingest/batches/{id}.
COLUMNS = (
    "batch",
    "received",
    "created",
    "updated",
    "unchanged",
    "deleted",
    "department",
    "created_at",
)


def listing(session: Session, key: ApiKey) -> Listing:
    """Receipts newest first (by batch id, unique and assigned in commit order), keyset-paged."""
    query = (
        select(
            B.c.id,
            B.c.received,
            B.c.created,
            B.c.updated,
            B.c.unchanged,
            B.c.deleted,
            D.c.slug,
            B.c.created_at,
        )
        .outerjoin(D, D.c.id == B.c.department_id)
        .order_by(B.c.id.desc())
    )
    if not key.admin:
        query = query.where(B.c.department_id == key.department_id)

    def fetch(after: int | None, limit: int | None) -> Iterable[Row]:
        q = query if after is None else query.where(B.c.id < after)
        if limit is not None:
            q = q.limit(limit)
        return [tuple(r) for r in session.execute(q)]

    return Listing(
        name="ingest-batches",
        columns=COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[0]],
        key_width=1,
        parse_key=_parse_key,
    )


def _parse_key(key: list[Any]) -> int:
    (batch,) = key
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise ValueError("batch id")
    return batch
