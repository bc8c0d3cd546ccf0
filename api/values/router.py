from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request, Response

from api.changes import service as changes
from api.cityscore.known import KNOWN_AT, parse_known_at
from api.deps import SessionDep, SettingsDep
from api.http import respond
from api.http.docs import CSV_CONTENT, READ_ERRORS
from api.http.memory_first import memory_first
from api.http.params import (
    PAGED,
    check_range,
    date_path,
    date_query,
    instant_query,
    parse_date,
    parse_instant,
)
from api.schemas import METRIC_SLUG
from api.values import service
from api.values.schemas import PeriodList, RevisionList, ValueList

router = APIRouter(prefix="/v1", tags=["values"], responses=READ_ERRORS)


@router.get(
    "/values",
    response_model=ValueList,
    operation_id="listValues",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def list_values(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    metric: str | None = Query(None, description="Metric slug"),
    department: str | None = Query(None, description="Department slug"),
    start: str | None = date_query("First date, inclusive; default: the earliest"),
    end: str | None = date_query("Last date, inclusive; default: the latest"),
    updated_since: str | None = instant_query(
        "Only rows changed after this instant (exclusive), deletions as `deleted: true`"
    ),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """Bulk daily values of every metric, in (metric, date) order.

    `/v1/values.csv` streams every matching row. For incremental sync pass `updated_since`
    (the largest `updated_at` you hold): changed rows and deletions (`deleted: true`) come back.
    """
    first, last = parse_date("start", start), parse_date("end", end)
    check_range(first, last)
    since = parse_instant("updated_since", updated_since)
    instant = parse_known_at(as_known_at)
    version = changes.version(session, *service.bulk_scopes(session, metric, department))
    listing = service.bulk_listing(
        session,
        metric=metric,
        department=department,
        start=first,
        end=last,
        updated_since=since,
        known_at=instant,
    )
    return respond.collection(request, listing, version, base_url=settings.public_base_url)


@router.get(
    "/metrics/{slug}/values",
    response_model=PeriodList,
    operation_id="getMetricValues",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def get_metric_values(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: str = Path(description=METRIC_SLUG),
    start: str | None = date_query("First date, inclusive; default: the earliest"),
    end: str | None = date_query("Last date, inclusive; default: the latest"),
    interval: str = Query(
        "day",
        description="Calendar period per row: day, week (Monday-Sunday), month, quarter, year",
        json_schema_extra={"enum": ["day", "week", "month", "quarter", "year"]},
    ),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """One metric's values per calendar period, aggregated by the metric's own aggregation
    (ratios are pooled: sum(numerator)/sum(denominator), never a mean of daily ratios)."""
    first, last = parse_date("start", start), parse_date("end", end)
    check_range(first, last)
    instant = parse_known_at(as_known_at)
    metric_id, aggregation = service.metric_ref(session, slug)
    listing = service.metric_values_listing(
        session,
        metric_id,
        aggregation,
        slug,
        start=first,
        end=last,
        interval=interval,
        known_at=instant,
    )
    version = changes.version(session, f"metric:{metric_id}")
    return respond.collection(request, listing, version, base_url=settings.public_base_url)


@router.get(
    "/metrics/{slug}/values/{date}/revisions",
    response_model=RevisionList,
    operation_id="getValueRevisions",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
def get_value_revisions(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: str = Path(description=METRIC_SLUG),
    date: str = date_path("The day, YYYY-MM-DD"),
) -> Response:
    """Every version of one daily value, oldest first (`current: true` marks the live one)."""
    day = parse_date("date", date)
    assert day is not None
    metric_id, _ = service.metric_ref(session, slug)
    listing = service.revisions_listing(session, metric_id, slug, day)
    version = changes.version(session, f"metric:{metric_id}")
    return respond.collection(request, listing, version, base_url=settings.public_base_url)
