"""Mount the compatibility layers on the app: their routers and their own error formats."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from api.compat.soda.router import router as soda_router
from api.compat.soda.router import soda_error
from api.compat.soda.service import SodaError


def install(app: FastAPI) -> None:
    app.include_router(soda_router)

    @app.exception_handler(SodaError)
    async def _soda(_request: Request, exc: SodaError) -> Response:
        return soda_error(exc)
