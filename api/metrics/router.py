from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response

from api.audit import service as audit
from api.changes import service as changes
from api.deps import AdminKey, SessionDep, SettingsDep
from api.http import respond
from api.http.caching import not_before
from api.http.docs import CSV_CONTENT, READ_ERRORS, WRITE_ERRORS
from api.http.params import parse_bool
from api.metrics import service
from api.metrics.schemas import MetricIn, MetricList, MetricOut
from api.schemas import SLUG_PATTERN

router = APIRouter(prefix="/v1/metrics", tags=["metrics"], responses=READ_ERRORS)


@router.get("", response_model=MetricList, operation_id="listMetrics", responses=CSV_CONTENT)
def list_metrics(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    department: str | None = Query(None, description="Department slug"),
    in_cityscore: str | None = Query(None, description="true or false"),
    q: str | None = Query(None, description="Text in slug, name or description"),
) -> Response:
    """The metric catalogue, by slug. `target` is the target in force today."""
    flag = parse_bool("in_cityscore", in_cityscore)
    today = settings.today()
    # The target shown is the one in force today.
    version = not_before(changes.version(session, *service.SCOPES), settings.today_began())
    listing = service.listing(session, today, department=department, in_cityscore=flag, q=q)
    return respond.collection(
        request, listing, version, extra=today.isoformat(), base_url=settings.public_base_url
    )


@router.get("/{slug}", response_model=MetricOut, operation_id="getMetric")
def get_metric(request: Request, session: SessionDep, settings: SettingsDep, slug: str) -> Response:
    """One metric with its targets over time and Boston's metric_logic."""
    today = settings.today()
    # The target shown is the one in force today.
    version = not_before(changes.version(session, *service.SCOPES), settings.today_began())
    service.metric_id(session, slug)  # 404 before any 304
    return respond.document(
        request, version, lambda: service.get_public(session, slug, today), extra=today.isoformat()
    )


@router.put(
    "/{slug}",
    response_model=MetricOut,
    operation_id="putMetric",
    responses={201: {"model": MetricOut, "description": "Created"}, **WRITE_ERRORS},
)
def put_metric(
    session: SessionDep,
    settings: SettingsDep,
    key: AdminKey,
    body: MetricIn,
    slug: str = Path(pattern=SLUG_PATTERN, max_length=100),
) -> Response:
    """Create or fully replace a metric (admin key); its scores are recomputed before the answer."""
    doc, created = service.put(session, slug, body, settings.today())
    audit.record(
        session,
        key=key,
        action="metric.put",
        target=slug,
        department=body.department,
        detail={"created": created},
    )
    session.commit()
    return respond.json_response(doc, status_code=201 if created else 200)
