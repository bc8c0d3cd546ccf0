"""One pure-ASGI middleware per request: request id, one JSON log line, latency metrics.

Pure ASGI (no ``BaseHTTPMiddleware``, which buffers and breaks streaming and disconnects):
it wraps ``send`` to add the ``X-Request-ID`` header and to note the status, and measures
until the last body chunk, so a streamed CSV is timed whole. ``RouteCapture`` sits innermost,
where Starlette's router writes the matched route into the scope (the middlewares in
between copy the scope), and hands the route back through the shared ``state`` dict.
Requests answered before routing (429 from the rate limiter) are labelled ``unmatched``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability import metrics, request_id
from api.observability.logs import ACCESS_LOGGER

log = logging.getLogger(ACCESS_LOGGER)
UNMATCHED = "unmatched"  # one label for every path no route matched (404s, scanners)


def _route(state: dict[str, Any]) -> str:
    route = state.get("route_template")
    if route is None:
        return UNMATCHED
    return f"{route}.csv" if state.get("csv_suffix") else str(route)


def _policy(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"ratelimit-policy":
            return value.split(b";", 1)[0].strip(b'"').decode("ascii", "replace")
    return "unknown"


class ObservabilityMiddleware:
    """Outermost: sees every request, including those the rate limiter answers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw = next((v for k, v in scope["headers"] if k == request_id.HEADER), None)
        rid = request_id.from_header(raw)
        token = request_id.current.set(rid)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        outcome: dict[str, Any] = {"status": 500, "headers": []}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    *(h for h in message.get("headers", []) if h[0].lower() != request_id.HEADER),
                    (request_id.HEADER, rid.encode("ascii")),
                ]
                message = {**message, "headers": headers}
                outcome["status"] = message["status"]
                outcome["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, state, outcome, time.perf_counter() - started)
        # Reset only on success: an exception goes on to Starlette's outermost handler, whose
        # traceback line should still carry the request id (the context ends with the task).
        request_id.current.reset(token)

    @staticmethod
    def _record(scope: Scope, state: dict[str, Any], outcome: dict[str, Any], took: float) -> None:
        route, method, status = _route(state), scope["method"], outcome["status"]
        _series(method, route, status).observe(took)
        if status == 429:
            metrics.RATE_LIMITED.labels(_policy(outcome["headers"])).inc()
        if not log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        fields = {
            "request_id": state["request_id"],
            "method": method,
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(took * 1000, 3),
            "key_id": state.get("key_id"),
            "client": client[0] if client else None,
        }
        # makeRecord + handle, not log.info: skips the stack walk that finds the caller.
        log.handle(
            log.makeRecord(log.name, logging.INFO, __file__, 0, "request", (), None, extra=fields)
        )


class _Series:
    """One (method, route, status)'s children, looked up once: ``labels()`` is slow."""

    __slots__ = ("count", "latency")

    def __init__(self, method: str, route: str, status: int) -> None:
        self.latency = metrics.REQUEST_SECONDS.labels(method, route)
        self.count = metrics.REQUESTS.labels(method, route, str(status))

    def observe(self, took: float) -> None:
        self.latency.observe(took)
        self.count.inc()


_SERIES: dict[tuple[str, str, int], _Series] = {}


def _series(method: str, route: str, status: int) -> _Series:
    # Bounded: methods x route templates x statuses (unmatched paths share one label).
    key = (method, route, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = _Series(method, route, status)
    return found


class RouteCapture:
    """Innermost: after routing, copy the matched route's template into ``state``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            if route is not None and "state" in scope:
                scope["state"]["route_template"] = getattr(route, "path", None)
