"""6a. Ten years of CityScore history at 16 concurrent clients: distinct windows and one
URL repeated (issue 10: p99 < 100 ms with 16 concurrent clients)."""

from __future__ import annotations

import datetime as dt

import httpx

from bench.loading import Catalogue
from bench.measurements.meters import measured_load
from bench.processes import Server
from bench.report import Report, verdict

CONCURRENCY = 16


def history(api: Server, cat: Catalogue, report: Report, store: str, duration: float = 6.0) -> None:
    """Each request of the distinct run asks for a different end date (so the response cache
    cannot answer); the warm run repeats one URL."""
    last = cat.last + dt.timedelta(days=1)

    def url(k: int) -> str:
        end = last - dt.timedelta(days=k % 3000 + 1)
        start = end - dt.timedelta(days=3650)
        return f"{api.base}/v1/cityscore/history?start={start}&end={end}&limit=10000"

    first = httpx.get(url(0), timeout=120)
    if first.status_code != 200:
        report.add(
            f"6a. /v1/cityscore/history 10 years, {store} (p50; p99)",
            f"failed (HTTP {first.status_code})",
            "-",
            "-",
            "p99 < 100 ms, c=16",
            "n/a",
        )
        return
    rows = len(first.json().get("data", []))
    cold = measured_load(
        api, f"history {store}, distinct", url, concurrency=CONCURRENCY, duration=duration
    )
    warm = measured_load(
        api,
        f"history {store}, repeated",
        lambda i: url(0),
        concurrency=CONCURRENCY,
        duration=duration,
    )
    report.note(cold.summary())
    report.note(warm.summary())
    p50, p99 = cold.percentile(50) * 1000, cold.percentile(99) * 1000
    w50, w99 = warm.percentile(50) * 1000, warm.percentile(99) * 1000
    report.add(
        f"6a. /v1/cityscore/history 10 years ({rows:,} rows), {store}, distinct windows, "
        "c=16 (p50; p99)",
        f"{p50:.1f} ms; {p99:.1f} ms",
        f"repeated URL: {w50:.1f} ms; {w99:.1f} ms",
        "-",
        "p99 < 100 ms",
        f"p50 {verdict(p50 < 100)}; p99 {verdict(p99 < 100)}",
    )
