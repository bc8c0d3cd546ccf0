"""Prometheus series, and the scrape that renders them.

Series are labelled by route *template* (``/v1/metrics/{slug}``), never the raw path, so a
crawler cannot blow up their number. With several worker processes set
``PROMETHEUS_MULTIPROC_DIR`` (an empty, writable directory, before the server starts): each
worker then writes its samples to files there and any worker's scrape adds them all up.
``cityscore serve --workers N`` empties it at start, or makes a temporary one when unset.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy import Engine, event

F = TypeVar("F", bound=Callable[..., Any])

REQUEST_SECONDS = Histogram(
    "cityscore_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response body.",
    ("method", "route"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
REQUESTS = Counter(
    "cityscore_http_requests",
    "Requests answered, by route template and status.",
    ("method", "route", "status"),
)
RATE_LIMITED = Counter(
    "cityscore_rate_limit_rejections",
    "Requests answered 429 by the rate limiter, by policy (reads, writes).",
    ("policy",),
)
INGEST_BATCHES = Counter(
    "cityscore_ingest_batches",
    "Ingest batches accepted: committed, dry_run or replayed (Idempotency-Key).",
    ("outcome",),
)
INGEST_ROWS = Counter(
    "cityscore_ingest_rows",
    "Records of committed ingest batches, by what they did (created, updated, ...).",
    ("change",),
)
RESCORE_SECONDS = Histogram(
    "cityscore_rescore_duration_seconds",
    "Time spent recomputing stored scores after a write (days: ingest; metrics: a PUT).",
    ("kind",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
POOL_IN_USE = Gauge(
    "cityscore_db_pool_connections_in_use",
    "Store connections checked out of the pool right now (summed over live workers).",
    multiprocess_mode="livesum",
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def prepare_multiprocess_dir(workers: int) -> Callable[[], None]:
    """Before the workers start: empty ``PROMETHEUS_MULTIPROC_DIR`` (stale files of an earlier
    run would be added in), or, with several workers and none set, use a fresh temporary
    one. Returns the cleanup to run when the server stops."""
    configured = multiprocess_dir()
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return lambda: None
    if workers <= 1:
        return lambda: None
    made = tempfile.mkdtemp(prefix="cityscore-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made  # inherited by the worker processes
    return lambda: shutil.rmtree(made, ignore_errors=True)


def scrape() -> tuple[bytes, str]:
    """The text exposition of every series: this process's, or every worker's."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited() -> None:
    """Drop this worker's live gauges (call when a worker shuts down)."""
    if multiprocess_dir():
        prometheus_multiprocess.mark_process_dead(os.getpid())


def instrument_pool(engine: Any) -> None:
    """Track checked-out connections of an engine's pool (once per engine)."""
    if not isinstance(engine, Engine) or engine.pool.__dict__.get("_cityscore_metered"):
        return
    engine.pool.__dict__["_cityscore_metered"] = True
    event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())


def timed(kind: str) -> Callable[[F], F]:
    """A decorator: observe the function's duration in ``cityscore_rescore_duration_seconds``
    labelled ``kind`` (the rescoring entry points of ``api.cityscore.materialise`` wear it)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                RESCORE_SECONDS.labels(kind).observe(time.perf_counter() - started)

        return wrapper  # type: ignore[return-value]

    return decorate


def count_ingest(receipt: dict[str, Any], *, replayed: bool) -> None:
    if replayed:
        INGEST_BATCHES.labels("replayed").inc()
        return
    if receipt.get("dry_run"):
        INGEST_BATCHES.labels("dry_run").inc()
        return
    INGEST_BATCHES.labels("committed").inc()
    for change in ("created", "updated", "unchanged", "deleted"):
        if receipt.get(change):
            INGEST_ROWS.labels(change).inc(receipt[change])
