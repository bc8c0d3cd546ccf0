"""Errors on pages are HTML pages; the API (``/v1/...``) keeps its problem+json."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response

from api.errors import PROBLEM_JSON
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


# Headers of an error that still hold on the page or envelope made from it.
KEPT_HEADERS = ("retry-after", "www-authenticate", "allow")


def _page_from(request: Request, exc: Exception, problem: Response) -> Response:
    """The HTML page of an error whose API answer is ``problem`` (problem+json)."""
    body: dict[str, Any] = orjson.loads(bytes(problem.body))
    status = problem.status_code
    title, detail = str(body.get("title", "Error")), str(body.get("detail", ""))
    if isinstance(exc, StarletteHTTPException):
        detail = "There is no page at this address." if status == 404 else str(exc.detail)
        title = "Page not found" if status == 404 else "Not allowed"
    elif status == 503:
        title = "Temporarily unavailable"
    page = error_page(request, status, title, detail)
    page.headers.update({k: v for k, v in problem.headers.items() if k in KEPT_HEADERS})
    return page


def _reformatting(handler: Callable[..., Any]) -> Callable[..., Any]:
    async def reformat(request: Request, exc: Exception) -> Response:
        response = await _call(handler, request, exc)
        if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
            return response
        if is_page(request):
            return _page_from(request, exc, response)
        if response.status_code >= 500:  # the compatibility layers' own envelopes
            path = request.url.path
            for prefix, build in getattr(request.app.state, "server_error_formats", ()):
                if path.startswith(prefix):
                    body = orjson.loads(bytes(response.body))
                    out: Response = build(request, response.status_code, body)
                    out.headers.update(
                        {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
                    )
                    return out
        return response

    return reformat


def install_html_errors(app: FastAPI) -> None:
    """Wrap every error handler of the API: on pages its answer becomes an HTML page, and on
    the SODA and CKAN paths a server error (a store down, say) becomes their envelope
    (``app.state.server_error_formats``: (path prefix, build(request, status, problem)))."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.add_exception_handler(exc_class, _reformatting(handler))
