"""Loading ``cityscore demo`` into PostgreSQL and SQLite, reused when a marker says so.

A marker file (``bench/work/*.loaded``) records the scale and the layout version of a load,
so a later run measures the same data without loading it again. ``Catalogue`` is what the
measurements need to know about the loaded data.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bench.processes import CITYSCORE, LOAD_FORMAT, WORK, pg_dbname, pg_exec, run_cli, server_env
from bench.report import Report, verdict


def marker_ok(marker: Path, scale: dict[str, int]) -> bool:
    try:
        found = json.loads(marker.read_text())
        return all(found.get(k) == v for k, v in scale.items())
    except (OSError, ValueError, AttributeError):
        return False


def marker_story(marker: Path) -> str:
    """How long the reused load took when it was made, from its marker."""
    try:
        found = json.loads(marker.read_text())
        return f" (loaded {found['loaded_at']} in {found['seconds']:.0f} s)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def write_marker(marker: Path, scale: dict[str, int], seconds: float, demo: float) -> None:
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    fields = {"seconds": round(seconds, 1), "demo_seconds": round(demo, 1), "loaded_at": stamp}
    marker.write_text(json.dumps({**scale, **fields}))


def demo_row(report: Report, store: str, seconds: float | None, story: str) -> None:
    """The demo load's own time (``cityscore demo``), measured now or from the marker."""
    report.add(
        f"7. `cityscore demo --metrics M --years Y`, {store} (s)",
        "n/a" if seconds is None else f"{seconds:.1f} s{story}",
        "-",
        "-",
        "<= 30 s",
        verdict(None if seconds is None else seconds <= 30),
    )


def marker_demo_seconds(marker: Path) -> float | None:
    try:
        return float(json.loads(marker.read_text())["demo_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def timed_demo(env: dict[str, str], metrics: int, years: int) -> tuple[str, float]:
    began = time.perf_counter()
    out = run_cli([CITYSCORE, "demo", "--metrics", str(metrics), "--years", str(years)], env)
    return out, time.perf_counter() - began


def load_pg(
    url: str, metrics: int, years: int, reload: bool, report: Report, row: bool = True
) -> None:
    name = pg_dbname(url)
    marker = WORK / f"{name}.loaded"
    scale = {"metrics": metrics, "years": years, "format": LOAD_FORMAT}
    if not reload and marker_ok(marker, scale):
        try:
            count = pg_exec(url, "SELECT count(*) FROM metrics")[0][0]
        except Exception:
            count = 0
        if count == metrics:
            # The last run's writes left dead rows, and a server with autovacuum off (as on
            # the bench machine) would leave them for this run's reads to step over.
            pg_exec(url, "VACUUM ANALYZE")
            report.note(
                f"PostgreSQL {name}: reusing the loaded {metrics} x {years}y database"
                + marker_story(marker)
                + ", vacuumed"
            )
            if row:
                demo_row(report, "PostgreSQL", marker_demo_seconds(marker), " (earlier load)")
            return
    marker.unlink(missing_ok=True)
    pg_exec(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")
    pg_exec(url, f'CREATE DATABASE "{name}"', dbname="postgres")
    env = server_env(url)
    began = time.perf_counter()
    run_cli([CITYSCORE, "db", "upgrade"], env)
    out, demo_seconds = timed_demo(env, metrics, years)
    report.note(f"PostgreSQL {name}: {out.strip()} (demo {demo_seconds:.1f} s)")
    if row:
        demo_row(report, "PostgreSQL", demo_seconds, " (this run)")
    pg_exec(url, "VACUUM ANALYZE")
    write_marker(marker, scale, time.perf_counter() - began, demo_seconds)


def load_sqlite(path: Path, metrics: int, years: int, reload: bool, report: Report) -> None:
    marker = path.with_suffix(".loaded")
    scale = {"metrics": metrics, "years": years, "format": LOAD_FORMAT}
    if not reload and path.exists() and marker_ok(marker, scale):
        report.note(
            f"SQLite {path.name}: reusing the loaded {metrics} x {years}y file"
            + marker_story(marker)
        )
        demo_row(report, "SQLite", marker_demo_seconds(marker), " (earlier load)")
        return
    marker.unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    env = server_env(f"sqlite:///{path}")
    began = time.perf_counter()
    run_cli([CITYSCORE, "db", "upgrade"], env)
    out, demo_seconds = timed_demo(env, metrics, years)
    report.note(f"SQLite {path.name}: {out.strip()} (demo {demo_seconds:.1f} s)")
    demo_row(report, "SQLite", demo_seconds, " (this run)")
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")
    write_marker(marker, scale, time.perf_counter() - began, demo_seconds)


@dataclass
class Catalogue:
    """What the load tests need to know about the loaded data."""

    metrics: list[tuple[int, str, str, str]]  # id, slug, aggregation, department slug
    first: dt.date
    last: dt.date
    rows: int


def catalogue_pg(url: str) -> Catalogue:
    metrics = pg_exec(
        url,
        "SELECT m.id, m.slug, m.aggregation, d.slug FROM metrics m "
        "JOIN departments d ON d.id = m.department_id ORDER BY m.id",
    )
    first, last, rows = pg_exec(
        url, "SELECT min(date), max(date), count(*) FROM metric_values WHERE NOT deleted"
    )[0]
    return Catalogue([tuple(m) for m in metrics], first, last, rows)


def catalogue_sqlite(path: Path) -> Catalogue:
    with sqlite3.connect(path) as conn:
        metrics = conn.execute(
            "SELECT m.id, m.slug, m.aggregation, d.slug FROM metrics m "
            "JOIN departments d ON d.id = m.department_id ORDER BY m.id"
        ).fetchall()
        first, last, rows = conn.execute(
            "SELECT min(date), max(date), count(*) FROM metric_values WHERE NOT deleted"
        ).fetchone()
    return Catalogue(
        [tuple(m) for m in metrics],
        dt.date.fromisoformat(first),
        dt.date.fromisoformat(last),
        rows,
    )
