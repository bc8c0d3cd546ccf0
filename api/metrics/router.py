from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.audit import service as audit
from api.changes import service as changes
from api.deps import AdminKey, SessionDep, SettingsDep
from api.http import respond
from api.http.docs import CSV_CONTENT, JSON_WRITE_ERRORS, READ_ERRORS
from api.http.memory_first import memory_first
from api.http.params import JSON_BODY, PAGED, bool_query, parse_bool, parse_date, parse_search
from api.metrics import revisions, service
from api.metrics.schemas import MetricIn, MetricList, MetricOut, MetricRevisionList
from api.schemas import METRIC_SLUG, SLUG_PATTERN
from api.scorecards import service as scorecards_service
from api.web import charts

router = APIRouter(prefix="/v1/metrics", tags=["metrics"], responses=READ_ERRORS)


@router.get(
    "",
    response_model=MetricList,
    operation_id="listMetrics",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def list_metrics(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    department: str | None = Query(None, description="Department slug"),
    in_cityscore: str | None = bool_query("Only metrics in (true) or out of (false) CityScore"),
    q: str | None = Query(None, description="Text in slug, name or description"),
) -> Response:
    """The metric catalogue, by slug. `target` is the target in force today."""
    flag = parse_bool("in_cityscore", in_cityscore)
    today = settings.today()
    # The target shown is the one in force today.
    version = changes.dated_version(session, settings.today_began(), False, *service.SCOPES)
    listing = service.listing(
        session, today, department=department, in_cityscore=flag, q=parse_search(q)
    )
    return respond.collection(
        request, listing, version, extra=today.isoformat(), base_url=settings.public_base_url
    )


@router.get(
    "/{slug}/revisions",
    response_model=MetricRevisionList,
    operation_id="getMetricRevisions",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
def get_metric_revisions(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: str = Path(description=METRIC_SLUG),
) -> Response:
    """Every version of a metric's definition, oldest first (`current: true` is in force).

    Each PUT that changes a definition keeps the previous version; `valid_from` is when a
    version was written. Definitions from before revisions were kept start at their last
    update before the upgrade."""
    metric_id = service.metric_id(session, slug)
    version = changes.version(session, f"metric:{metric_id}")
    listing = revisions.listing(session, metric_id, slug)
    return respond.collection(request, listing, version, base_url=settings.public_base_url)


@router.get("/{slug}", response_model=MetricOut, operation_id="getMetric")
@memory_first
def get_metric(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: str = Path(description=METRIC_SLUG),
) -> Response:
    """One metric with its targets over time and Boston's metric_logic."""
    today = settings.today()
    # The target shown is the one in force today.
    version = changes.dated_version(session, settings.today_began(), False, *service.SCOPES)
    service.metric_id(session, slug)  # 404 before any 304
    return respond.document(
        request, version, lambda: service.get_public(session, slug, today), extra=today.isoformat()
    )


SVG_MEDIA_TYPE = "image/svg+xml"


@router.get(
    "/{slug}/sparkline.svg",
    operation_id="getMetricSparkline",
    response_class=Response,
    responses={
        200: {
            "description": "An SVG image",
            "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
@memory_first
def get_metric_sparkline(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: Annotated[str, Path(description="Metric slug, e.g. `pothole-on-time`")],
    weeks: Annotated[
        int, Query(ge=1, le=104, description="How many complete weeks to draw, oldest first")
    ] = 12,
    as_of: Annotated[
        str | None,
        Query(
            description="Publication date YYYY-MM-DD; the last week drawn is the week window "
            "as of this date (default today)",
            json_schema_extra={"format": "date"},
        ),
    ] = None,
) -> Response:
    """The metric's week scores as a small SVG line (`image/svg+xml`) with a dashed target
    line at 1; its `<title>` and `<desc>` read out every week's score."""
    day = parse_date("as_of", as_of) or settings.today()
    metric_id = service.metric_id(session, slug)
    version = changes.dated_version(
        session, settings.today_began(), as_of is not None, f"metric:{metric_id}"
    )

    def build() -> str:
        name = service.get_row(session, slug).name
        trend = scorecards_service.trend(session, metric_id, day, weeks)
        return charts.trend_sparkline(f"spark-{slug}", name, trend)

    return respond.rendered(request, version, SVG_MEDIA_TYPE, build, extra=day.isoformat())


@router.put(
    "/{slug}",
    response_model=MetricOut,
    operation_id="putMetric",
    responses={201: {"model": MetricOut, "description": "Created"}, **JSON_WRITE_ERRORS},
    dependencies=JSON_BODY,
)
def put_metric(
    session: SessionDep,
    settings: SettingsDep,
    key: AdminKey,
    body: MetricIn,
    slug: str = Path(
        pattern=SLUG_PATTERN,
        max_length=100,
        description=METRIC_SLUG,
    ),
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
    return respond.json_response(doc, status_code=201 if created else 200)
