"""Mount the compatibility layers on the app: their routers and their own error formats."""

from __future__ import annotations

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

    @app.exception_handler(SodaError)
    async def _soda(_request: Request, exc: SodaError) -> Response:
        return soda_error(exc)

    @app.exception_handler(CkanError)
    async def _ckan(request: Request, exc: CkanError) -> Response:
        return ckan_error(request, exc)
