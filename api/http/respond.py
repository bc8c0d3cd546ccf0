"""One data fetch feeds every renderer: a Listing renders as a JSON page or a CSV stream."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.errors import BadRequest, NotFound
from api.http.caching import Version, cache_headers, make_etag, not_modified, not_modified_response
from api.http.csv import csv_lines, lf_to_crlf, with_bom
from api.http.formats import CSV_MEDIA_TYPE, wants_csv
from api.http.memory_first import require_store
from api.http.paging import decode_cursor, encode_cursor, parse_limit, query_fingerprint
from api.http.params import parse_bool
from api.http.streaming import release_with_slot, spooled
from db.session import DETACHED

Row = Sequence[Any]


class ResponseCache:
    """Rendered JSON bodies keyed by ETag (plus the base URL that ``next`` links use).

    An ETag changes exactly when the data behind a response changes, so a body stored under
    it can never be stale; the cache only saves re-reading and re-rendering identical answers.
    One per app (``app.state.responses``), bounded by entries and by body size.
    """

    def __init__(
        self, max_entries: int = 256, max_body: int = 2 * 1024 * 1024, max_bytes: int = 32 << 20
    ):
        self.max_entries = max_entries
        self.max_body = max_body
        self.max_bytes = max_bytes  # all bodies together: the cache's memory is bounded
        self.size = 0
        self._items: OrderedDict[str, tuple[bytes, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, dict[str, str]] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, body: bytes, headers: dict[str, str]) -> None:
        if len(body) > self.max_body:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old[0])
            self._items[key] = (body, dict(headers))
            self.size += len(body)
            while len(self._items) > self.max_entries or self.size > self.max_bytes:
                _, (dropped, _) = self._items.popitem(last=False)
                self.size -= len(dropped)


def _cache(request: Request) -> ResponseCache | None:
    cache: ResponseCache | None = getattr(request.app.state, "responses", None)
    return cache


JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


@dataclass
class Listing:
    """A collection: its columns, how to fetch rows after a keyset key, and how to key a row.

    ``fetch(after, limit)`` returns rows in the collection's unique order, strictly after the key
    ``after`` (None: from the start), at most ``limit`` rows (None: all of them, lazily).
    ``key_of(row)`` gives a row's keyset key as JSON primitives; ``parse_key`` turns a decoded
    cursor key back into what ``fetch`` expects (raising ValueError when it is malformed).
    ``copy_csv``, when set, streams the whole collection as ready CSV bytes with LF row ends
    (PostgreSQL's COPY): the fast path for bulk downloads.
    """

    name: str
    columns: Sequence[str]
    fetch: Callable[[Any, int | None], Iterable[Row]]
    key_of: Callable[[Row], list[Any]]
    key_width: int
    parse_key: Callable[[list[Any]], Any] = lambda key: key
    text_columns: frozenset[str] = field(default_factory=frozenset)
    copy_csv: Callable[[], Iterator[bytes]] | None = None
    csv_fetch: Callable[[Any, int | None], Iterable[Row]] | None = None  # CSV-shaped rows
    # The JSON array of fetched rows, when the listing holds them ready encoded.
    json_rows: Callable[[Sequence[Row]], bytes] | None = None


def detach_session(request: Request) -> Callable[[], None]:
    """Hand the request's session to a streamed download; returns how to close it."""
    session = getattr(request.state, "db_session", None)
    if session is None:
        return lambda: None
    session.info[DETACHED] = True
    return session.close


def csv_stream(request: Request, chunks: Iterator[bytes], headers: dict[str, str]) -> Response:
    """A CSV download spooled off the store (see ``api.http.streaming``)."""
    require_store()  # it takes the session over and an export slot: never twice
    release = release_with_slot(request.scope, detach_session(request))
    body = spooled(with_bom(chunks, _bom(request)), release)
    return StreamingResponse(body, media_type=CSV_MEDIA_TYPE, headers=headers)


def _bom(request: Request) -> bool:
    return bool(parse_bool("bom", request.query_params.get("bom")))


def _next_url(request: Request, cursor: str, base_url: str) -> str:
    url = request.url.include_query_params(cursor=cursor)
    if base_url:
        return base_url.rstrip("/") + url.path + ("?" + url.query if url.query else "")
    return str(url)


def _json(body: Any) -> bytes:
    return orjson.dumps(body, option=JSON_OPTIONS)


def _after(request: Request, listing: Listing, fingerprint: str) -> Any:
    """The keyset key the request's ``cursor`` points after (None: the first page)."""
    raw_cursor = request.query_params.get("cursor")
    if raw_cursor is None:
        return None
    key = decode_cursor(raw_cursor, fingerprint, listing.key_width)
    try:
        return listing.parse_key(key)
    except (ValueError, TypeError):
        raise BadRequest("cursor is malformed.") from None


def _page(
    request: Request,
    listing: Listing,
    page: tuple[Any, int, str],
    headers: dict[str, str],
    base_url: str,
) -> bytes:
    """One JSON page ``{data, next}`` (``page``: after, limit, fingerprint); sets ``Link``."""
    after, limit, fingerprint = page
    rows = list(listing.fetch(after, limit + 1))
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        cursor = encode_cursor(listing.key_of(rows[-1]), fingerprint)
        next_url = _next_url(request, cursor, base_url)
        headers["Link"] = f'<{next_url}>; rel="next"'
    if listing.json_rows is not None:  # the same bytes as encoding the dicts below
        return b'{"data":' + listing.json_rows(rows) + b',"next":' + _json(next_url) + b"}"
    # A row may carry its keyset key after the published columns (left out).
    data = list(map(row_objects(tuple(listing.columns)), rows))
    return _json({"data": data, "next": next_url})


@lru_cache(maxsize=256)
def row_objects(columns: tuple[str, ...]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """A function making a row's JSON object: ``{column: cell}`` for the published columns
    (cells after them, such as a keyset key, are left out).

    Compiled once per column set as one dict display: 0.4 us a row, where
    ``dict(zip(columns, row, strict=False))`` took 1.4 us (a 1000-row page: 1.4 ms became 0.4).
    The column names are the listing's own constants, written as string literals (``repr``).
    """
    if not all(isinstance(c, str) for c in columns):
        raise TypeError("columns must be strings")
    body = ", ".join(f"{column!r}: row[{i}]" for i, column in enumerate(columns))
    make: Callable[[Sequence[Any]], dict[str, Any]] = eval(f"lambda row: {{{body}}}")
    return make


def collection(
    request: Request,
    listing: Listing,
    version: Version,
    *,
    extra: str = "",
    base_url: str = "",
) -> Response:
    """Answer a collection GET: 304, a streamed CSV, or one JSON page with a ``next`` link."""
    csv = wants_csv(request)
    _bom(request)  # a bad ?bom= is a 400 before anything streams
    fingerprint = query_fingerprint(request)
    after = limit = None
    if not csv:
        limit = parse_limit(request.query_params.get("limit"))
        after = _after(request, listing, fingerprint)
    etag = make_etag(request, version, "csv" if csv else "json", extra)
    headers = cache_headers(etag, version)
    if not_modified(request, etag, version):
        return not_modified_response(headers)
    if csv:
        headers["Content-Disposition"] = f'attachment; filename="{listing.name}.csv"'
        if listing.copy_csv is not None:
            return csv_stream(request, lf_to_crlf(listing.copy_csv()), headers)
        rows = (listing.csv_fetch or listing.fetch)(None, None)
        return csv_stream(request, csv_lines(listing.columns, rows, listing.text_columns), headers)
    assert limit is not None
    cache = _cache(request)
    cache_key = f"{etag}|{request.base_url}|{base_url}"
    cached = cache.get(cache_key) if cache else None
    if cached is not None:
        return Response(cached[0], media_type="application/json", headers=cached[1])
    content = _page(request, listing, (after, limit, fingerprint), headers, base_url)
    if cache:
        cache.put(cache_key, content, headers)
    return Response(content, media_type="application/json", headers=headers)


def private_collection(request: Request, listing: Listing, *, base_url: str = "") -> Response:
    """One JSON page of a collection that depends on the caller's key: keyset-paged like
    ``collection``, but never cached (``Cache-Control: private, no-store``) and JSON only."""
    if request.scope.get("state", {}).get("csv_suffix"):
        raise NotFound("This collection has no CSV form; drop the .csv suffix.")
    fingerprint = query_fingerprint(request)
    limit = parse_limit(request.query_params.get("limit"))
    after = _after(request, listing, fingerprint)
    headers = {"Cache-Control": "private, no-store"}
    content = _page(request, listing, (after, limit, fingerprint), headers, base_url)
    return Response(content, media_type="application/json", headers=headers)


def rows_listing(
    name: str,
    columns: Sequence[str],
    load: Callable[[], Sequence[Row]],
    *,
    parse_key: Callable[[list[Any]], Any],
    text_columns: frozenset[str] = frozenset(),
    csv_row: Callable[[Row], Row] | None = None,
    json_rows: Callable[[Sequence[Row]], bytes] | None = None,
) -> Listing:
    """A listing over rows computed once, on first use, in the order of their first column
    (unique); ``parse_key`` turns a cursor's key back into a first-column value, and
    ``csv_row`` reshapes a row for CSV (lists as ``;``-joined cells, say)."""
    cache: list[Sequence[Row]] = []

    def fetch(after: Any, limit: int | None) -> list[Row]:
        if not cache:
            cache.append(load())
        rows = cache[0]
        if after is not None:  # rows are in first-column order
            rows = rows[bisect.bisect_right(rows, after, key=lambda r: r[0]) :]
        return list(rows) if limit is None else list(rows[:limit])

    def key_of(row: Row) -> list[Any]:
        first = row[0]
        return [first.isoformat() if isinstance(first, dt.date) else first]

    csv_fetch = None
    if csv_row is not None:
        reshape = csv_row
        csv_fetch = lambda after, limit: [reshape(r) for r in fetch(after, limit)]  # noqa: E731
    return Listing(
        name=name,
        columns=columns,
        fetch=fetch,
        key_of=key_of,
        key_width=1,
        parse_key=parse_key,
        text_columns=text_columns,
        csv_fetch=csv_fetch,
        json_rows=json_rows,
    )


def document(
    request: Request,
    version: Version,
    build: Callable[[], Any],
    *,
    extra: str = "",
    csv_rows: Callable[[Any], tuple[str, Sequence[str], Iterable[Row], frozenset[str]]]
    | None = None,
) -> Response:
    """Answer a single-document GET (JSON, or CSV when the document has a tabular form)."""
    if csv_rows is None and request.scope.get("state", {}).get("csv_suffix"):
        raise NotFound("This resource has no CSV form; drop the .csv suffix.")
    csv = wants_csv(request) and csv_rows is not None
    _bom(request)  # a bad ?bom= is a 400 before anything streams
    etag = make_etag(request, version, "csv" if csv else "json", extra)
    headers = cache_headers(etag, version)
    if not_modified(request, etag, version):
        return not_modified_response(headers)
    cache = None if csv else _cache(request)
    cache_key = f"{etag}|{request.base_url}"
    cached = cache.get(cache_key) if cache else None
    if cached is not None:
        return Response(cached[0], media_type="application/json", headers=cached[1])
    body = build()
    if csv and csv_rows is not None:
        name, columns, rows, text_columns = csv_rows(body)
        headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return csv_stream(request, csv_lines(columns, rows, text_columns), headers)
    content = _json(body)
    if cache:
        cache.put(cache_key, content, headers)
    return Response(content, media_type="application/json", headers=headers)


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A plain JSON answer (writes, receipts): no caching headers."""
    return Response(
        _json(body), status_code=status_code, media_type="application/json", headers=headers
    )


# Documents that follow from the code alone (the OpenAPI file, the Data Package descriptor)
# cannot have changed since this process started: their Last-Modified.
STARTED = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def hashed(
    request: Request,
    content: bytes,
    data: Version | None = None,
    media_type: str = "application/json",
) -> Response:
    """A built GET answer with the API's caching and 304 on a match: its ETag covers the hash
    of its bytes and ``data``, the version of the data behind it (whose change time is its
    Last-Modified). Without ``data`` the document follows from the code alone."""
    last_modified = STARTED if data is None else data.last_modified
    version = Version(hashlib.sha256(content).hexdigest()[:32], last_modified)
    etag = make_etag(request, version, media_type, "" if data is None else data.token)
    headers = cache_headers(etag, version)
    if not_modified(request, etag, version):
        return not_modified_response(headers)
    return Response(content, media_type=media_type, headers=headers)


def rendered(
    request: Request,
    version: Version,
    media_type: str,
    build: Callable[[], str | bytes],
    *,
    extra: str = "",
    status_code: int = 200,
) -> Response:
    """Answer a GET whose body is rendered text (HTML, SVG, Atom) with the API's caching:
    an ETag from the data version and the query, 304 on a match, Cache-Control."""
    etag = make_etag(request, version, media_type, extra)
    headers = cache_headers(etag, version)
    if status_code == 200 and not_modified(request, etag, version):
        return not_modified_response(headers)
    return Response(build(), status_code=status_code, media_type=media_type, headers=headers)
