"""Departments: the catalogue's first noun."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.changes import service as changes
from api.departments.schemas import DEPARTMENT_COLUMNS, DepartmentIn
from api.errors import NotFound
from api.http.respond import Listing
from db.models import Department, utcnow
from db.session import begin_write

T = Department.__table__  # type: ignore[attr-defined]
SCOPES = ("departments",)


def listing(session: Session) -> Listing:
    cols = [T.c[name] for name in DEPARTMENT_COLUMNS]

    def fetch(after: Any, limit: int | None) -> list[Any]:
        q = select(*cols).order_by(T.c.slug)
        if after is not None:
            q = q.where(T.c.slug > after)
        if limit is not None:
            q = q.limit(limit)
        return [tuple(r) for r in session.execute(q)]

    return Listing(
        name="departments",
        columns=DEPARTMENT_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [row[0]],
        key_width=1,
        parse_key=lambda key: str(key[0]),
        text_columns=frozenset({"name", "cabinet", "description", "url"}),
    )


def get(session: Session, slug: str) -> Department:
    dept = session.scalars(select(Department).where(col(Department.slug) == slug)).first()
    if dept is None:
        raise NotFound(f"No department '{slug}'.")
    return dept


def by_slug(session: Session) -> dict[str, int]:
    return {slug: id_ for id_, slug in session.execute(select(T.c.id, T.c.slug))}


def to_public(dept: Department) -> dict[str, Any]:
    return {name: getattr(dept, name) for name in DEPARTMENT_COLUMNS}


def put(session: Session, slug: str, body: DepartmentIn) -> tuple[Department, bool]:
    """Create or fully replace a department; return it and whether it was created."""
    begin_write(session)
    dept = session.scalars(select(Department).where(col(Department.slug) == slug)).first()
    fields = body.model_dump()
    if dept is None:
        dept = Department(slug=slug, updated_at=utcnow(), **fields)
        session.add(dept)
        session.flush()
        changes.bump(session, ["departments", "scores", f"department:{dept.id}"])
        return dept, True
    if any(getattr(dept, k) != v for k, v in fields.items()):
        for k, v in fields.items():
            setattr(dept, k, v)
        dept.updated_at = utcnow()
        session.flush()
        changes.bump(session, ["departments", "scores", f"department:{dept.id}"])
    return dept, False
