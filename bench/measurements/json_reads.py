"""2a-2c. JSON reads at 16 connections against Datasette on the same SQLite file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from bench.loading import Catalogue
from bench.measurements.meters import measured_load
from bench.processes import Server
from bench.report import Report, fmt, ratio, verdict

CONCURRENCY = 16
# 2a from the first performance issue; 2b, every request a different page, from issue 10.
TARGETS = {"2a": 3, "2b": 8}
DAY = dt.timedelta(days=1)
UrlOf = Callable[[int], str]


class Urls:
    """The i-th request's URL: a different metric and window each time (cache-proof)."""

    def __init__(self, ds: Server, ds_cat: Catalogue) -> None:
        self.ds, self.metrics, self.first = ds, ds_cat.metrics, ds_cat.first
        self.span = (ds_cat.last - ds_cat.first).days + 1

    def metric(self, i: int) -> tuple[int, str, str, str]:
        return self.metrics[(i * 104_729) % len(self.metrics)]

    def start(self, i: int, room: int) -> dt.date:
        return self.first + DAY * ((i * 7_919) % max(1, self.span - min(room, self.span // 2)))

    def year_ours(self, base: str) -> UrlOf:
        def url(i: int) -> str:
            first = self.start(i, 365)
            slug = self.metric(i)[1]
            return f"{base}/v1/metrics/{slug}/values?start={first}&end={first + 364 * DAY}"

        return url

    def year_ds(self, i: int) -> str:
        first = self.start(i, 365)
        return (
            f"{self.ds.base}/{self.ds.db}/metric_values.json?metric_id={self.metric(i)[0]}"
            f"&date__gte={first}&date__lte={first + 364 * DAY}&_shape=array&_size=max&_nocount=1"
        )

    def page_ours(self, base: str) -> UrlOf:
        return lambda i: (
            f"{base}/v1/values?metric={self.metric(i)[1]}&start={self.start(i, 1500)}&limit=1000"
        )

    def page_ds(self, i: int) -> str:
        return (
            f"{self.ds.base}/{self.ds.db}/metric_values.json?metric_id={self.metric(i)[0]}"
            f"&date__gte={self.start(i, 1500)}&_size=1000&_shape=array&_nocount=1"
        )


def repeated(fn: UrlOf) -> UrlOf:
    return lambda i: fn(i % 50)


def cases(urls: Urls) -> list[tuple[str, str, Callable[[str], UrlOf], UrlOf]]:
    return [
        ("2a", "one metric's year (365 daily rows)", urls.year_ours, urls.year_ds),
        ("2b", "1000-row page of bulk values", urls.page_ours, urls.page_ds),
        (
            "2c",
            "one metric's year, 50 URLs repeated (response cache warm)",
            lambda base: repeated(urls.year_ours(base)),
            repeated(urls.year_ds),
        ),
    ]


def json_reads(
    apis: dict[str, tuple[Server, Catalogue]],
    ds: Server,
    ds_cat: Catalogue,
    report: Report,
    duration: float,
) -> None:
    """JSON req/s against Datasette. Every request asks for a different metric and window,
    so the server's response cache (keyed by ETag) cannot answer: this is the query path.
    A last case repeats 50 URLs to show the warm-cache path too."""
    for key, label, ours_url, ds_url in cases(Urls(ds, ds_cat)):
        anchor = measured_load(
            ds, f"Datasette {label}", ds_url, concurrency=CONCURRENCY, duration=duration
        )
        report.note(anchor.summary())
        stores = list(apis.items()) if key != "2c" else list(apis.items())[-1:]
        for store, (api, _cat) in stores:
            ours = measured_load(
                api,
                f"ours {store} {label}",
                ours_url(api.base),
                concurrency=CONCURRENCY,
                duration=duration,
            )
            report.note(ours.summary())
            r = ratio(ours.rps, anchor.rps) if ours.ok and anchor.ok else None
            report.add(
                f"{key}. JSON {label}, {store}, c=16 (req/s)",
                fmt(ours.rps) if ours.ok else f"failed ({dict(ours.statuses)})",
                f"{fmt(anchor.rps)} (Datasette on SQLite)",
                fmt(r, "x", 2),
                f">= {TARGETS[key]}x Datasette" if key in TARGETS else "info",
                verdict(None if r is None else r >= TARGETS[key]) if key in TARGETS else "n/a",
            )
