"""CKAN Action API: ``/api/3/action/{action}`` and ``/api/action/{action}``, GET or POST.

Parameters come from the query string (GET; JSON-valued ones such as ``filters`` as JSON text)
or a JSON object body (POST, as ``ckanapi`` sends them). Answers use CKAN's envelope
``{help, success, result}``; errors ``{help, success: false, error: {__type, message}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from api.changes import service as changes
from api.compat.ckan import service
from api.compat.ckan.resources import BY_ID
from api.compat.ckan.search import MAX_LIMIT, CkanError
from api.compat.seek import seek_cache
from api.deps import SessionDep, SettingsDep
from api.http.csv import csv_lines
from api.http.params import CSV_FORM
from api.http.respond import csv_stream, hashed

router = APIRouter(tags=["compat: CKAN"])

JSON_TYPE = "application/json"
PREFIXES = ("/api/3/action", "/api/action")
MAX_BODY = 1024 * 1024


def _base(request: Request, public: str) -> str:
    return (public or str(request.base_url)).rstrip("/")


def _help(request: Request, action: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/api/3/action/help_show?name={action}"


# Every scope a CKAN resource reads (runs, definitions, summary, daily values).
SCOPES = ("runs", "scores", "metrics", "departments", "values")


def envelope(
    request: Request, action: str, result: Any, session: Session | None = None
) -> Response:
    """CKAN's success envelope. A GET has the API's caching (``session``: the store whose
    data versions it covers); a POST is an action call, answered uncached."""
    body = orjson.dumps({"help": _help(request, action), "success": True, "result": result})
    if request.method != "GET":
        return Response(body, media_type=JSON_TYPE)
    if session is None:  # package_list: follows from the code alone
        return hashed(request, body)
    return hashed(request, body, changes.version(session, *SCOPES))


def ckan_error(request: Request, exc: CkanError) -> Response:
    action = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    error: dict[str, Any] = {"__type": exc.kind, "message": exc.message, **exc.fields}
    body = {"help": _help(request, action), "success": False, "error": error}
    return Response(orjson.dumps(body), status_code=exc.status, media_type=JSON_TYPE)


async def action_data(request: Request) -> dict[str, Any]:
    """The action's parameters: the query string, merged with a JSON object body on POST."""
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        data[key] = (
            [*data[key], value]
            if isinstance(data.get(key), list)
            else ([data[key], value] if key in data else value)
        )
    if request.method == "POST":
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise CkanError(409, "Validation Error", "The request body is larger than 1 MB.")
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise CkanError(400, "Bad Request", "The request body is not valid JSON.") from None
            if not isinstance(body, dict):
                raise CkanError(409, "Validation Error", "The request body must be a JSON object.")
            data.update(body)
    return data


ActionData = Annotated[dict[str, Any], Depends(action_data)]
ResourceId = Annotated[
    str | None,
    Query(
        description="Resource id: `dd657c02-3443-4c00-8b29-56a40cfe7ee4` (Full Metric List), "
        "`db7b8b86-5c35-45b2-9276-5a6527ae6edc` (definitions), `cityscore-summary`, `daily-values`"
    ),
]
Filters = Annotated[
    str | None, Query(description='Exact matches as a JSON object, e.g. `{"metric": "311"}`')
]
Text = Annotated[
    str | None, Query(description="Full-text search: a string, or a JSON object field -> text")
]
Fields = Annotated[str | None, Query(description="Fields to return, comma-separated")]
Sort = Annotated[str | None, Query(description="`field [asc|desc], ...` (default `_id`)")]
Limit = Annotated[
    str | None, Query(description=f"Records per page, default 100, at most {MAX_LIMIT}")
]
Offset = Annotated[str | None, Query(description="Records to skip; follow `_links.next`")]
Total = Annotated[str | None, Query(description="Include `total` (default true)")]
Format = Annotated[str | None, Query(description="`objects` (default), `lists` or `csv`")]
PackageId = Annotated[str | None, Query(alias="id", description="Package name or id: `cityscore`")]
ResourceShowId = Annotated[str | None, Query(alias="id", description="Resource id")]
Sql = Annotated[
    str | None,
    Query(description='One SELECT over "daily-values" (403 unless enabled by the operator)'),
]

POST_BODY = {
    "requestBody": {
        "required": False,
        "description": "The action's parameters as a JSON object (what ckanapi sends)",
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "example": {"resource_id": "daily-values", "limit": 5},
            }
        },
    }
}
ERROR_DOC = {
    "description": "CKAN error `{help, success: false, error: {__type, message}}`: Not Found "
    "Error 404, Validation Error 409, Authorization Error 403",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


def _operation_id(name: str, method: str, prefix: str) -> str:
    """``datastore_search`` + POST -> ``ckanDatastoreSearchPost`` (stable camelCase ids)."""
    words = "".join(w.title() for w in name.split("_"))
    suffix = ("" if method == "GET" else "Post") + ("" if prefix == PREFIXES[0] else "Legacy")
    return f"ckan{words}{suffix}"


def _register(name: str, handler: Callable[..., Response], summary: str) -> None:
    for prefix in PREFIXES:
        for method in ("GET", "POST"):
            router.add_api_route(
                f"{prefix}/{name}",
                handler,
                methods=[method],
                operation_id=_operation_id(name, method, prefix),
                include_in_schema=prefix == PREFIXES[0],
                summary=summary,
                responses={403: ERROR_DOC, 404: ERROR_DOC, 409: ERROR_DOC},
                openapi_extra=POST_BODY if method == "POST" else None,
            )


def package_list(request: Request, data: ActionData) -> Response:
    """Every package's name (`["cityscore"]`)."""
    return envelope(request, "package_list", service.package_list())


def package_show(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    data: ActionData,
    id: PackageId = None,
) -> Response:
    """The `cityscore` package and its four resources."""
    base = _base(request, settings.public_base_url)
    result = service.package_show(session, settings, data, base)
    return envelope(request, "package_show", result, session)


def resource_show(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    data: ActionData,
    id: ResourceShowId = None,
) -> Response:
    """One resource's metadata (its `url` is the full CSV download)."""
    base = _base(request, settings.public_base_url)
    result = service.resource_show(session, settings, data, base)
    return envelope(request, "resource_show", result, session)


def datastore_search(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    data: ActionData,
    resource_id: ResourceId = None,
    filters: Filters = None,
    q: Text = None,
    fields: Fields = None,
    sort: Sort = None,
    limit: Limit = None,
    offset: Offset = None,
    include_total: Total = None,
    records_format: Format = None,
) -> Response:
    """Search a resource's records: `{fields, records, offset, limit, total, _links}`."""
    result = service.datastore_search(
        session, settings, data, request.url.path, seek_cache(request.app.state)
    )
    return envelope(request, "datastore_search", result, session)


def datastore_search_sql(
    request: Request, session: SessionDep, settings: SettingsDep, data: ActionData, sql: Sql = None
) -> Response:
    """403 Authorization Error unless `CKAN_DATASTORE_SQL_ENABLED` is set; then one
    `SELECT ... FROM "daily-values" [WHERE] [GROUP BY] [ORDER BY] [LIMIT] [OFFSET]`."""
    result = service.datastore_search_sql(session, settings, data)
    return envelope(request, "datastore_search_sql", result, session)


_register("package_list", package_list, "CKAN package_list")
_register("package_show", package_show, "CKAN package_show")
_register("resource_show", resource_show, "CKAN resource_show")
_register("datastore_search", datastore_search, "CKAN datastore_search")
_register("datastore_search_sql", datastore_search_sql, "CKAN datastore_search_sql")


@router.api_route("/api/3/action/{action}", methods=["GET", "POST"], include_in_schema=False)
@router.api_route("/api/action/{action}", methods=["GET", "POST"], include_in_schema=False)
def unknown_action(action: str) -> Response:
    raise CkanError(400, "Bad Request", f"Bad request - Action name not known: {action}")


@router.get(
    "/datastore/dump/{resource_id}",
    operation_id="ckanDatastoreDump",
    tags=["compat: CKAN"],
    responses={404: ERROR_DOC, 200: {"content": {"text/csv": {}}, "description": "CSV"}},
    dependencies=CSV_FORM,
)
def datastore_dump(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    resource_id: Annotated[str, Path(description="Resource id (see package_show)")],
) -> Response:
    """A resource's every record as CSV (`_id` first), like CKAN's datastore dump."""
    resource = BY_ID.get(resource_id)
    if resource is None:
        raise CkanError(404, "Not Found Error", "Resource was not found.")
    rows = service.dump_rows(session, settings, resource, seek_cache(request.app.state))
    headers = {"Content-Disposition": f'attachment; filename="{resource_id}.csv"'}
    # Spooled off the store like every other download (a slow client holds no connection).
    return csv_stream(request, csv_lines(resource.field_ids(), rows), headers)
