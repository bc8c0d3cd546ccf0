"""Analyses: the analytics team's write-ups, Markdown rendered to sanitised HTML."""

from __future__ import annotations

from typing import Any

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import select
from sqlmodel import Session, col

from api.analyses.schemas import ANALYSIS_COLUMNS, AnalysisIn
from api.changes import service as changes
from api.departments import service as departments_service
from api.errors import NotFound, Unprocessable
from api.http.respond import Listing
from api.metrics import service as metrics_service
from db.models import Analysis, utcnow
from db.session import begin_write

A = Analysis.__table__  # type: ignore[attr-defined]
SCOPES = ("analyses",)
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render(markdown: str) -> str:
    """Markdown to HTML with raw HTML disabled, then sanitised again with nh3 (belt and braces)."""
    return nh3.clean(_markdown.render(markdown), link_rel="noopener noreferrer nofollow")


def _row(a: Any) -> tuple[Any, ...]:
    return tuple(getattr(a, c) for c in ANALYSIS_COLUMNS)


def listing(session: Session, *, department: str | None, tag: str | None, q: str | None) -> Listing:
    def matches(row: tuple[Any, ...]) -> bool:
        doc = dict(zip(ANALYSIS_COLUMNS, row, strict=True))
        if department is not None and department not in doc["departments"]:
            return False
        if tag is not None and tag.lower() not in [t.lower() for t in doc["tags"]]:
            return False
        if q:
            text = " ".join(str(doc[k] or "") for k in ("title", "summary", "body_markdown"))
            return q.lower() in text.lower()
        return True

    def fetch(after: Any, limit: int | None) -> list[tuple[Any, ...]]:
        # Newest first; the slug breaks ties. Analyses are few, so filtering happens here.
        stmt = select(*(A.c[c] for c in ANALYSIS_COLUMNS)).order_by(
            A.c.published_on.desc(), A.c.slug
        )
        rows = [tuple(r) for r in session.execute(stmt)]
        rows = [r for r in rows if matches(r)]
        if after is not None:
            rows = [r for r in rows if (-r[5].toordinal(), r[0]) > after]
        return rows if limit is None else rows[:limit]

    return Listing(
        name="analyses",
        columns=ANALYSIS_COLUMNS,
        fetch=fetch,
        key_of=lambda row: [-row[5].toordinal(), row[0]],
        key_width=2,
        parse_key=lambda key: (int(key[0]), str(key[1])),
        text_columns=frozenset({"title", "summary", "body_markdown", "body_html", "tags"}),
    )


def get(session: Session, slug: str) -> dict[str, Any]:
    row = session.execute(
        select(*(A.c[c] for c in ANALYSIS_COLUMNS)).where(A.c.slug == slug)
    ).first()
    if row is None:
        raise NotFound(f"No analysis '{slug}'.")
    return dict(zip(ANALYSIS_COLUMNS, row, strict=True))


def put(session: Session, slug: str, body: AnalysisIn) -> tuple[dict[str, Any], bool]:
    begin_write(session)
    known_depts = departments_service.by_slug(session)
    known_metrics = metrics_service.ids_by_slug(session)
    errors = [
        {"row": None, "field": f"departments.{i}", "message": f"unknown department '{s}'"}
        for i, s in enumerate(body.departments)
        if s not in known_depts
    ] + [
        {"row": None, "field": f"metrics.{i}", "message": f"unknown metric '{s}'"}
        for i, s in enumerate(body.metrics)
        if s not in known_metrics
    ]
    if errors:
        raise Unprocessable("The analysis refers to unknown departments or metrics.", errors=errors)
    fields = body.model_dump()
    fields["body_html"] = render(body.body_markdown)
    analysis = session.scalars(select(Analysis).where(col(Analysis.slug) == slug)).first()
    created = analysis is None
    if analysis is None:
        analysis = Analysis(slug=slug, updated_at=utcnow(), **fields)
        session.add(analysis)
        changes.bump(session, SCOPES)
    elif any(getattr(analysis, k) != v for k, v in fields.items()):
        for k, v in fields.items():
            setattr(analysis, k, v)
        analysis.updated_at = utcnow()
        changes.bump(session, SCOPES)
    session.flush()
    return dict(zip(ANALYSIS_COLUMNS, _row(analysis), strict=True)), created


def delete(session: Session, slug: str) -> None:
    begin_write(session)
    analysis = session.scalars(select(Analysis).where(col(Analysis.slug) == slug)).first()
    if analysis is None:
        raise NotFound(f"No analysis '{slug}'.")
    session.delete(analysis)
    changes.bump(session, SCOPES)
    session.flush()
