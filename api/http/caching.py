"""ETag, Last-Modified and conditional requests (304), from a data version token."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

# A CDN may serve a copy up to 60 s old, and while it revalidates (or the origin is down)
# a little longer; ETags make each revalidation a cheap 304.
CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=30, stale-if-error=300"


@dataclass(frozen=True)
class Version:
    """What the data behind a response looks like: changes exactly when that data changes."""

    token: str
    last_modified: dt.datetime | None  # naive UTC


def not_before(version: Version, moment: dt.datetime) -> Version:
    """For answers that depend on today: Last-Modified is at least the start of today."""
    last = version.last_modified
    return Version(version.token, moment if last is None else max(last, moment))


# Read straight from the query string by the shared layer rather than declared per route.
SHARED_PARAMS = frozenset({"limit", "cursor", "bom"})


def known_params(request: Request) -> frozenset[str] | None:
    """The query parameters the matched route reads (None: no route, keep them all)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    known: frozenset[str] | None = getattr(route, "_cityscore_params", None)
    if known is None:
        names: set[str] = set(SHARED_PARAMS)
        pending = [dependant]
        while pending:
            current = pending.pop()
            names.update(p.alias for p in current.query_params)
            pending.extend(current.dependencies)
        known = frozenset(names)
        route._cityscore_params = known  # type: ignore[union-attr]
    return known


def make_etag(request: Request, version: Version, representation: str, extra: str = "") -> str:
    """Parameters the route does not read change nothing in the answer, so they neither change
    the ETag nor key the response cache (junk parameters cannot fill it or bypass it)."""
    known = known_params(request)
    items = request.query_params.multi_items()
    query = "&".join(f"{k}={v}" for k, v in sorted(items) if known is None or k in known)
    raw = "|".join((version.token, representation, request.url.path, query, extra))
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def http_date(ts: dt.datetime) -> str:
    return format_datetime(ts.replace(tzinfo=dt.UTC, microsecond=0), usegmt=True)


def cache_headers(etag: str, version: Version) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
    if version.last_modified is not None:
        headers["Last-Modified"] = http_date(version.last_modified)
    return headers


def not_modified(request: Request, etag: str, version: Version) -> bool:
    """RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims and version.last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        modified = version.last_modified.replace(tzinfo=dt.UTC, microsecond=0)
        return modified <= since
    return False


def not_modified_response(headers: dict[str, str]) -> Response:
    return Response(status_code=304, headers=headers)
