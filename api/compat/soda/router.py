"""SODA 2.1 endpoints: what ``sodapy`` and Socrata-minded scripts call."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response, StreamingResponse

from api.compat.seek import seek_cache
from api.compat.soda import render, service
from api.compat.soda.query import DEFAULT_LIMIT, MAX_LIMIT
from api.deps import SessionDep, SettingsDep
from api.http.caching import cache_headers, make_etag, not_modified, not_modified_response
from api.http.csv import csv_lines
from api.http.respond import hashed

router = APIRouter(tags=["compat: SODA"])

JSON_TYPE = "application/json"  # JSON is UTF-8 by definition (RFC 8259): no charset
CSV_TYPE = "text/csv; charset=utf-8"  # text/* defaults to Latin-1 in HTTP clients

SODA_ERROR: dict[str, Any] = {
    "description": "Socrata error: `{code, error: true, message, data}` "
    "(`query.soql.invalid` 400, `dataset.missing` 404)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["code", "error", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "error": {"type": "boolean"},
                    "message": {"type": "string"},
                    "data": {"type": "object"},
                },
            }
        }
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {400: SODA_ERROR, 404: SODA_ERROR}

DatasetName = Annotated[
    str, Path(description="Dataset id: `values`, `metrics`, `cityscore` or `scores`")
]
Select = Annotated[
    str | None,
    Query(alias="$select", description="Columns and expressions, `AS` aliases, aggregates"),
]
Where = Annotated[
    str | None,
    Query(
        alias="$where",
        description="A condition: `= != < <= > >=`, `AND OR NOT`, parentheses, `between ... "
        "and ...`, `in(...)`, `IS [NOT] NULL`, `like`, number/string/date literals",
    ),
]
Order = Annotated[
    str | None,
    Query(alias="$order", description="Sort: `column [ASC|DESC], ...` (default: key order)"),
]
Group = Annotated[
    str | None, Query(alias="$group", description="Group by columns (with aggregates)")
]
Limit = Annotated[
    str | None,
    Query(alias="$limit", description=f"Rows, default {DEFAULT_LIMIT}, at most {MAX_LIMIT}"),
]
Offset = Annotated[str | None, Query(alias="$offset", description="Rows to skip (paging)")]
Search = Annotated[
    str | None, Query(alias="$q", description="Full-text search over the text columns")
]
AppToken = Annotated[
    str | None, Header(alias="X-App-Token", description="Socrata app token: accepted, ignored")
]


def soda_error(exc: service.SodaError) -> Response:
    body = {"code": exc.code, "error": True, "message": exc.message, "data": exc.data}
    return Response(orjson.dumps(body), status_code=exc.status, media_type=JSON_TYPE)


def _answer(
    request: Request, session: SessionDep, settings: SettingsDep, name: str, csv: bool
) -> Response:
    result = service.prepare(session, name, request.query_params.multi_items(), settings.today())
    query = result.query
    etag = make_etag(request, result.version, "soda-csv" if csv else "soda-json")
    headers = cache_headers(etag, result.version)
    headers["X-SODA2-Fields"] = orjson.dumps(query.names).decode()
    headers["X-SODA2-Types"] = orjson.dumps(query.types).decode()
    if not_modified(request, etag, result.version):
        return not_modified_response(headers)
    rows = list(result.rows(seek_cache(request.app.state)))
    if csv:
        headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        body = csv_lines(query.names, render.cells(query.types, rows, csv=True))
        return StreamingResponse(body, media_type=CSV_TYPE, headers=headers)
    data = render.json_records(query.names, query.types, rows)
    return Response(orjson.dumps(data), media_type=JSON_TYPE, headers=headers)


@router.get(
    "/resource/{dataset}.json",
    operation_id="sodaResourceJson",
    responses=ERRORS,
    summary="SODA 2.1 query (JSON)",
)
def soda_json(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    dataset: DatasetName,
    select: Select = None,
    where: Where = None,
    order: Order = None,
    group: Group = None,
    limit: Limit = None,
    offset: Offset = None,
    q: Search = None,
    x_app_token: AppToken = None,
) -> Response:
    """Socrata's JSON: an array of objects, numbers as strings, nulls omitted, dates as
    floating timestamps. Any other parameter `column=value` filters on that column."""
    return _answer(request, session, settings, dataset, csv=False)


@router.get(
    "/resource/{dataset}.csv",
    operation_id="sodaResourceCsv",
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "CSV rows"}},
    summary="SODA 2.1 query (CSV)",
)
def soda_csv(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    dataset: DatasetName,
    select: Select = None,
    where: Where = None,
    order: Order = None,
    group: Group = None,
    limit: Limit = None,
    offset: Offset = None,
    q: Search = None,
    x_app_token: AppToken = None,
) -> Response:
    """The same query as CSV (header row, then the page's rows)."""
    return _answer(request, session, settings, dataset, csv=True)


@router.get("/resource/{dataset}", include_in_schema=False)
def soda_plain(
    request: Request, session: SessionDep, settings: SettingsDep, dataset: str
) -> Response:
    """``.csv`` arrives here with its suffix stripped (CsvSuffixMiddleware); no suffix is JSON."""
    csv = bool(request.scope.get("state", {}).get("csv_suffix"))
    return _answer(request, session, settings, dataset, csv=csv)


@router.get(
    "/api/views/{dataset}.json",
    operation_id="sodaViewMetadata",
    responses=ERRORS,
    summary="SODA dataset metadata",
)
def soda_metadata(
    request: Request, session: SessionDep, settings: SettingsDep, dataset: DatasetName
) -> Response:
    """The dataset's name, columns (`fieldName`, `dataTypeName`) and `rowsUpdatedAt` (epoch s)."""
    body, version = service.metadata(session, dataset, settings.today())
    return hashed(request, orjson.dumps(body), version)
