"""5. The serving worker's peak RSS during a full CSV export, at two data scales."""

from __future__ import annotations

from bench.measurements.meters import RssSampler
from bench.measurements.streams import describe_stream, stream_http
from bench.processes import PORTS, start_api
from bench.report import Report, fmt, ratio, verdict


def rss_row(report: Report, label: str, sampler: RssSampler) -> tuple[float, float]:
    pid, base, peak = sampler.worker_peak()
    report.note(
        f"RSS {label}: serving worker pid {pid} {base / 1024:.0f} MB before, "
        f"peak {peak / 1024:.0f} MB; "
        f"whole server tree ({len(sampler.pids)} processes) peak {sampler.peak_total / 1024:.0f} MB"
    )
    return peak / 1024, sampler.peak_total / 1024


def rss_compare(
    one_x: RssSampler, other_url: str, other_label: str, workers: int, report: Report
) -> None:
    """Export again from a database at another scale and compare the serving worker's peak."""
    api = start_api("api-rss", other_url, PORTS["rss"], workers)
    try:
        with RssSampler(api.proc.pid) as other:
            s = stream_http(api.base + "/v1/values.csv")
        report.note(describe_stream(f"ours PG /v1/values.csv at {other_label}", s))
    finally:
        api.stop()
    pairs = {"1x": rss_row(report, "1x", one_x), other_label: rss_row(report, other_label, other)}
    big_label, small_label = ("10x", "1x") if other_label == "10x" else ("1x", other_label)
    (big_peak, big_tree), (small_peak, small_tree) = pairs[big_label], pairs[small_label]
    growth = ratio(big_peak, small_peak)
    flat = growth is not None and growth <= 1.2
    report.add(
        f"5. Peak RSS of the serving worker during a full CSV export, PG "
        f"({big_label} vs {small_label} data)",
        f"{fmt(big_peak, ' MB')} at {big_label} (whole tree {fmt(big_tree, ' MB')})",
        f"{fmt(small_peak, ' MB')} at {small_label} (whole tree {fmt(small_tree, ' MB')})",
        fmt(growth, "x", 2),
        "< 150 MB and flat (<= 1.2x)",
        verdict(big_peak < 150 and flat),
    )
