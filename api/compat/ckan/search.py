"""``datastore_search``: validate CKAN's parameters, then search a small resource in memory or
the daily values in SQL (seeking under offsets, like SODA)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlmodel import Session

from api.compat.ckan.resources import BY_ID, Resource
from api.settings import Settings

DEFAULT_LIMIT = 100
MAX_LIMIT = 32_000
PARAMS = {
    "resource_id",
    "id",
    "filters",
    "q",
    "fields",
    "sort",
    "limit",
    "offset",
    "include_total",
    "records_format",
    "plain",
    "language",
    "distinct",
    "total_estimation_threshold",
}


class CkanError(Exception):
    """A CKAN action error: ``{__type, message}`` plus per-field messages for validation."""

    def __init__(self, status: int, kind: str, message: str, fields: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.fields = status, kind, message, fields or {}


def invalid(field: str, message: str) -> CkanError:
    return CkanError(409, "Validation Error", f"{field}: {message}", {field: [message]})


@dataclass
class Search:
    resource: Resource
    filters: dict[str, list[Any]]
    q: str | dict[str, str] | None
    fields: list[str]
    sort: list[tuple[str, bool]]  # (field, descending)
    limit: int
    offset: int
    include_total: bool
    records_format: str


def _json_param(name: str, raw: Any) -> Any:
    if isinstance(raw, str) and raw[:1] in "{[":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise invalid(name, "is not valid JSON.") from None
    return raw


def _natural(name: str, raw: Any, default: int, maximum: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if not isinstance(raw, bool) else -1
    except (TypeError, ValueError):
        raise invalid(name, "Invalid integer") from None
    if value < 0:
        raise invalid(name, "Must be a natural number")
    if maximum is not None and value > maximum:
        raise invalid(name, f"Must be at most {maximum}")
    return value


def _bool(name: str, raw: Any, default: bool) -> bool:
    if raw is None or isinstance(raw, bool):
        return default if raw is None else raw
    text = str(raw).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise invalid(name, "Must be true or false")


def _names(resource: Resource, name: str, raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",")]
    known = resource.field_ids()
    for item in items:
        if not isinstance(item, str) or item not in known:
            raise invalid(name, f"field {item!r} not in resource; fields are {', '.join(known)}")
    return list(items)


def _sort(resource: Resource, raw: Any) -> list[tuple[str, bool]]:
    if raw is None or raw == "":
        return []
    parts = raw if isinstance(raw, list) else str(raw).split(",")
    out = []
    for part in parts:
        words = str(part).split()
        if not words or len(words) > 2:
            raise invalid("sort", f"cannot sort by {part!r}")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise invalid("sort", f"sort direction must be asc or desc, got {words[1]!r}")
        _names(resource, "sort", [words[0].strip('"')])
        out.append((words[0].strip('"'), direction == "desc"))
    return out


def _filters(resource: Resource, raw: Any) -> dict[str, list[Any]]:
    raw = _json_param("filters", raw)
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise invalid("filters", "Not a json object")
    _names(resource, "filters", list(raw))
    out = {k: v if isinstance(v, list) else [v] for k, v in raw.items()}
    for field, values in out.items():
        if any(not isinstance(v, str | int | float) or isinstance(v, bool) for v in values):
            raise invalid("filters", f"the value for {field} must be text, a number or a list")
    return out


def parse(data: dict[str, Any]) -> Search:
    """Validate ``datastore_search`` parameters (409 Validation Error naming the field)."""
    unknown = sorted(set(data) - PARAMS)
    if unknown:
        raise invalid(unknown[0], "The input field was not expected.")
    resource_id = data.get("resource_id") or data.get("id")
    if not resource_id:
        raise invalid("resource_id", "Missing value")
    resource = BY_ID.get(str(resource_id))
    if resource is None:
        raise CkanError(404, "Not Found Error", f'Resource "{resource_id}" was not found.')
    if _bool("distinct", data.get("distinct"), False):
        raise invalid("distinct", "distinct is not supported here")
    q = _json_param("q", data.get("q"))
    if isinstance(q, dict):
        _names(resource, "q", list(q))
    elif q is not None and not isinstance(q, str):
        raise invalid("q", "Must be a string or a JSON object")
    records_format = str(data.get("records_format") or "objects")
    if records_format not in ("objects", "lists", "csv"):
        raise invalid("records_format", "Must be objects, lists or csv")
    return Search(
        resource=resource,
        filters=_filters(resource, data.get("filters")),
        q=q or None,
        fields=_names(resource, "fields", data["fields"])
        if data.get("fields")
        else resource.field_ids(),
        sort=_sort(resource, data.get("sort")),
        limit=_natural("limit", data.get("limit"), DEFAULT_LIMIT, MAX_LIMIT),
        offset=_natural("offset", data.get("offset"), 0),
        include_total=_bool("include_total", data.get("include_total"), True),
        records_format=records_format,
    )


# --- small resources, in memory ------------------------------------------------------------


def _matches(row: dict[str, Any], search: Search) -> bool:
    for field, wanted in search.filters.items():
        if str(row.get(field)) not in {str(w) for w in wanted}:
            return False
    if isinstance(search.q, str):
        text = " ".join(str(v) for v in row.values() if v is not None).lower()
        return all(word in text for word in search.q.lower().split())
    if isinstance(search.q, dict):
        return all(str(v).lower() in str(row.get(f) or "").lower() for f, v in search.q.items())
    return True


def memory_rows(
    session: Session, settings: Settings, search: Search
) -> tuple[list[dict[str, Any]], int]:
    """One page of a small resource's records, and how many match."""
    assert search.resource.rows is not None
    rows = [{"_id": i, **r} for i, r in enumerate(search.resource.rows(session, settings), 1)]
    rows = [r for r in rows if _matches(r, search)]
    for field, desc in reversed(search.sort):
        present = [r for r in rows if r.get(field) is not None]
        missing = [r for r in rows if r.get(field) is None]
        present.sort(key=lambda r, f=field: r[f], reverse=desc)  # type: ignore[misc]
        rows = present + missing
    page = rows[search.offset : search.offset + search.limit]
    return page, len(rows)
