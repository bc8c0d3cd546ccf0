"""The application factory: routers, middleware and the one error handler."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from api import __doc__ as api_doc
from api.analyses.router import router as analyses_router
from api.audit.router import router as audit_router
from api.cityscore.router import router as cityscore_router
from api.departments.router import router as departments_router
from api.errors import ServiceUnavailable, api_error_response, install_error_handlers
from api.http.docs import WRITE_ERRORS, component_schemas
from api.http.formats import CsvSuffixMiddleware, HeadMiddleware, NulGuardMiddleware
from api.http.ratelimit import RateLimitMiddleware, make_counter
from api.http.respond import ResponseCache, json_response
from api.ingest.router import router as ingest_router
from api.metrics.router import router as metrics_router
from api.observability import metrics as observability_metrics
from api.observability.middleware import ObservabilityMiddleware, RouteCapture
from api.observability.router import router as observability_router
from api.scorecards.router import router as scorecards_router
from api.settings import Settings, get_settings
from api.values.router import router as values_router
from db.session import is_sqlite, make_engine, session_factory

VERSION = "1.0.0"


def create_app(settings: Settings | None = None, *, bind: Any = None) -> FastAPI:
    """Build the app. ``bind`` (an engine or a connection) overrides ``DATABASE_URL``."""
    settings = settings or get_settings()
    app = FastAPI(
        title="CityScore API",
        version=VERSION,
        description=f"{settings.city_name}: "
        + (api_doc or "")
        + " JSON by default; CSV with a `.csv` suffix on any collection path or "
        "`Accept: text/csv`. Errors are RFC 9457 problem+json.",
        openapi_url="/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    engine = bind
    if engine is None:
        pool = {} if is_sqlite(settings.database_url) else {"pool_size": settings.db_pool_size}
        engine = make_engine(settings.database_url, **pool)
    observability_metrics.instrument_pool(engine)
    observability_metrics.instrument_rescoring()
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.responses = ResponseCache()
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    for router in (
        departments_router,
        metrics_router,
        values_router,
        cityscore_router,
        scorecards_router,
        analyses_router,
        ingest_router,
        audit_router,
        observability_router,
    ):
        app.include_router(router)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    def healthz() -> Response:
        """The process is up."""
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["health"], operation_id="readyz")
    def readyz() -> Response:
        """The store is reachable (503 otherwise)."""
        try:
            with app.state.session_factory() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            return api_error_response(ServiceUnavailable("The data store is unreachable."))
        return json_response({"status": "ready"})

    app.add_middleware(RouteCapture)  # innermost: reads the matched route
    app.add_middleware(CsvSuffixMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(NulGuardMiddleware)
    if settings.rate_limit_enabled:
        app.add_middleware(
            RateLimitMiddleware,
            reads_per_minute=settings.rate_limit_reads_per_minute,
            writes_per_minute=settings.rate_limit_writes_per_minute,
            counter=make_counter(settings.redis_url),
            exempt=("/healthz", "/readyz", "/internal/metrics"),
        )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "If-None-Match",
            "Idempotency-Key",
            "X-Request-ID",
        ],
        expose_headers=[
            "Link",
            "ETag",
            "Last-Modified",
            "RateLimit",
            "RateLimit-Policy",
            "Retry-After",
            "X-Request-ID",
        ],
    )
    app.add_middleware(ObservabilityMiddleware)  # outermost: every request, 429s included
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(component_schemas())
    # FastAPI documents its own 422 body; ours is problem+json (400 for a bad query string).
    for path in doc["paths"].values():
        for method, operation in path.items():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                if method == "get":
                    del responses["422"]
                else:
                    responses["422"] = WRITE_ERRORS[422]
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return doc
