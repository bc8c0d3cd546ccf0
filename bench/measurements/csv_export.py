"""1a, 1b. The full CSV export against PostgreSQL's COPY and against Datasette."""

from __future__ import annotations

from bench.loading import Catalogue
from bench.measurements.meters import CpuMeter, RssSampler
from bench.measurements.streams import describe_stream, stream_http, stream_psql
from bench.processes import Server, pg_conninfo
from bench.report import Report, fmt, ratio, verdict

# The anchor: psql writing the same cells our export writes (DateStyle ISO: psql's default),
# the department, the deleted flag and ISO instants included.
SAME_CELLS_QUERY = (
    "COPY (SELECT m.slug, d.slug, v.date, v.value, v.numerator, v.denominator, "
    "CASE WHEN v.deleted THEN 'true' ELSE 'false' END, "
    "replace(v.updated_at::text, ' ', 'T') || 'Z' "
    "FROM metric_values v JOIN metrics m ON m.id = v.metric_id "
    "JOIN departments d ON d.id = m.department_id WHERE NOT v.deleted "
    "ORDER BY v.metric_id, v.date) TO STDOUT WITH CSV"
)
# The first build's anchor, kept for comparison: six of the eight cells, instants as
# PostgreSQL prints them (less work for the server than the export asks of it).
SIX_CELLS_QUERY = (
    "COPY (SELECT m.slug, v.date, v.value, v.numerator, v.denominator, v.updated_at "
    "FROM metric_values v JOIN metrics m ON m.id = v.metric_id WHERE NOT v.deleted "
    "ORDER BY v.metric_id, v.date) TO STDOUT WITH CSV"
)


def csv_export_pg(api: Server, url: str, cat: Catalogue, report: Report) -> RssSampler:
    with RssSampler(api.proc.pid) as sampler, CpuMeter(api) as meter:
        ours = stream_http(api.base + "/v1/values.csv")
    report.note(describe_stream("ours PG /v1/values.csv", ours) + "; " + meter.text)
    if ours.status == 200 and ours.rows != cat.rows:
        report.note(f"WARNING: ours returned {ours.rows:,} rows, the table has {cat.rows:,}")
    ok = ours.status == 200 and ours.complete
    for query, anchor_label, target in (
        (SAME_CELLS_QUERY, "psql COPY TO STDOUT, the same cells", True),
        (SIX_CELLS_QUERY, "psql COPY TO STDOUT, six cells (first build's anchor)", False),
    ):
        with CpuMeter(None) as meter:
            anchor = stream_psql(pg_conninfo(url), query)
        report.note(describe_stream(anchor_label, anchor) + "; psql + " + meter.text)
        r = ratio(ours.rows_per_s, anchor.rows_per_s) if ok else None
        report.add(
            "1a. Full CSV export, PostgreSQL (rows/s)"
            + ("" if target else ", against the lighter six-cell COPY"),
            fmt(ours.rows_per_s) if ok else f"failed (HTTP {ours.status})",
            f"{fmt(anchor.rows_per_s)} ({anchor_label})",
            fmt(r, "x", 2),
            ">= 0.9x COPY" if target else "info",
            verdict(None if r is None else r >= 0.9) if target else "n/a",
        )
    return sampler


def csv_export_sqlite(
    api: Server, ds: Server, cat: Catalogue, report: Report, ds_cap: float
) -> None:
    with CpuMeter(api) as meter:
        ours = stream_http(api.base + "/v1/values.csv")
    report.note(describe_stream("ours SQLite /v1/values.csv", ours) + "; " + meter.text)
    with CpuMeter(ds) as meter:
        anchor = stream_http(
            ds.base + f"/{ds.db}/metric_values.csv?_stream=on&_size=max", max_seconds=ds_cap
        )
    report.note(
        describe_stream("Datasette metric_values.csv?_stream=on", anchor) + "; " + meter.text
    )
    ok = ours.status == 200 and ours.complete
    r = ratio(ours.rows_per_s, anchor.rows_per_s) if ok and anchor.status == 200 else None
    report.add(
        "1b. Full CSV export, SQLite (rows/s)",
        fmt(ours.rows_per_s) if ok else f"failed (HTTP {ours.status})",
        f"{fmt(anchor.rows_per_s)} (Datasette `_stream=on`)",
        fmt(r, "x", 1),
        ">= 15x Datasette",
        verdict(None if r is None else r >= 15),
    )
