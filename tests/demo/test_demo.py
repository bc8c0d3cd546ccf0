"""`cityscore demo`: Boston's real catalogue, deterministic synthetic values, four analyses."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlmodel import Session

from api.demo import service as demo
from db.models import MetricValue

TODAY = dt.date(2026, 5, 16)
VALUES = MetricValue.__table__  # type: ignore[attr-defined]


def test_demo_loads_bostons_catalogue(client: TestClient, session: Session) -> None:
    summary = demo.load(session, years=1, metrics=23, today=TODAY)
    session.flush()
    assert "23 metrics" in summary
    metrics = client.get("/v1/metrics").json()["data"]
    assert len(metrics) == 23
    by_slug = {m["slug"]: m for m in metrics}
    call_center = by_slug["311-call-center-performance"]
    assert call_center["target"] == 0.95
    assert call_center["metric_logic"] == "sum(numerator_value)/sum(denominator_value)/target"
    assert by_slug["ems-response-time"]["metric_logic"] == "target / median"
    assert by_slug["ems-response-time"]["target"] == 6.0
    bfd = by_slug["bfd-incidents"]
    assert bfd["targets"] == [] and bfd["target"] is None
    assert bfd["metric_logic"] == "historical_average / current_average"
    assert by_slug["library-users"]["metric_logic"] == "current_average / historical_average"
    assert all("synthetic" in m["description"] for m in metrics)
    cabinets = {d["cabinet"] for d in client.get("/v1/departments").json()["data"]}
    assert "Public Safety" in cabinets
    analyses = client.get("/v1/analyses").json()["data"]
    assert {a["slug"] for a in analyses} == {
        "data-analytics-overview",
        "continued-development-of-cityscore",
        "ems-ambulance-allocation",
        "311-call-center-improvements",
    }
    score = client.get("/v1/cityscore", params={"as_of": TODAY.isoformat()}).json()
    assert len(score["metrics"]) == 23
    assert all(score["score"][w] is not None for w in ("day", "week", "month", "quarter"))
    # realistic magnitudes: the 311 call center answers hundreds of calls a day
    day = score["metrics"][0]["day"]
    assert day["denominator"] is not None and 100 < day["denominator"] < 2000


def test_demo_is_deterministic_and_scales(session: Session) -> None:
    demo.load(session, years=2, metrics=60, today=TODAY)
    session.flush()
    count = session.execute(select(func.count()).select_from(MetricValue)).scalar()
    total = session.execute(select(func.sum(VALUES.c.value))).scalar()
    assert count is not None and count > 60 * 365
    session.rollback()
    demo.load(session, years=2, metrics=60, today=TODAY)
    session.flush()
    assert session.execute(select(func.count()).select_from(MetricValue)).scalar() == count
    again = session.execute(select(func.sum(VALUES.c.value))).scalar()
    assert again == total


def test_demo_refuses_a_database_with_data(session: Session) -> None:
    demo.load(session, years=1, metrics=3, today=TODAY)
    try:
        demo.load(session, years=1, metrics=3, today=TODAY)
    except RuntimeError as exc:
        assert "already has metrics" in str(exc)
    else:
        raise AssertionError("a second demo load must be refused")


def test_cli_upgrade_demo_and_if_empty(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    cli = [sys.executable, "-m", "api.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=300)

    assert run("db", "upgrade").returncode == 0
    first = run("demo", "--years", "1", "--metrics", "5")
    assert first.returncode == 0, first.stderr
    assert "5 metrics" in first.stdout
    again = run("demo", "--if-empty")
    assert again.returncode == 0 and "not loaded" in again.stdout
    refused = run("demo")
    assert refused.returncode != 0
    database, reason = refused.stderr.strip().splitlines()  # which store, then one reason
    assert database == f"cityscore: database sqlite:///{tmp_path}/cli.db"
    assert reason.startswith("cityscore: error: ")


def _has_statistics(session: Session, table: str) -> bool:
    """Whether the store's planner holds statistics on ``table`` (as ANALYZE leaves them)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sql = "SELECT count(*) FROM pg_stats WHERE tablename = :t"
    else:
        exists = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        if not connection.exec_driver_sql(exists).scalar():
            return False
        sql = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = :t"
    return bool(session.execute(text(sql), {"t": table}).scalar())


def test_demo_leaves_the_planner_statistics_current(session: Session) -> None:
    """A bulk load analyses what it loaded: without statistics (autovacuum off, or not yet
    run) PostgreSQL plans `as_of = ANY(dates)` over millions of score rows as a sequential
    scan, and every rescore's CityScore refresh reads the whole table."""
    demo.load(session, years=1, metrics=5, today=TODAY)
    for table in ("metric_values", "metric_score_runs", "cityscore_daily"):
        assert _has_statistics(session, table), table
