"""Mount the compatibility layers on the app: their routers and their own error formats."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from api.compat.catalog import router as catalog_router
from api.compat.ckan.router import ckan_error
from api.compat.ckan.router import router as ckan_router
from api.compat.ckan.search import CkanError
from api.compat.soda.router import router as soda_router
from api.compat.soda.router import soda_error
from api.compat.soda.service import SodaError


def install(app: FastAPI) -> None:
    app.include_router(soda_router)
    app.include_router(ckan_router)
    app.include_router(catalog_router)

    def soda_400(_scope: Any, detail: str) -> Response:
        return soda_error(SodaError(400, "query.soql.invalid", detail))

    def ckan_400(scope: Any, detail: str) -> Response:
        return ckan_error(Request(scope), CkanError(409, "Validation Error", detail))

    app.state.error_formats = [
        ("/resource/", soda_400),
        ("/api/views/", soda_400),
        ("/api/3/action/", ckan_400),
        ("/api/action/", ckan_400),
    ]

    # A server error (the store down, say) in the layers' own envelopes, status kept.
    def soda_5xx(_request: Request, status: int, problem: dict[str, Any]) -> Response:
        code = "service.unavailable" if status == 503 else "internal.error"
        return soda_error(SodaError(status, code, str(problem.get("detail", ""))))

    def ckan_5xx(request: Request, status: int, problem: dict[str, Any]) -> Response:
        kind = str(problem.get("title", "Internal Server Error"))
        return ckan_error(request, CkanError(status, kind, str(problem.get("detail", ""))))

    app.state.server_error_formats = [
        ("/resource/", soda_5xx),
        ("/api/views/", soda_5xx),
        ("/api/3/action/", ckan_5xx),
        ("/api/action/", ckan_5xx),
    ]

    @app.exception_handler(SodaError)
    async def _soda(_request: Request, exc: SodaError) -> Response:
        return soda_error(exc)

    @app.exception_handler(CkanError)
    async def _ckan(request: Request, exc: CkanError) -> Response:
        return ckan_error(request, exc)
