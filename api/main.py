"""The application factory: routers, middleware and the one error handler."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from api import __doc__ as api_doc
from api.analyses.router import router as analyses_router
from api.audit.router import router as audit_router
from api.changes.cache import VersionCache, listen
from api.cityscore.history import HistoryCache
from api.cityscore.router import router as cityscore_router
from api.compat.install import install as install_compat
from api.departments.router import router as departments_router
from api.errors import ServiceUnavailable, api_error_response, install_error_handlers
from api.http.docs import WRITE_ERRORS, component_schemas, problem_response_doc, tidy_parameters
from api.http.formats import CsvSuffixMiddleware, HeadMiddleware, NulGuardMiddleware
from api.http.guards import WriteGuard
from api.http.lifespan import extend_lifespan
from api.http.ratelimit import WINDOW_SECONDS, MemoryCounter, RateLimitMiddleware, make_counter
from api.http.respond import ResponseCache, hashed, json_response
from api.http.security import SecurityHeadersMiddleware
from api.http.streaming import ExportSlots
from api.ingest.router import router as ingest_router
from api.keys import service as keys_service
from api.metrics.router import router as metrics_router
from api.observability import metrics as observability_metrics
from api.observability.middleware import ObservabilityMiddleware, RouteCapture
from api.observability.router import router as observability_router
from api.runs.router import router as runs_router
from api.runs.scheduler import install_daily_runs
from api.scorecards.router import router as scorecards_router
from api.settings import Settings, get_settings
from api.values.router import router as values_router
from api.web.errors import install_html_errors
from api.web.render import HERE as WEB_ROOT
from api.web.router import FRAMEABLE
from api.web.router import router as web_router
from db.migrate import head_revisions, schema_problem
from db.notify import DataVersion, conninfo
from db.replicas import ReadRouter, ReadSession, read_urls
from db.session import make_engine, session_factory

VERSION = "1.0.0"
OPENAPI_URL = "/v1/openapi.json"
log = logging.getLogger("cityscore")


ROUTERS = (
    departments_router,
    metrics_router,
    values_router,
    cityscore_router,
    runs_router,
    scorecards_router,
    analyses_router,
    ingest_router,
    web_router,
    audit_router,
    observability_router,
)
# Any origin may read; these are the headers a browser client sends and may read back.
CORS: dict[str, Any] = dict(
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
        "X-SODA2-Fields",
        "X-SODA2-Types",
        "X-Request-ID",
    ],
)


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
        openapi_url=None,  # served by install_openapi, with the API's caching
        docs_url=None,  # /docs and /redoc are site pages with locally served bundles
        redoc_url=None,
    )
    install_store(app, settings, bind)
    app.state.responses = ResponseCache()
    app.state.history = HistoryCache()
    install_version_cache(app, settings, bind)
    install_error_handlers(app)
    install_html_errors(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_openapi(app)

    for router in ROUTERS:
        app.include_router(router)
    install_compat(app)
    app.mount("/static", StaticFiles(directory=WEB_ROOT / "static"), name="static")
    install_health(app)
    install_daily_runs(app, settings)
    install_middleware(app, settings)
    return app


def install_store(app: FastAPI, settings: Settings, bind: Any) -> None:
    """The engine (instrumented), the session factories and the read replicas."""
    engine = bind
    if engine is None:
        engine = make_engine(settings.database_url, **settings.engine_options())
    observability_metrics.instrument_pool(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    if bind is None and settings.database_read_url:
        app.state.read_router = read_router(engine, settings)
        app.state.read_session_factory = lambda: ReadSession(
            app.state.read_router, expire_on_commit=False
        )


def install_version_cache(app: FastAPI, settings: Settings, bind: Any) -> None:
    """The worker's version cache: on PostgreSQL while its listener is (the app's lifespan
    runs it); on a SQLite file, kept true by asking the file before each read
    (``api.deps.get_session``). Only for an app on an engine (not one test connection), and
    not with read replicas."""
    app.state.versions = cache = VersionCache()
    if isinstance(bind, Connection) or not settings.version_cache or settings.database_read_url:
        return  # a test's connection: it never commits, so nothing is ever notified
    target = conninfo(app.state.engine)
    if target is None:
        probe = DataVersion.of(app.state.engine)
        if probe is not None:  # a SQLite file (not an in-memory database)
            app.state.data_version = probe
            cache.set_enabled(True)
            cache.renew(math.inf)  # no listener to lapse: the probe runs on every read

            @contextlib.asynccontextmanager
            async def probing() -> AsyncIterator[None]:
                # Opened here, in a thread: opening a file may recover its WAL after a crash,
                # which must not happen on the event loop.
                await run_in_threadpool(probe.changed)
                try:
                    yield
                finally:
                    probe.close()

            extend_lifespan(app, probing)
        return

    @contextlib.asynccontextmanager
    async def listening() -> AsyncIterator[None]:
        listener = listen(target, cache)
        app.state.version_listener = listener
        try:
            yield
        finally:
            await run_in_threadpool(listener.stop)

    extend_lifespan(app, listening)


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware stack, innermost first (each ``add_middleware`` wraps the last)."""
    app.add_middleware(RouteCapture)  # innermost: reads the matched route
    add_guards(app, settings)
    app.add_middleware(
        ExportSlots, slots=settings.export_concurrency(), timeout=settings.db_pool_timeout
    )
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
    app.add_middleware(SecurityHeadersMiddleware, frameable=FRAMEABLE)
    app.add_middleware(CORSMiddleware, **CORS)
    app.add_middleware(ObservabilityMiddleware)  # outermost: every request, 429s included


def read_router(primary: Any, settings: Settings) -> ReadRouter:
    """Engines for ``DATABASE_READ_URL``'s replicas (pre-pinged: a dead one is passed over)."""
    replicas = [
        make_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_pre_ping=True,
            connect_args={"application_name": "cityscore-read"},
        )
        for url in read_urls(settings.database_read_url)
    ]
    return ReadRouter(primary, replicas, max_lag=settings.read_max_lag_s)


def add_guards(app: FastAPI, settings: Settings) -> None:
    """Writes authenticated before their bodies, bodies and slow sockets bounded."""
    failures = MemoryCounter()

    def authenticate(token: str) -> Any:
        with app.state.session_factory() as session:
            return keys_service.authenticate(session, token)

    def body_limit(path: str) -> int:
        if path.startswith("/v1/ingest"):
            return settings.ingest_max_bytes
        return settings.admin_max_bytes

    def failed_auth(client: str) -> bool:
        window = int(time.time() // WINDOW_SECONDS)
        return failures.hit_now(client, window) > settings.failed_auth_per_minute

    app.state.failed_auth = failed_auth  # the keyed reads count their failures too
    app.add_middleware(
        WriteGuard,
        authenticate=authenticate,
        body_limit=body_limit,
        body_timeout=settings.body_timeout_s,
        send_timeout=settings.send_timeout_s,
        failed_auth=failed_auth,
    )


def install_health(app: FastAPI) -> None:
    """``/healthz`` (the process is up) and ``/readyz`` (the store is usable by this code)."""
    heads = head_revisions()

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    def healthz() -> Response:
        """The process is up."""
        return json_response({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["health"],
        operation_id="readyz",
        responses={503: problem_response_doc("The store is unreachable or not migrated")},
    )
    def readyz() -> Response:
        """The store is reachable and its schema is at the head migration (503 otherwise,
        with the reason in `detail`): put this behind the load balancer's health check."""
        try:
            with app.state.session_factory() as session:
                problem = schema_problem(session.connection(), heads)
        except Exception as exc:
            log.warning("readyz: store unreachable: %s", exc)
            return api_error_response(ServiceUnavailable("The data store is unreachable."))
        if problem is not None:
            return api_error_response(ServiceUnavailable(problem))
        return json_response({"status": "ready"})


def install_openapi(app: FastAPI) -> None:
    """``/v1/openapi.json``: the document as bytes made once, with an ETag (a public GET)."""
    made: list[bytes] = []

    @app.get(OPENAPI_URL, include_in_schema=False)
    def openapi_json(request: Request) -> Response:
        if not made:
            made.append(orjson.dumps(app.openapi()))
        return hashed(request, made[0])


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
    for name, path in doc["paths"].items():
        for method, operation in path.items():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                if method == "get" or name.startswith("/api/"):  # CKAN: no body schema
                    del responses["422"]
                else:
                    responses["422"] = WRITE_ERRORS[422]
    tidy_parameters(doc)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return doc
