"""Strict parsing of query parameters shared by every endpoint (400 on anything malformed)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from api.errors import BadRequest, UnsupportedMediaType
from api.http.paging import DEFAULT_LIMIT, MAX_LIMIT

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Windows and baselines reach back up to 50 years and forward a few months; dates outside
# this range would overflow Python's calendar, so they are refused as bad requests.
MIN_DATE = dt.date(100, 1, 1)
MAX_DATE = dt.date(9899, 12, 31)


def parse_date(name: str, raw: str | None) -> dt.date | None:
    if raw is None or raw == "":
        return None
    if not _DATE_RE.match(raw):
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD; got {raw!r}.")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} is not a real calendar date: {raw!r}.") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise BadRequest(f"{name} must be between {MIN_DATE} and {MAX_DATE}.")
    return day


def parse_instant(name: str, raw: str | None) -> dt.datetime | None:
    """An RFC 3339 instant with an offset (or Z), returned as naive UTC."""
    if raw is None or raw == "":
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise BadRequest(
            f"{name} must be an RFC 3339 instant such as 2026-05-16T00:00:00Z."
        ) from None
    if value.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone offset or Z.")
    try:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:
        raise BadRequest(f"{name} is out of range.") from None


def check_range(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and start > end:
        raise BadRequest(f"start ({start}) is after end ({end}).")


def parse_bool(name: str, raw: str | None) -> bool | None:
    """``true``/``1``/``yes`` or ``false``/``0``/``no`` (any case); None when absent."""
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name} must be true or false.")


MAX_SEARCH = 500


def parse_search(raw: str | None) -> str | None:
    """A ``q`` full-text filter: at most MAX_SEARCH characters (SQLite's LIKE refuses
    patterns past 50 KB, and no name or summary is that long)."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_SEARCH:
        raise BadRequest(f"q may be at most {MAX_SEARCH} characters; got {len(raw)}.")
    return raw


# --- declared query parameters ---------------------------------------------------------------
# Handlers read paging and formats through the strict parsers above (400 with a clear message,
# never FastAPI's 422), so these are declared as optional strings for validation and carry
# their real JSON Schema for the OpenAPI document only.


def _documented_as(**schema: Any) -> Callable[[dict[str, Any]], None]:
    def replace(generated: dict[str, Any]) -> None:
        generated.clear()
        generated.update(schema)

    return replace


_DATE = _documented_as(type="string", format="date")


def date_query(description: str) -> Any:
    """An optional ``YYYY-MM-DD`` query parameter (read with ``parse_date``)."""
    return Query(None, description=description, json_schema_extra=_DATE)


def date_path(description: str) -> Any:
    """A ``YYYY-MM-DD`` path parameter (read with ``parse_date``)."""
    return Path(description=description, json_schema_extra=_DATE)


def instant_query(description: str) -> Any:
    """An optional RFC 3339 instant query parameter (read with ``parse_instant``)."""
    return Query(
        None,
        description=description,
        json_schema_extra=_documented_as(type="string", format="date-time"),
    )


def bool_query(description: str) -> Any:
    """An optional ``true``/``false`` query parameter (read with ``parse_bool``)."""
    return Query(None, description=description, json_schema_extra=_documented_as(type="boolean"))


LimitParam = Annotated[
    str | None,
    Query(
        description=f"Rows per JSON page: default {DEFAULT_LIMIT}, at most {MAX_LIMIT} (more is "
        "a 400, never a silent clamp). CSV ignores it and streams every row.",
        json_schema_extra=_documented_as(
            type="integer", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT
        ),
    ),
]
CursorParam = Annotated[
    str | None,
    Query(
        description="Opaque cursor from the previous page's `next` link (bound to its query).",
        json_schema_extra=_documented_as(type="string"),
    ),
]
BomParam = Annotated[
    str | None,
    Query(
        description="CSV only: `true` starts the file with a UTF-8 byte order mark (for Excel).",
        json_schema_extra=_documented_as(type="boolean", default=False),
    ),
]


async def _paged(
    limit: LimitParam = None, cursor: CursorParam = None, bom: BomParam = None
) -> None:
    """Declares the parameters every collection reads through ``respond.collection``.
    ``async``, as declarations that do nothing: a sync one costs a threadpool hop."""


async def _bom_only(bom: BomParam = None) -> None:
    """Declares ``bom`` for documents that also have a CSV form (``async``: no hop)."""


async def _json_only(request: Request) -> None:
    """A JSON body's media type, checked before the body is validated: what FastAPI parses as
    JSON (application/json, application/*+json), else a 415 rather than a 422 about a
    dictionary. FastAPI reads a body without a Content-Type as bytes: that is a 415 too.
    ``async``: a header check needs no threadpool hop."""
    mime = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json")):
        return
    raise UnsupportedMediaType(
        f"Content-Type '{mime[:100]}' is not accepted: send application/json."
        if mime
        else "The body needs Content-Type: application/json."
    )


# ``dependencies=`` of a route: PAGED on collections (JSON pages and CSV), CSV_FORM on
# single documents with a CSV twin, JSON_BODY on writes that take a JSON object.
PAGED = [Depends(_paged)]
CSV_FORM = [Depends(_bom_only)]
JSON_BODY = [Depends(_json_only)]
