from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response

from api.analyses import atom, service
from api.analyses.schemas import AnalysisIn, AnalysisList, AnalysisOut
from api.audit import service as audit
from api.changes import service as changes
from api.deps import AdminKey, SessionDep, SettingsDep
from api.http import respond
from api.http.docs import CSV_CONTENT, JSON_WRITE_ERRORS, READ_ERRORS, WRITE_ERRORS
from api.http.memory_first import memory_first
from api.http.params import JSON_BODY, PAGED, parse_search
from api.schemas import ANALYSIS_SLUG, SLUG_PATTERN

router = APIRouter(prefix="/v1/analyses", tags=["analyses"], responses=READ_ERRORS)


@router.get(
    "",
    response_model=AnalysisList,
    operation_id="listAnalyses",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def list_analyses(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    department: str | None = Query(None, description="Department slug"),
    tag: str | None = Query(None, description="Only analyses with this tag"),
    q: str | None = Query(None, description="Text in title, summary or body"),
) -> Response:
    """Published analyses, newest first."""
    version = changes.version(session, *service.SCOPES)
    listing = service.listing(session, department=department, tag=tag, q=parse_search(q))
    return respond.collection(request, listing, version, base_url=settings.public_base_url)


@router.get(
    ".atom",
    operation_id="getAnalysesFeed",
    response_class=Response,
    responses={
        200: {
            "description": "Atom 1.0 feed",
            "content": {atom.ATOM_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
def get_analyses_feed(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Every published analysis as an Atom 1.0 feed (RFC 4287), newest first."""
    version = changes.version(session, *service.SCOPES)
    listing = service.listing(session, department=None, tag=None, q=None)

    def build() -> bytes:
        rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
        base = settings.public_base_url or str(request.base_url)
        return atom.feed(rows, base_url=base, city=settings.city_name)

    return respond.rendered(request, version, atom.ATOM_MEDIA_TYPE, build)


@router.get("/{slug}", response_model=AnalysisOut, operation_id="getAnalysis")
@memory_first
def get_analysis(
    request: Request, session: SessionDep, slug: str = Path(description=ANALYSIS_SLUG)
) -> Response:
    """One analysis, with `body_html` rendered from Markdown and sanitised."""
    version = changes.version(session, *service.SCOPES)
    doc = service.get(session, slug)
    return respond.document(request, version, lambda: doc)


@router.put(
    "/{slug}",
    response_model=AnalysisOut,
    operation_id="putAnalysis",
    responses={201: {"model": AnalysisOut, "description": "Created"}, **JSON_WRITE_ERRORS},
    dependencies=JSON_BODY,
)
def put_analysis(
    session: SessionDep,
    key: AdminKey,
    body: AnalysisIn,
    slug: str = Path(pattern=SLUG_PATTERN, max_length=100, description=ANALYSIS_SLUG),
) -> Response:
    """Create or fully replace an analysis (admin key)."""
    doc, created = service.put(session, slug, body)
    audit.record(session, key=key, action="analysis.put", target=slug, detail={"created": created})
    return respond.json_response(doc, status_code=201 if created else 200)


@router.delete("/{slug}", status_code=204, operation_id="deleteAnalysis", responses=WRITE_ERRORS)
def delete_analysis(
    session: SessionDep, key: AdminKey, slug: str = Path(description=ANALYSIS_SLUG)
) -> Response:
    """Delete an analysis (admin key)."""
    service.delete(session, slug)
    audit.record(session, key=key, action="analysis.delete", target=slug)
    return Response(status_code=204)
