"""6a. Ten years of CityScore history: distinct windows (cold) and one URL repeated (warm)."""

from __future__ import annotations

import datetime as dt
import time

import httpx

from bench.loadgen import LoadResult
from bench.loading import Catalogue
from bench.processes import Server
from bench.report import Report, verdict


def history(api: Server, cat: Catalogue, report: Report, store: str, n: int = 40) -> None:
    """Ten years of CityScore history: n requests each for a different end date (so the
    response cache cannot answer), then n repeats of one URL (the warm path)."""
    last = cat.last + dt.timedelta(days=1)

    def url(k: int) -> str:
        end = last - dt.timedelta(days=k)
        start = end - dt.timedelta(days=3650)
        return f"{api.base}/v1/cityscore/history?start={start}&end={end}&limit=10000"

    distinct: list[float] = []
    repeated: list[float] = []
    status, rows = 0, 0
    with httpx.Client(timeout=httpx.Timeout(120.0)) as client:
        for i in range(2 * n):
            target = url(i + 1) if i < n else url(0)
            began = time.perf_counter()
            response = client.get(target)
            elapsed = time.perf_counter() - began
            status = response.status_code
            if status != 200:
                break
            if i == 0:
                rows = len(response.json().get("data", []))
            (distinct if i < n else repeated).append(elapsed)
    if status != 200 or not repeated:
        report.add(
            f"6a. /v1/cityscore/history 10 years, {store} (p50; p99)",
            f"failed (HTTP {status})",
            "-",
            "-",
            "< 100 ms",
            "n/a",
        )
        return
    cold = LoadResult("history", 1, sum(distinct), len(distinct), 0, latencies=distinct)
    warm = LoadResult("history", 1, sum(repeated), len(repeated), 0, latencies=repeated[1:])
    p50, p99 = cold.percentile(50) * 1000, cold.percentile(99) * 1000
    w50, w99 = warm.percentile(50) * 1000, warm.percentile(99) * 1000
    report.note(
        f"history {store} ({rows} rows): {n} sequential requests with distinct end dates "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; one URL repeated p50 {w50:.1f} ms, "
        f"p99 {w99:.1f} ms"
    )
    report.add(
        f"6a. /v1/cityscore/history 10 years ({rows:,} rows), {store}, distinct windows (p50; p99)",
        f"{p50:.1f} ms; {p99:.1f} ms",
        f"repeated URL: {w50:.1f} ms; {w99:.1f} ms",
        "-",
        "< 100 ms",
        f"p50 {verdict(p50 < 100)}; p99 {verdict(p99 < 100)}",
    )
