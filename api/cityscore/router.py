from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Path, Request, Response

from api.changes import service as changes
from api.cityscore import known, publish
from api.cityscore.known import KNOWN_AT
from api.cityscore.schemas import CSV_COLUMNS, CityScore, History
from api.deps import SessionDep, SettingsDep
from api.errors import BadRequest
from api.http import respond
from api.http.docs import CSV_CONTENT, READ_ERRORS
from api.http.memory_first import memory_first
from api.http.params import CSV_FORM, PAGED, check_range, date_query, parse_date
from api.metrics import service as metrics_service
from api.schemas import METRIC_SLUG

router = APIRouter(prefix="/v1", tags=["cityscore"], responses=READ_ERRORS)

SCOPES = ("scores",)
CSV_TEXT = frozenset({"name", "metric_logic"})


KNOWN_HISTORY_DAYS = 366  # the longest CityScore history computed as known at an instant


def _default_range(
    start_raw: str | None, end_raw: str | None, today: dt.date
) -> tuple[dt.date, dt.date]:
    start, end = parse_date("start", start_raw), parse_date("end", end_raw)
    end = end or today
    start = start or end - dt.timedelta(days=364)
    check_range(start, end)
    if (end - start).days > 366 * 50:
        raise BadRequest("The range may span at most 50 years.")
    return start, end


@router.get(
    "/cityscore",
    response_model=CityScore,
    operation_id="getCityScore",
    responses=CSV_CONTENT,
    dependencies=CSV_FORM,
)
@memory_first
def get_cityscore(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    as_of: str | None = date_query("Publication date; default: today in the city"),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """CityScore as of a date: the four windows, the city's score and every metric's scores.

    `/v1/cityscore.csv` gives one row per metric with Boston's Full Metric List columns.
    With `as_known_at`, the answer from the values and definitions as they stood then.
    """
    day = parse_date("as_of", as_of) or settings.today()
    instant = known.parse_known_at(as_known_at)
    version = changes.dated_version(session, settings.today_began(), as_of is not None, *SCOPES)
    return respond.document(
        request,
        version,
        lambda: known.document(session, day, instant),
        extra=known.tag(day.isoformat(), instant),
        csv_rows=lambda doc: (
            f"cityscore-{day.isoformat()}",
            CSV_COLUMNS,
            publish.cityscore_csv_rows(doc),
            CSV_TEXT,
        ),
    )


@router.get(
    "/cityscore/history",
    response_model=History,
    operation_id="getCityScoreHistory",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def get_cityscore_history(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    start: str | None = date_query("First as-of date, inclusive; default: end - 364 days"),
    end: str | None = date_query("Last as-of date, inclusive; default: today"),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """CityScore per as-of date, one row per date: `{as_of, day, week, month, quarter}`."""
    first, last = _default_range(start, end, settings.today())
    instant = known.parse_known_at(as_known_at)
    if instant is not None and (last - first).days >= KNOWN_HISTORY_DAYS:
        raise BadRequest(
            f"With as_known_at the history spans at most {KNOWN_HISTORY_DAYS} days (it is "
            "computed on read from every CityScore metric): ask a year at a time."
        )
    version = changes.dated_version(session, settings.today_began(), end is not None, *SCOPES)
    memory = (
        None if instant is not None else request.app.state.history.table(session, version.token)
    )
    return respond.collection(
        request,
        publish.history_listing(session, first, last, instant, memory),
        version,
        extra=known.tag(f"{first}:{last}", instant),
        base_url=settings.public_base_url,
    )


@router.get(
    "/metrics/{slug}/scores",
    response_model=History,
    operation_id="getMetricScores",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def get_metric_scores(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    slug: str = Path(description=METRIC_SLUG),
    start: str | None = date_query("First as-of date, inclusive; default: end - 364 days"),
    end: str | None = date_query("Last as-of date, inclusive; default: today"),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """A metric's window scores per as-of date: `{as_of, day, week, month, quarter}`."""
    first, last = _default_range(start, end, settings.today())
    instant = known.parse_known_at(as_known_at)
    metric_id = metrics_service.metric_id(session, slug)
    version = changes.dated_version(
        session, settings.today_began(), end is not None, f"metric:{metric_id}"
    )
    return respond.collection(
        request,
        publish.metric_scores_listing(session, metric_id, slug, first, last, instant),
        version,
        extra=known.tag(f"{first}:{last}", instant),
        base_url=settings.public_base_url,
    )
