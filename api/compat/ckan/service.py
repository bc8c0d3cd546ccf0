"""CKAN actions: ``package_list``, ``package_show``, ``resource_show``, ``datastore_search``
(and ``datastore_search_sql``, refused unless enabled)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlmodel import Session

from api.changes import service as changes
from api.compat.ckan import daily_values, sql
from api.compat.ckan.resources import BY_ID, PACKAGE_ID, PACKAGE_NAME, RESOURCES, Resource
from api.compat.ckan.search import CkanError, Search, memory_rows, parse
from api.compat.seek import SeekCache
from api.http.csv import format_number
from api.settings import Settings

EPOCH = dt.datetime(1970, 1, 1)


def _modified(session: Session, resource: Resource) -> str:
    return (changes.version(session, *resource.scopes).last_modified or EPOCH).isoformat()


def resource_dict(session: Session, resource: Resource, base: str, position: int) -> dict[str, Any]:
    return {
        "id": resource.id,
        "package_id": PACKAGE_ID,
        "name": resource.name,
        "description": resource.description,
        "format": "CSV",
        "mimetype": "text/csv",
        "url": f"{base}/datastore/dump/{resource.id}",
        "url_type": "datastore",
        "datastore_active": True,
        "position": position,
        "state": "active",
        "last_modified": _modified(session, resource),
        "metadata_modified": _modified(session, resource),
    }


def package_dict(session: Session, settings: Settings, base: str) -> dict[str, Any]:
    resources = [resource_dict(session, r, base, i) for i, r in enumerate(RESOURCES)]
    modified = max(r["metadata_modified"] for r in resources)
    return {
        "id": PACKAGE_ID,
        "name": PACKAGE_NAME,
        "title": "CityScore",
        "type": "dataset",
        "state": "active",
        "private": False,
        "notes": f"{settings.city_name}'s CityScore: one number for the health of city "
        "services, with every metric's scores and daily values.",
        "license_id": "odc-pddl",
        "license_title": "Open Data Commons Public Domain Dedication and License (PDDL)",
        "organization": {"name": "performance", "title": f"{settings.city_name} performance"},
        "tags": [{"name": t} for t in ("cityscore", "performance", "metrics")],
        "metadata_modified": modified,
        "num_resources": len(resources),
        "resources": resources,
    }


def package_show(session: Session, settings: Settings, data: dict[str, Any], base: str) -> Any:
    wanted = data.get("id") or data.get("name_or_id")
    if not wanted:
        raise CkanError(409, "Validation Error", "id: Missing value", {"id": ["Missing value"]})
    if wanted not in (PACKAGE_NAME, PACKAGE_ID):
        raise CkanError(404, "Not Found Error", "Dataset not found")
    return package_dict(session, settings, base)


def resource_show(session: Session, settings: Settings, data: dict[str, Any], base: str) -> Any:
    wanted = data.get("id")
    if not wanted:
        raise CkanError(409, "Validation Error", "id: Missing value", {"id": ["Missing value"]})
    resource = BY_ID.get(str(wanted))
    if resource is None:
        raise CkanError(404, "Not Found Error", "Resource was not found.")
    return resource_dict(session, resource, base, RESOURCES.index(resource))


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(
            ["" if v is None else format_number(v) if isinstance(v, float) else v for v in row]
        )
    return buffer.getvalue()


def _links(path: str, data: dict[str, Any], search: Search) -> dict[str, str]:
    params = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in data.items()}
    params.pop("offset", None)
    start = f"{path}?{urlencode(params)}"
    params["offset"] = str(search.offset + search.limit)
    return {"start": start, "next": f"{path}?{urlencode(params)}"}


def datastore_search(
    session: Session,
    settings: Settings,
    data: dict[str, Any],
    path: str,
    seeks: SeekCache,
) -> dict[str, Any]:
    """CKAN's datastore_search result: ``{fields, records, offset, limit, total, _links}``."""
    search = parse(data)
    resource = search.resource
    if resource.dataset is not None:
        version = changes.version(session, *resource.scopes).token
        stable = sorted((k, str(v)) for k, v in data.items() if k not in ("offset", "limit"))
        fingerprint = f"ckan|{stable!r}"
        records, total = daily_values.search_rows(
            session, search, seeks, version, fingerprint, settings.today()
        )
    else:
        records, count = memory_rows(session, settings, search)
        total = count if search.include_total else None
    types = resource.field_types()
    fields = [{"id": f, "type": types[f]} for f in search.fields]
    shaped: Any
    if search.records_format == "objects":
        shaped = [{f: _cell(r.get(f)) for f in search.fields} for r in records]
    else:
        lists = [[_cell(r.get(f)) for f in search.fields] for r in records]
        shaped = lists if search.records_format == "lists" else _csv(lists)
    result: dict[str, Any] = {
        "include_total": search.include_total,
        "resource_id": resource.id,
        "fields": fields,
        "records_format": search.records_format,
        "records": shaped,
        "limit": search.limit,
        "offset": search.offset,
        "_links": _links(path, data, search),
    }
    if total is not None:
        result["total"] = total
        result["total_was_estimated"] = False
    return result


def datastore_search_sql(session: Session, settings: Settings, data: dict[str, Any]) -> Any:
    """403 unless enabled; then one whitelisted SELECT over ``daily-values`` (see ckan/sql.py)."""
    if not settings.ckan_datastore_sql_enabled:
        raise CkanError(
            403,
            "Authorization Error",
            "Access denied: datastore_search_sql is disabled on this portal; "
            "use datastore_search (filters, q, sort, fields).",
        )
    return sql.search_sql(session, data.get("sql"), settings.today())


def package_list() -> list[str]:
    return [PACKAGE_NAME]


def dump_rows(
    session: Session, settings: Settings, resource: Resource, seeks: SeekCache
) -> Iterator[list[Any]]:
    """Every record of a resource in ``_id`` order, fetched in seeking pages."""
    offset = 0
    while True:
        data = {
            "resource_id": resource.id,
            "limit": 10_000,
            "offset": offset,
            "include_total": False,
            "records_format": "lists",
        }
        result = datastore_search(session, settings, data, "/datastore/dump", seeks)
        yield from result["records"]
        if len(result["records"]) < 10_000:
            return
        offset += 10_000
