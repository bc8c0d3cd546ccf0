"""Build FastAPI's per-route request handling before a worker's first request needs it.

FastAPI works out a router's routes (dependencies, parameter models, their validators) the
first time a request is routed through that router, not when the app is built. A fresh
worker paid for it on its first requests: measured with `cityscore serve` on the 1,000-metric
demo (SQLite), the first `GET /v1/scorecards` took 151-158 ms against 70-78 ms with the
warm-up (3-4 ms warm) and the `GET /healthz` after it 56-88 ms against 3 ms. The routes so
built were also ~9,000 objects made after ``gc.freeze()``, walked by every full collection.
The walk itself costs the worker's start ~120 ms.

One request that no route matches walks every router and so builds every route. It goes to
the router alone (no middleware: nothing is logged, counted or rate-limited) on an event
loop of its own in a thread: the worker's loop may already be running when uvicorn imports
the app.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI

WARM_PATH = "/__warm-up__"  # no route has it: the walk visits every router and matches none
log = logging.getLogger(__name__)


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "state": {},
    }


def warm_routes(app: FastAPI) -> int | None:
    """Route one unmatched GET through ``app.router``: the status it answered (404), or None
    if the walk failed (logged; the worker still serves, only its first requests are slow)."""
    statuses: list[int] = []
    failures: list[BaseException] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))

    def walk() -> None:
        try:
            asyncio.run(app.router(_scope(WARM_PATH), receive, send))
        except Exception as exc:  # a failed warm-up must not stop the worker
            failures.append(exc)

    thread = threading.Thread(target=walk, name="route-warm-up")
    thread.start()
    thread.join()
    if failures or not statuses:
        log.warning("route warm-up failed: %r", failures[0] if failures else "no response")
        return None
    return statuses[0]
