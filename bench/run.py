"""CityScore API benchmarks against their physical limits and peers, in one run.

    .venv/bin/python bench/run.py [--quick] [--metrics M] [--years Y] [--reload] [--full-rss]

Loads ``cityscore demo`` into a fresh PostgreSQL database and a fresh SQLite file (reused when
a marker says they hold the same scale), starts ``cityscore serve`` on each and Datasette on
the SQLite file, measures CSV export, JSON reads, ingest, 304s, memory during export,
CityScore history and the recompute after a day's ingest, and writes ``bench/results.md``.
See ``bench/README.md``. The pieces: ``processes`` and ``loading`` (servers and data),
``measurements/`` (one module per measured thing), ``report`` (what is printed and written).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loading import Catalogue, catalogue_pg, catalogue_sqlite, load_pg, load_sqlite
from bench.measurements.csv_export import csv_export_pg, csv_export_sqlite
from bench.measurements.history import history
from bench.measurements.ingest import ingest, recompute
from bench.measurements.json_reads import json_reads
from bench.measurements.meters import RssSampler
from bench.measurements.not_modified import not_modified
from bench.measurements.rss import rss_compare
from bench.processes import (
    BENCH,
    DEFAULT_PG,
    PORTS,
    WORK,
    Server,
    pg_dbname,
    start_api,
    start_datasette,
)
from bench.report import Report, log, machine, phase, write_results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="100 metrics x 3 years")
    parser.add_argument(
        "--reload", action="store_true", help="reload the data even if a marker matches"
    )
    parser.add_argument(
        "--full-rss", action="store_true", help="measure RSS at 10x data (loads it)"
    )
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per load test")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument("--sqlite-workers", type=int, default=2)
    parser.add_argument(
        "--datasette-cap",
        type=float,
        default=30.0,
        help="stop reading Datasette's CSV after this many seconds (rate is kept)",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    parser.add_argument(
        "--port-base", type=int, default=8811, help="first of the four ports the run listens on"
    )
    args = parser.parse_args()
    for i, name in enumerate(PORTS):
        PORTS[name] = args.port_base + i
    if args.quick:
        args.metrics, args.years = 100, 3
    return args


class Run:
    """One benchmark run: its arguments, report, the servers it started and the data paths."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.report = Report()
        self.servers: list[Server] = []
        self.sqlite_path = WORK / f"cityscore-{args.metrics}x{args.years}.db"
        suffix = "_10x" if args.full_rss else "_small"
        self.small_url = args.pg_url.rsplit("/", 1)[0] + "/" + pg_dbname(args.pg_url) + suffix
        self.small_metrics = args.metrics * 10 if args.full_rss else max(1, args.metrics // 10)
        self.small_label = "10x" if args.full_rss else "0.1x"

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        with phase(name):
            try:
                return fn()
            finally:
                self.report.phases.append(f"{name}: {time.perf_counter() - began:.1f} s")

    def load(self) -> tuple[Catalogue, Catalogue]:
        a, report = self.args, self.report
        self.timed(
            "load PostgreSQL", lambda: load_pg(a.pg_url, a.metrics, a.years, a.reload, report)
        )
        self.timed(
            "load SQLite",
            lambda: load_sqlite(self.sqlite_path, a.metrics, a.years, a.reload, report),
        )
        self.timed(
            "load PostgreSQL (RSS comparison scale)",
            lambda: load_pg(
                self.small_url, self.small_metrics, a.years, a.reload, report, row=False
            ),
        )
        pg_cat, sq_cat = catalogue_pg(a.pg_url), catalogue_sqlite(self.sqlite_path)
        report.note(
            f"data: {len(pg_cat.metrics)} metrics, {pg_cat.rows:,} daily values "
            f"{pg_cat.first}..{pg_cat.last} (PG); {sq_cat.rows:,} (SQLite)"
        )
        return pg_cat, sq_cat

    def start_servers(self) -> tuple[Server, Server, Server]:
        a = self.args

        def start_all() -> tuple[Server, Server, Server]:
            pg = start_api("api-pg", a.pg_url, PORTS["pg"], a.pg_workers)
            self.servers.append(pg)
            sq = start_api(
                "api-sqlite", f"sqlite:///{self.sqlite_path}", PORTS["sqlite"], a.sqlite_workers
            )
            self.servers.append(sq)
            ds = start_datasette(self.sqlite_path, PORTS["datasette"])
            self.servers.append(ds)
            return pg, sq, ds

        pg, sq, ds = self.timed("start servers", start_all)
        self.report.note(
            f"servers: cityscore serve --workers {a.pg_workers} (PG), "
            f"--workers {a.sqlite_workers} (SQLite); datasette {ds.base}"
        )
        return pg, sq, ds

    def stop_servers(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def measure_reads(
    run: Run, servers: tuple[Server, Server, Server], pg_cat: Catalogue, sq_cat: Catalogue
) -> RssSampler:
    """1a, 1b and 2: the CSV exports and the JSON reads (the 1a sampler feeds 5)."""
    a, report, (pg, sq, ds) = run.args, run.report, servers
    big: RssSampler = run.timed(
        "1a. CSV export on PostgreSQL vs COPY",
        lambda: csv_export_pg(pg, a.pg_url, pg_cat, report),
    )
    run.timed(
        "1b. CSV export on SQLite vs Datasette",
        lambda: csv_export_sqlite(sq, ds, sq_cat, report, a.datasette_cap),
    )
    stores = {"SQLite": (sq, sq_cat), "PostgreSQL": (pg, pg_cat)}
    run.timed(
        "2. JSON reads vs Datasette",
        lambda: json_reads(stores, ds, sq_cat, report, a.duration),
    )
    return big


def measure_writes_and_more(
    run: Run,
    servers: tuple[Server, Server, Server],
    pg_cat: Catalogue,
    sq_cat: Catalogue,
    big: RssSampler,
) -> None:
    """3 to 6b: ingest, 304s, RSS, CityScore history and the recompute after a day's ingest."""
    a, report, (pg, sq, _ds) = run.args, run.report, servers
    run.timed("3. ingest vs COPY FROM", lambda: ingest(pg, a.pg_url, pg_cat, report, a.duration))
    run.timed("4. 304 at 64 connections", lambda: not_modified(pg, pg_cat, report, a.duration))
    run.timed(
        "5. RSS during CSV export",
        lambda: rss_compare(big, run.small_url, run.small_label, a.pg_workers, report),
    )
    run.timed(
        "6a. CityScore history", lambda: history(pg, pg_cat, report, "PostgreSQL", a.duration)
    )
    run.timed(
        "6a. CityScore history (SQLite)",
        lambda: history(sq, sq_cat, report, "SQLite", a.duration),
    )
    run.timed(
        "6b. recompute after one day's ingest",
        lambda: recompute(pg, a.pg_url, pg_cat, report),
    )


def main() -> int:
    args = parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    run = Run(args)
    started = time.perf_counter()
    machine_lines = machine(args.pg_url)
    log("\n".join(machine_lines))
    try:
        pg_cat, sq_cat = run.load()
        servers = run.start_servers()
        big = measure_reads(run, servers, pg_cat, sq_cat)
        measure_writes_and_more(run, servers, pg_cat, sq_cat, big)
    finally:
        run.stop_servers()
    total = time.perf_counter() - started
    text = write_results(run.report, args, machine_lines, total)
    args.output.write_text(text)
    log("\n" + text)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
