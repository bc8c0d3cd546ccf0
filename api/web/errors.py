"""Errors on pages are HTML pages; the API (``/v1/...``) keeps its problem+json."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response

from api.errors import APIError
from api.web.render import render

# Paths whose clients are programs: their errors stay application/problem+json.
API_PREFIXES = (
    "/v1/",
    "/api/",
    "/resource/",
    "/datastore/",
    "/internal/",
    "/healthz",
    "/readyz",
    "/data.json",
)


def is_page(request: Request) -> bool:
    path = request.url.path
    return not any(path == p.rstrip("/") or path.startswith(p) for p in API_PREFIXES)


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    body = render(request, "error.html", {"status": status, "title": title, "detail": detail})
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-cache"})


async def _call(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    response: Response = await result if inspect.isawaitable(result) else result
    return response


def install_html_errors(app: FastAPI) -> None:
    """Wrap the API's handlers for its errors and Starlette's 404/405 with HTML for pages."""
    api_handler = app.exception_handlers[APIError]
    http_handler = app.exception_handlers[StarletteHTTPException]

    async def on_api_error(request: Request, exc: Exception) -> Response:
        if is_page(request) and isinstance(exc, APIError) and exc.status < 500:
            return error_page(request, exc.status, exc.title, exc.detail)
        return await _call(api_handler, request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if is_page(request) and isinstance(exc, StarletteHTTPException):
            detail = "There is no page at this address." if exc.status_code == 404 else ""
            title = "Page not found" if exc.status_code == 404 else "Not allowed"
            return error_page(request, exc.status_code, title, detail or str(exc.detail))
        return await _call(http_handler, request, exc)

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
