"""One error hierarchy and one handler: every failure is RFC 9457 problem+json.

The body is ``{type, title, status, detail, message}`` (``message`` repeats ``detail`` for
Socrata-style clients), plus ``errors: [{row, field, message}]`` for validation failures.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("cityscore")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://cityscore.dev/problems/"


class APIError(Exception):
    status = 500
    title = "Internal Server Error"
    slug = "internal"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(APIError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(APIError):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(APIError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(APIError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(APIError):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(APIError):
    status, title, slug = 413, "Content Too Large", "too-large"


class UnsupportedMediaType(APIError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class Unprocessable(APIError):
    status, title, slug = 422, "Unprocessable Content", "invalid-body"


class TooManyRequests(APIError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"


class RequestTimeout(APIError):
    status, title, slug = 408, "Request Timeout", "request-timeout"


class ServiceUnavailable(APIError):
    """The store is down or busy: always with ``Retry-After`` so clients back off."""

    status, title, slug = 503, "Service Unavailable", "store-unavailable"
    retry_after = 5

    def __init__(self, detail: str, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(self.retry_after))


def problem_response(
    status: int,
    title: str,
    slug: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "message": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def api_error_response(exc: APIError) -> Response:
    return problem_response(
        exc.status,
        exc.title,
        exc.slug,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


def _validation_errors(exc: RequestValidationError) -> tuple[bool, list[dict[str, Any]]]:
    """Flatten pydantic errors to ``{row, field, message}``; report whether the body failed."""
    in_body = False
    out = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        where = loc[0] if loc else ""
        in_body = in_body or where == "body"
        rest = loc[1:]
        if err.get("type") == "json_invalid":  # loc holds the character offset, not a row
            out.append({"row": None, "field": "body", "message": err["msg"]})
            in_body = True
            continue
        row = rest[0] if rest and isinstance(rest[0], int) else None
        field_parts = [str(p) for p in (rest[1:] if row is not None else rest)]
        out.append(
            {"row": row, "field": ".".join(field_parts) or str(where), "message": err["msg"]}
        )
    return in_body, out


async def _api_error(_request: Request, exc: APIError) -> Response:
    return api_error_response(exc)


async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
    in_body, errors = _validation_errors(exc)
    if in_body:
        return problem_response(
            422,
            Unprocessable.title,
            Unprocessable.slug,
            "The request body is invalid.",
            errors=errors,
        )
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(400, BadRequest.title, BadRequest.slug, detail, errors=errors)


BODY_PARSE_FAILED = "There was an error parsing the body"  # FastAPI's own 400


async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 400 and exc.detail == BODY_PARSE_FAILED:
        # FastAPI could not decode the body at all (e.g. JSON nested past the recursion
        # limit): an invalid body, a 422 like malformed JSON.
        return problem_response(
            422,
            Unprocessable.title,
            Unprocessable.slug,
            "The request body could not be parsed (JSON nested too deeply, or not JSON).",
            errors=[{"row": None, "field": "body", "message": "unparseable"}],
        )
    titles = {
        404: "Not Found",
        405: "Method Not Allowed",
        408: "Request Timeout",
        413: "Content Too Large",
    }
    title = titles.get(exc.status_code, "Error")
    # The same condition raised as an APIError elsewhere keeps that class's problem type.
    slug = {413: PayloadTooLarge.slug}.get(exc.status_code) or title.lower().replace(" ", "-")
    return problem_response(
        exc.status_code, title, slug, str(exc.detail), headers=getattr(exc, "headers", None)
    )


async def _store_down(request: Request, exc: OperationalError) -> Response:
    log.warning("store unavailable: %s", exc)
    router = getattr(request.app.state, "read_router", None)
    chosen = getattr(getattr(request.state, "db_session", None), "_chosen", None)
    if router is not None and chosen is not None:  # a replica died mid-read
        router.mark_failed(chosen)
    return api_error_response(ServiceUnavailable("The data store is unavailable."))


async def _pool_exhausted(_request: Request, exc: PoolTimeout) -> Response:
    # Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds: overload, not a bug.
    log.warning("connection pool exhausted: %s", exc)
    return api_error_response(
        ServiceUnavailable("The data store is busy; retry shortly.", headers={"Retry-After": "1"})
    )


async def _driver_data_error(_request: Request, exc: psycopg.DataError) -> Response:
    return api_error_response(BadRequest(f"The store refused a value: {exc}".splitlines()[0]))


async def _db_error(_request: Request, exc: DBAPIError) -> Response:
    if isinstance(exc, DataError):  # e.g. a NUL byte in text: the client's input
        return api_error_response(
            BadRequest(f"The store refused a value: {exc.orig}".splitlines()[0])
        )
    if exc.connection_invalidated:
        return api_error_response(ServiceUnavailable("The data store is unavailable."))
    log.exception("database error")
    return problem_response(500, "Internal Server Error", "internal", "Unexpected error.")


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "Internal Server Error", "internal", "Unexpected error.")


HANDLERS: tuple[tuple[Any, Any], ...] = (
    (APIError, _api_error),
    (RequestValidationError, _invalid),
    (StarletteHTTPException, _http),
    (OperationalError, _store_down),
    (PoolTimeout, _pool_exhausted),
    (psycopg.DataError, _driver_data_error),
    (DBAPIError, _db_error),
    (Exception, _unexpected),
)


def install_error_handlers(app: FastAPI) -> None:
    """Every error a request can meet, as problem+json (see ``HANDLERS``)."""
    for exc, handler in HANDLERS:
        app.add_exception_handler(exc, handler)
