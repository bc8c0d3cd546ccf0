"""The audit log: one row per write, added to the writer's own transaction (never committed
here), and read back newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from api.audit.schemas import AUDIT_COLUMNS
from api.http.respond import Listing
from api.observability import request_id
from db.models import ApiKey, AuditEntry, Department, IngestBatch, utcnow

A = AuditEntry.__table__  # type: ignore[attr-defined]
B = IngestBatch.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]


def record(
    session: Session,
    *,
    key: ApiKey | None,
    action: str,
    target: str,
    department: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one audit row to the session's transaction (the caller commits it with the write)."""
    facts = dict(detail or {})
    rid = request_id.current.get()
    if rid is not None:
        facts["request_id"] = rid
    session.execute(
        A.insert().values(
            at=utcnow(),
            key_id=key.id if key is not None else None,
            department=department,
            action=action,
            target=target,
            detail=facts,
        )
    )


def department_slug(session: Session, department_id: int | None) -> str | None:
    if department_id is None:
        return None
    slug: str | None = session.execute(select(D.c.slug).where(D.c.id == department_id)).scalar()
    return slug


INGEST_COUNTS = ("received", "created", "updated", "unchanged", "deleted")


def listing(session: Session) -> Listing:
    """Every audit row, newest first, keyset-paged by id (rows carry the id last, as the key)."""

    def fetch(before_id: int | None, limit: int | None) -> list[Any]:
        stmt = select(*(A.c[c] for c in AUDIT_COLUMNS), A.c.id).order_by(A.c.id.desc())
        if before_id is not None:
            stmt = stmt.where(A.c.id < before_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [tuple(r) for r in session.execute(stmt)]

    def parse_key(key: list[Any]) -> int:
        (before,) = key
        if not isinstance(before, int) or isinstance(before, bool):
            raise ValueError("audit id")
        return before

    return Listing(
        name="audit",
        columns=AUDIT_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[-1]],
        key_width=1,
        parse_key=parse_key,
    )
