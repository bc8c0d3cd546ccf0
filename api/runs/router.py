"""Published runs, Boston style: record one, list them, the Full Metric List and the Summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.changes import service as changes
from api.deps import AdminKey, SessionDep, SettingsDep
from api.errors import NotFound
from api.http import respond
from api.http.caching import cache_headers, make_etag, not_modified, not_modified_response
from api.http.csv import csv_lines
from api.http.docs import JSON_WRITE_ERRORS, READ_ERRORS
from api.http.formats import wants_csv
from api.http.params import JSON_BODY, PAGED, check_range, date_query, parse_bool, parse_date
from api.runs import service
from api.runs.schemas import FULL_METRIC_LIST_COLUMNS, RunIn, RunList, RunOut, Summary

router = APIRouter(prefix="/v1/cityscore", tags=["cityscore"], responses=READ_ERRORS)


def _csv_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"JSON; with a `.csv` suffix or `Accept: text/csv`, {what} "
            "(every row, streamed)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    }


@router.post(
    "/runs",
    status_code=201,
    response_model=RunOut,
    operation_id="createCityScoreRun",
    responses={201: {"model": RunOut, "description": "Recorded"}, **JSON_WRITE_ERRORS},
    dependencies=JSON_BODY,
)
def post_run(session: SessionDep, settings: SettingsDep, key: AdminKey, body: RunIn) -> Response:
    """Record a published run (admin key): CityScore as of `as_of`, as known now.

    A computed run stores no copy of the figures: they are the answer as known at its
    `published_at`, so revisions made later never change what the run published. `as_of`
    may not be after today in the city (422)."""
    run = service.record(session, body.as_of, key=key, today=settings.today())
    return respond.json_response(run, status_code=201)


@router.get(
    "/runs",
    response_model=RunList,
    operation_id="listCityScoreRuns",
    responses=_csv_doc("Boston's Full Metric List of these runs"),
    dependencies=PAGED,
)
def get_runs(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    start: str | None = date_query("First as-of date of the runs, inclusive; default: the first"),
    end: str | None = date_query("Last as-of date of the runs, inclusive; default: the last"),
) -> Response:
    """Published runs by `published_at`: `{as_of, published_at, revised, archived}`.

    `revised`: the figures as known now differ from those known at `published_at` (always
    false for archived runs). `archived`: imported with `cityscore import
    boston-full-metric-list`, figures kept verbatim.

    `/v1/cityscore/runs.csv` is Boston's CityScore Full Metric List, an append log: one row per
    CityScore metric per run, oldest run first, each run's rows as known at its `published_at`
    (`score_calculated_ts`, in city time); `latest_score_flag` is 1 on the rows of the latest
    run of all, 0 elsewhere."""
    first, last = parse_date("start", start), parse_date("end", end)
    check_range(first, last)
    version = changes.version(session, *service.SCOPES)
    if wants_csv(request):
        parse_bool("bom", request.query_params.get("bom"))  # a 400 before anything streams
        etag = make_etag(request, version, "full-metric-list")
        headers = cache_headers(etag, version)
        if not_modified(request, etag, version):
            return not_modified_response(headers)
        headers["Content-Disposition"] = 'attachment; filename="cityscore-full-metric-list.csv"'
        rows = service.full_metric_list(session, settings.tz, first, last)
        chunks = csv_lines(FULL_METRIC_LIST_COLUMNS, rows, service.TEXT_COLUMNS)
        return respond.csv_stream(request, chunks, headers)
    return respond.collection(
        request,
        service.listing(session, first, last),
        version,
        base_url=settings.public_base_url,
    )


@router.get(
    "/summary",
    response_model=Summary,
    operation_id="getCityScoreSummary",
    responses=_csv_doc("Boston's CityScore Summary"),
    dependencies=PAGED,
)
def get_summary(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Boston's CityScore Summary of the latest run: one row per metric with its four window
    scores rounded to 6 decimals (`previous_day_score`, ...), `score_calculated_ts` (the run's
    `published_at` in city time), `score_final_table_ts` (the same instant: a run is complete
    when it is published) and `score_day_name` (the weekday of the day window, e.g. `Friday`).

    404 before any run; `/v1/cityscore/summary.csv` is then just the header."""
    run = service.latest_run(session)
    if run is None and not wants_csv(request):
        raise NotFound("No run has been published yet (POST /v1/cityscore/runs).")
    version = changes.version(session, *service.SCOPES)
    return respond.collection(
        request,
        service.summary_listing(session, run, settings.tz),
        version,
        base_url=settings.public_base_url,
    )
