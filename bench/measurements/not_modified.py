"""4. A cached GET answered 304 at 64 connections, against the framework's floor."""

from __future__ import annotations

import httpx

from bench.loading import Catalogue
from bench.measurements.meters import measured_load
from bench.processes import Server
from bench.report import Report, fmt, ratio, verdict


def not_modified(api: Server, cat: Catalogue, report: Report, duration: float) -> None:
    slug = cat.metrics[0][1]
    url = f"{api.base}/v1/metrics/{slug}"
    etag = httpx.get(url).headers.get("etag")
    if not etag:
        report.add("4. Cached GET answered 304, c=64 (req/s; p99)", "no ETag", "-", "-", "-", "n/a")
        return
    ours = measured_load(
        api,
        "ours PG 304 /v1/metrics/{slug}",
        lambda i: url,
        concurrency=64,
        duration=duration,
        headers={"If-None-Match": etag},
    )
    report.note(ours.summary())
    floor = measured_load(
        api,
        "ours PG /healthz (framework floor)",
        lambda i: api.base + "/healthz",
        concurrency=64,
        duration=duration,
    )
    report.note(floor.summary())
    all_304 = set(ours.statuses) == {304}
    r = ratio(ours.rps, floor.rps)
    report.add(
        "4. Cached GET answered 304, PostgreSQL, c=64 (req/s; p99)",
        f"{fmt(ours.rps)}; p99 {fmt(ours.percentile(99) * 1000, ' ms', 1)}"
        + ("" if all_304 else f" (statuses {dict(ours.statuses)})"),
        f"{fmt(floor.rps)}; p99 {fmt(floor.percentile(99) * 1000, ' ms', 1)} (GET /healthz)",
        fmt(r, "x", 2),
        ">= 0.8x /healthz",
        verdict(None if r is None else r >= 0.8),
    )
