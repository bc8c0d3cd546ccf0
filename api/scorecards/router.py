from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.changes import service as changes
from api.cityscore import known
from api.cityscore.known import KNOWN_AT, parse_known_at
from api.departments import service as departments_service
from api.deps import SessionDep, SettingsDep
from api.http import respond
from api.http.docs import CSV_CONTENT, READ_ERRORS
from api.http.memory_first import memory_first
from api.http.params import CSV_FORM, PAGED, date_query, parse_date
from api.schemas import DEPARTMENT_SLUG
from api.scorecards import service
from api.scorecards.schemas import SCORECARD_CSV_COLUMNS, Scorecard, ScorecardList

router = APIRouter(prefix="/v1/scorecards", tags=["scorecards"], responses=READ_ERRORS)
SCOPES = ("departments", "scores")
AsOf = Annotated[
    str | None,
    Query(
        description="Publication date YYYY-MM-DD (the city's calendar); default today",
        json_schema_extra={"format": "date"},
    ),
]


@router.get(
    "",
    response_model=ScorecardList,
    operation_id="listScorecards",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def list_scorecards(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    as_of: str | None = date_query("Publication date; default: today in the city"),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """One row per department: its score per window (all its metrics) and how many metrics
    are below target this week."""
    day = parse_date("as_of", as_of) or settings.today()
    instant = parse_known_at(as_known_at)
    version = changes.dated_version(session, settings.today_began(), as_of is not None, *SCOPES)
    return respond.collection(
        request,
        service.listing(session, day, instant),
        version,
        extra=known.tag(day.isoformat(), instant),
        base_url=settings.public_base_url,
    )


@router.get(
    "/{department}",
    response_model=Scorecard,
    operation_id="getScorecard",
    responses=CSV_CONTENT,
    dependencies=CSV_FORM,
)
@memory_first
def get_scorecard(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    department: str = Path(description=DEPARTMENT_SLUG),
    as_of: str | None = date_query("Publication date; default: today in the city"),
    as_known_at: str | None = KNOWN_AT,
) -> Response:
    """A department's scorecard: its score, and per metric the window scores, latest value,
    target, status (from the week score) and the last 12 weekly scores.

    Status: `above_target` (week score >= 1), `below_target` (< 1), `not_scored` (the week
    has data but no score, e.g. zero events against a historical average), `no_data` (no
    value in the week). `/v1/scorecards/{department}.csv` gives one row per metric:
    `metric, name, target, latest_date, latest_value, day, week, month, quarter, status`."""
    day = parse_date("as_of", as_of) or settings.today()
    instant = parse_known_at(as_known_at)
    dept = departments_service.get(session, department)  # 404 before any 304
    # Exactly this department's data: its row and its metrics (not every department's).
    scopes = changes.department_scopes(session, dept.id)
    version = changes.dated_version(session, settings.today_began(), as_of is not None, *scopes)
    return respond.document(
        request,
        version,
        lambda: service.scorecard(session, department, day, instant=instant),
        extra=known.tag(day.isoformat(), instant),
        csv_rows=lambda doc: (
            f"scorecard-{department}-{day.isoformat()}",
            SCORECARD_CSV_COLUMNS,
            service.scorecard_csv_rows(doc),
            frozenset({"name"}),
        ),
    )
