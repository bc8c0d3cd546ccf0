from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response

from api.analyses import service
from api.analyses.schemas import AnalysisIn, AnalysisList, AnalysisOut
from api.audit import service as audit
from api.changes import service as changes
from api.deps import AdminKey, SessionDep, SettingsDep
from api.http import respond
from api.http.docs import CSV_CONTENT, READ_ERRORS, WRITE_ERRORS
from api.schemas import SLUG_PATTERN

router = APIRouter(prefix="/v1/analyses", tags=["analyses"], responses=READ_ERRORS)


@router.get("", response_model=AnalysisList, operation_id="listAnalyses", responses=CSV_CONTENT)
def list_analyses(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    department: str | None = Query(None, description="Department slug"),
    tag: str | None = Query(None),
    q: str | None = Query(None, description="Text in title, summary or body"),
) -> Response:
    """Published analyses, newest first."""
    version = changes.version(session, *service.SCOPES)
    listing = service.listing(session, department=department, tag=tag, q=q)
    return respond.collection(request, listing, version, base_url=settings.public_base_url)


@router.get("/{slug}", response_model=AnalysisOut, operation_id="getAnalysis")
def get_analysis(request: Request, session: SessionDep, slug: str) -> Response:
    """One analysis, with `body_html` rendered from Markdown and sanitised."""
    version = changes.version(session, *service.SCOPES)
    doc = service.get(session, slug)
    return respond.document(request, version, lambda: doc)


@router.put(
    "/{slug}",
    response_model=AnalysisOut,
    operation_id="putAnalysis",
    responses={201: {"model": AnalysisOut, "description": "Created"}, **WRITE_ERRORS},
)
def put_analysis(
    session: SessionDep,
    key: AdminKey,
    body: AnalysisIn,
    slug: str = Path(pattern=SLUG_PATTERN, max_length=100),
) -> Response:
    """Create or fully replace an analysis (admin key)."""
    doc, created = service.put(session, slug, body)
    audit.record(session, key=key, action="analysis.put", target=slug, detail={"created": created})
    session.commit()
    return respond.json_response(doc, status_code=201 if created else 200)


@router.delete("/{slug}", status_code=204, operation_id="deleteAnalysis", responses=WRITE_ERRORS)
def delete_analysis(session: SessionDep, key: AdminKey, slug: str) -> Response:
    """Delete an analysis (admin key)."""
    service.delete(session, slug)
    audit.record(session, key=key, action="analysis.delete", target=slug)
    session.commit()
    return Response(status_code=204)
