"""Scores stored as runs per window kind: what a changed day rewrites, the shape of the runs,
the ``metric_scores`` view over them, and the migration that introduced them."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlmodel import Session

from alembic import command
from api.cityscore import materialise, reads
from api.cityscore.points import metric_columns
from api.demo import service as demo
from api.scoring.windows import WINDOW_NAMES, monday_of, windows_as_of
from db.models import CityScoreDaily, MetricScoreRun, metric_scores_view
from tests._data import admin_headers, metric_id, put_department, put_metric
from tests.conftest import alembic_config

R = MetricScoreRun.__table__  # type: ignore[attr-defined]
C = CityScoreDaily.__table__  # type: ignore[attr-defined]
D = dt.date
URL = "/v1/ingest/values"


def _runs(session: Session, ids: list[int]) -> list[tuple[Any, ...]]:
    stmt = select(R).where(R.c.metric_id.in_(ids)).order_by(R.c.metric_id, R.c.kind, R.c.valid_from)
    return [tuple(r) for r in session.execute(stmt).all()]


def _ratio_metric(client: TestClient, session: Session, days: list[dt.date]) -> int:
    headers = admin_headers(session)
    put_department(client, headers, "ops")
    put_metric(client, headers, "ratio", "ops", aggregation="pooled_ratio")
    rng = random.Random(11)
    rows = [
        {
            "metric": "ratio",
            "date": d.isoformat(),
            "numerator": rng.randint(0, 40),
            "denominator": 50,
        }
        for d in days
    ]
    r = client.post(URL, json=rows, headers=headers)
    assert r.status_code == 200, r.text
    return metric_id(session, "ratio")


def test_encode_runs_breaks_at_gaps_periods_and_changes() -> None:
    # 2026-06-01 is a Monday: the week kind breaks on Monday 06-08 even with equal figures.
    days = np.array([D(2026, 6, 1).toordinal() + i for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 10)])
    nan = np.nan
    figures = np.array(
        [[1.0, 2.0, nan]] * 3 + [[1.5, 2.0, nan]] * 4 + [[1.5, 2.0, nan]] * 2 + [[1.5, 2.0, nan]]
    )
    first, last, values = materialise.encode_runs(1, days, figures)
    as_dates = [
        (D.fromordinal(int(a)).day, D.fromordinal(int(b)).day)
        for a, b in zip(first, last, strict=True)
    ]
    assert as_dates == [(1, 3), (4, 7), (8, 9), (11, 11)]  # change, Monday, gap
    assert values[1].tolist()[:2] == [1.5, 2.0] and np.isnan(values[1][2])
    month = materialise.encode_runs(2, days, np.ones((len(days), 3)))
    assert [D.fromordinal(int(a)).day for a in month[0]] == [1, 11]  # only the gap breaks it


def test_a_changed_day_rewrites_one_run_per_window_period(
    client: TestClient, session: Session
) -> None:
    """The point of the runs: one changed day moves one day run, one week run, one month run
    and three quarter runs (the quarter moves monthly), not every as-of date that sees it."""
    days = [D(2025, 1, 1) + dt.timedelta(days=i) for i in range(300)]
    mid = D(2025, 6, 11)  # a Wednesday in the middle of June
    metric = _ratio_metric(client, session, days)
    before = set(_runs(session, [metric]))
    headers = admin_headers(session)
    r = client.post(
        URL,
        json=[{"metric": "ratio", "date": mid.isoformat(), "numerator": 49, "denominator": 50}],
        headers=headers,
    )
    assert r.status_code == 200, r.text
    after = set(_runs(session, [metric]))
    added = Counter(WINDOW_NAMES[row[1]] for row in after - before)
    assert added == {"day": 1, "week": 1, "month": 1, "quarter": 3}
    assert len(before - after) == 6 and len(after) == len(before)
    week_run = next(row for row in after - before if row[1] == 1)
    assert week_run[2] == monday_of(mid) + dt.timedelta(days=7)  # the week after mid's week


def test_runs_cover_the_span_with_every_kind_inside_one_period(
    client: TestClient, session: Session
) -> None:
    days = [D(2025, 1, 1) + dt.timedelta(days=i) for i in range(200) if i % 9 != 4]
    metric = _ratio_metric(client, session, days)
    rows = _runs(session, [metric])
    span = set(range(days[0].toordinal() + 1, days[-1].toordinal() + materialise.AHEAD + 1))
    for kind in range(4):
        covered: list[int] = []
        for _, k, first, last, *_ in rows:
            if k != kind:
                continue
            ordinals = np.arange(first.toordinal(), last.toordinal() + 1)
            assert len(set(materialise.period_keys(kind, ordinals).tolist())) == 1
            covered.extend(ordinals.tolist())
        assert sorted(covered) == sorted(span), WINDOW_NAMES[kind]


def test_the_scores_view_matches_the_reads_where_a_window_holds_a_point(
    client: TestClient, session: Session
) -> None:
    """The view lists the as-of dates the first build stored rows for (one of the four
    windows holds a point), not the gaps the runs also cover, with the figures the reads give."""
    days = [D(2025, 1, 1) + dt.timedelta(days=i) for i in range(150)]
    days += [D(2026, 1, 1) + dt.timedelta(days=i) for i in range(20)]  # after a 215-day gap
    metric = _ratio_metric(client, session, days)
    V = metric_scores_view
    rows = session.execute(select(V).where(V.c.metric_id == metric).order_by(V.c.as_of)).all()
    held = set(days)
    span = [d.toordinal() for d in (days[0], days[-1] + dt.timedelta(days=materialise.AHEAD))]
    expected = [
        as_of
        for as_of in map(D.fromordinal, range(span[0] + 1, span[1] + 1))
        if any(
            any(w.start + dt.timedelta(days=i) in held for i in range((w.end - w.start).days + 1))
            for w in windows_as_of(as_of).values()
        )
    ]
    assert [r.as_of for r in rows] == expected
    assert len(expected) < span[1] - span[0]  # the gap and the tail are left out
    history = dict(reads.metric_history(session, metric, rows[0].as_of, rows[-1].as_of))
    for row in rows:
        windows = history[row.as_of]
        for w in WINDOW_NAMES:
            expected_window = windows[w]
            got = (getattr(row, f"{w}_score"), getattr(row, f"{w}_numerator"))
            assert got == (expected_window.score, expected_window.numerator), (row.as_of, w)


def _snapshot(url: str) -> tuple[list[Any], list[Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        runs = conn.execute(select(R).order_by(R.c.metric_id, R.c.kind, R.c.valid_from)).all()
        city = conn.execute(select(C).order_by(C.c.as_of)).all()
    engine.dispose()
    return [tuple(r) for r in runs], [tuple(r) for r in city]


def test_the_runs_migration_rescores_from_values_and_downgrades(scratch_url: str) -> None:
    """Down to the wide rows and up again: the downgrade keeps every as-of date's figures,
    the upgrade rebuilds the same runs and CityScore from the values."""
    config = alembic_config(scratch_url)
    command.upgrade(config, "head")
    engine = create_engine(scratch_url)
    with Session(engine) as session:
        demo.load(session, years=1, metrics=6, today=D(2026, 5, 16))
        session.commit()
        view = session.execute(select(metric_scores_view)).all()
    engine.dispose()
    runs, city = _snapshot(scratch_url)
    assert runs and city
    command.downgrade(config, "0004")
    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        wide = conn.execute(select(metric_scores_view)).all()  # now the table of 0001
        conn.execute(text("DELETE FROM cityscore_daily"))
        conn.commit()
    engine.dispose()
    assert sorted(map(tuple, wide)) == sorted(map(tuple, view))
    command.upgrade(config, "head")
    assert _snapshot(scratch_url) == (runs, city)


def test_points_come_in_day_order_whatever_order_the_store_reads_them(
    client: TestClient, session: Session, backend: str
) -> None:
    """The value read aggregates without ORDER BY (a sort per group costs 2.5x the query):
    rows stored newest first and read by a sequential scan must still reach the engine in
    day order."""
    days = [D(2025, 1, 1) + dt.timedelta(days=i) for i in range(60)]
    metric = _ratio_metric(client, session, days[:1])
    headers = admin_headers(session)
    for day in reversed(days[1:]):  # one batch per day, newest first: heap order descending
        row = {"metric": "ratio", "date": day.isoformat(), "numerator": 1, "denominator": 2}
        assert client.post(URL, json=[row], headers=headers).status_code == 200
    if backend == "postgresql":
        session.execute(text("SET LOCAL enable_indexscan = off"))
        session.execute(text("SET LOCAL enable_bitmapscan = off"))
    [(_, (ordinals, *_))] = list(metric_columns(session, [metric], [(days[0], days[-1])]))
    assert ordinals.tolist() == [d.toordinal() for d in days]


def test_the_cityscore_refresh_reads_runs_near_the_rewritten_dates_only(
    client: TestClient, session: Session, monkeypatch: Any
) -> None:
    """A changed day of a baseline metric rewrites dates in each of the following years:
    the CityScore refresh reads runs (of the other metric, which this rescore did not
    compute) around each of them, not over the years between."""
    headers = admin_headers(session)
    put_department(client, headers, "ops")
    put_metric(
        client, headers, "fires", "ops", aggregation="mean", reference="baseline", baseline_years=4
    )
    put_metric(client, headers, "other", "ops", aggregation="mean")
    days = [D(2020, 1, 1) + dt.timedelta(days=i) for i in range(5 * 365)]
    rows = [
        {"metric": slug, "date": d.isoformat(), "value": float(d.day % 9)}
        for d in days
        for slug in ("fires", "other")
    ]
    assert client.post(URL, json=rows, headers=headers).status_code == 200
    spans: list[int] = []
    starts: list[int] = []
    read = materialise._city_runs

    def spy(connection: Any, kind: int, lo: int, hi: int) -> list[Any]:
        spans.append(hi - lo)
        starts.append(lo)
        return read(connection, kind, lo, hi)

    monkeypatch.setattr(materialise, "_city_runs", spy)
    change = [{"metric": "fires", "date": "2020-06-10", "value": 100.0}]
    assert client.post(URL, json=change, headers=headers).status_code == 200
    assert spans and max(spans) <= 120, spans  # one quarter's months at most, not four years
    starts.clear()
    late = [{"metric": "fires", "date": days[-30].isoformat(), "value": 100.0}]
    assert client.post(URL, json=late, headers=headers).status_code == 200
    end = days[-1].toordinal() + materialise.AHEAD  # the baseline years after it have no runs
    assert starts and max(starts) <= end, [D.fromordinal(o) for o in starts]


def test_value_reads_size_their_queries_by_the_points_they_can_hold(
    client: TestClient, session: Session, monkeypatch: Any
) -> None:
    """A rescore reads its metrics' values in queries of at most ``POINTS_PER_QUERY`` days
    of metrics: a few weeks' span takes hundreds of metrics a query (a day for every metric:
    one query per group, not one per 200), a span of years far fewer (bounded memory)."""
    from api.cityscore import points

    headers = admin_headers(session)
    put_department(client, headers, "ops")
    slugs = [f"m{i}" for i in range(30)]
    for slug in slugs:
        put_metric(client, headers, slug, "ops", aggregation="mean")
    day = D(2025, 3, 3)
    rows = [{"metric": s, "date": day.isoformat(), "value": 1.0} for s in slugs]
    r = client.post(URL, json=rows, headers=headers)
    assert r.status_code == 200, r.text
    ids = [metric_id(session, s) for s in slugs]
    queries: list[int] = []
    for name in ("_pg_points", "_sqlite_points"):
        read = getattr(points, name)

        def spy(connection: Any, chunk: Any, ranges: Any, read: Any = read) -> Any:
            queries.append(len(chunk))
            return read(connection, chunk, ranges)

        monkeypatch.setattr(points, name, spy)
    monkeypatch.setattr(points, "POINTS_PER_QUERY", 300)
    weeks = [(day - dt.timedelta(days=9), day)]  # 10 days: 30 metrics a query
    assert len(list(metric_columns(session, ids, weeks))) == 30
    assert queries == [30]
    queries.clear()
    years = [(D(2015, 1, 1), D(2015, 3, 1)), (day - dt.timedelta(days=99), day)]  # 160 days
    assert len(list(metric_columns(session, ids, years))) == 30
    assert queries == [25, 5]  # never fewer than 25 metrics a query
