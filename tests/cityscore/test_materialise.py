"""Incremental materialisation (ingest -> rescore_days) equals a full rescore, row for row.

Both write runs over exactly each metric's materialised span, so after any batch
the ``metric_score_runs`` and ``cityscore_daily`` tables must equal what ``rescore_metrics``
writes from scratch: not only the reads, the rows themselves.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from api.cityscore import materialise, reads
from db.models import CityScoreDaily, MetricScoreRun
from tests._data import admin_headers, metric_id, put_department, put_metric

S = MetricScoreRun.__table__  # type: ignore[attr-defined]
C = CityScoreDaily.__table__  # type: ignore[attr-defined]
D = dt.date
URL = "/v1/ingest/values"
KINDS: dict[str, dict[str, Any]] = {
    "ratio": {"aggregation": "pooled_ratio"},
    "ems": {"aggregation": "median", "direction": "lower_is_better", "targets": None},
    "fires": {"aggregation": "mean", "direction": "lower_is_better", "reference": "baseline"},
    "count": {"aggregation": "sum", "reference": "baseline", "baseline_years": 1},
    "attend": {"aggregation": "mean_of_ratios"},
}


def _record(slug: str, day: dt.date, rng: random.Random) -> dict[str, Any]:
    if KINDS[slug]["aggregation"] in ("pooled_ratio", "mean_of_ratios"):
        den = float(rng.randint(1, 50))
        return {
            "metric": slug,
            "date": day.isoformat(),
            "numerator": rng.randint(0, 50),
            "denominator": den,
        }
    return {"metric": slug, "date": day.isoformat(), "value": float(rng.randint(0, 20))}


def _tables(session: Session, ids: list[int]) -> tuple[list[Any], list[Any]]:
    scores = session.execute(
        select(S).where(S.c.metric_id.in_(ids)).order_by(S.c.metric_id, S.c.kind, S.c.valid_from)
    ).all()
    city = session.execute(select(C).order_by(C.c.as_of)).all()
    return [tuple(r) for r in scores], [tuple(r) for r in city]


def _assert_as_a_full_rescore(session: Session, ids: list[int]) -> None:
    """The stored runs and CityScore are what ``rescore_metrics`` writes from scratch."""
    incremental = _tables(session, ids)
    assert incremental[0] and incremental[1]
    materialise.rescore_metrics(session, ids)
    assert _tables(session, ids) == incremental


def _post(client: TestClient, headers: dict[str, str], rows: list[dict[str, Any]]) -> None:
    r = client.post(URL, json=rows, headers=headers)
    assert r.status_code == 200, r.text


def _setup(client: TestClient, session: Session) -> tuple[dict[str, str], list[int]]:
    headers = admin_headers(session)
    put_department(client, headers, "ops")
    for slug, kind in KINDS.items():
        put_metric(client, headers, slug, "ops", **{k: v for k, v in kind.items() if v})
    return headers, [metric_id(session, s) for s in KINDS]


def test_batches_then_full_rescore_give_the_same_rows(client: TestClient, session: Session) -> None:
    headers, ids = _setup(client, session)
    rng = random.Random(7)
    span = [D(2023, 11, 1) + dt.timedelta(days=i) for i in range(600)]
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in span if rng.random() < 0.8])
    for _ in range(4):  # creates, updates and deletions scattered over the span
        rows = []
        for slug in KINDS:
            for day in rng.sample(span, 25):
                if rng.random() < 0.4:
                    rows.append({"metric": slug, "date": day.isoformat(), "deleted": True})
                else:
                    rows.append(_record(slug, day, rng))
        _post(client, headers, rows)
    _assert_as_a_full_rescore(session, ids)


def test_deleting_a_windows_only_value_removes_its_scores(
    client: TestClient, session: Session
) -> None:
    """A lone value, then its deletion: the rows that saw only it must go (not stay stale)."""
    headers, ids = _setup(client, session)
    rng = random.Random(3)
    early = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(120)]
    lone = D(2025, 3, 10)
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in [*early, lone]])
    as_of = lone + dt.timedelta(days=1)
    before = reads.scores_for(session, ids, as_of)
    assert all(before[m]["day"].score is not None for m in ids if m != ids[3])  # sum: 0 is ok
    _post(
        client, headers, [{"metric": s, "date": lone.isoformat(), "deleted": True} for s in KINDS]
    )
    after = reads.scores_for(session, ids, as_of)
    assert all(after[m]["day"].score is None for m in ids)
    _assert_as_a_full_rescore(session, ids)


def test_full_rescore_writes_while_reading_values(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Score rows are flushed between metrics while values are still being read: the value
    read must be complete first (on PostgreSQL a COPY still open would block the insert)."""
    monkeypatch.setattr("api.cityscore.materialise.FLUSH_ROWS", 50)
    headers, ids = _setup(client, session)
    rng = random.Random(5)
    span = [D(2025, 1, 1) + dt.timedelta(days=i) for i in range(120)]
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in span])
    _assert_as_a_full_rescore(session, ids)


def test_recent_days_reuse_the_stored_baselines_and_equal_a_full_rescore(
    client: TestClient, session: Session, monkeypatch: Any
) -> None:
    """Edits of recent days (a department's nightly numbers): no baseline window sees them,
    so the rescore takes each window's baseline from the runs it replaces and reads only the
    current windows' values, not the baseline years; its rows equal a full rescore's. New
    days after that (the span's end moving into weeks and months that have no runs yet) read
    the values again where they must, and still equal a full rescore."""
    headers, ids = _setup(client, session)
    rng = random.Random(11)
    history = [D(2022, 1, 1) + dt.timedelta(days=i) for i in range(3 * 365 + 20)]
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in history])
    last = history[-1]
    read = materialise.metric_columns
    ranges_read: list[tuple[list[int], list[tuple[D, D]]]] = []

    def spy(session: Session, metric_ids: Any, ranges: Any, *args: Any) -> Any:
        ranges_read.append((list(metric_ids), list(ranges)))
        return read(session, metric_ids, ranges, *args)

    monkeypatch.setattr(materialise, "metric_columns", spy)
    baseline = {metric_id(session, s) for s in ("fires", "count")}
    for back in (40, 3, 0):
        day = last - dt.timedelta(days=back)
        _post(client, headers, [_record(s, day, rng) for s in KINDS])
    reads_of_baseline_metrics = [r for m, r in ranges_read if set(m) & baseline]
    assert reads_of_baseline_metrics
    earliest = min(a for ranges in reads_of_baseline_metrics for a, _ in ranges)
    assert earliest > last - dt.timedelta(days=200), earliest  # not a year back
    _assert_as_a_full_rescore(session, ids)
    for ahead in range(1, 16):  # the span's end crosses Mondays and a month's first day
        _post(client, headers, [_record(s, last + dt.timedelta(days=ahead), rng) for s in KINDS])
    _assert_as_a_full_rescore(session, ids)


def test_cityscore_is_refreshed_from_the_new_scores_without_reading_them_back(
    client: TestClient, session: Session, monkeypatch: Any
) -> None:
    """A day for every in_cityscore metric: the refresh takes the scores the rescore just
    computed and reads no run back; a day for some of them reads the others' runs. Either
    way CityScore equals a full recompute's."""
    headers, ids = _setup(client, session)
    rng = random.Random(5)
    history = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(400)]
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in history])
    read = materialise._city_runs
    calls: list[int] = []

    def spy(connection: Any, kind: int, lo: int, hi: int) -> list[Any]:
        calls.append(kind)
        return read(connection, kind, lo, hi)

    monkeypatch.setattr(materialise, "_city_runs", spy)
    _post(client, headers, [_record(s, history[-1], rng) for s in KINDS])
    assert calls == []
    _assert_as_a_full_rescore(session, ids)
    _post(client, headers, [_record(s, history[-2], rng) for s in ("ratio", "fires")])
    assert calls
    _assert_as_a_full_rescore(session, ids)


def test_a_batch_of_updates_only_does_not_probe_the_stored_spans(
    client: TestClient, session: Session, monkeypatch: Any
) -> None:
    """A batch that only changes live values leaves each metric's live dates, so its
    materialised span is its live span: the rescore reads that one, not the stored runs'
    span as well. A batch that adds or deletes a date can move the span and probes both.
    Either way the rows equal a full rescore's."""
    headers, ids = _setup(client, session)
    rng = random.Random(13)
    history = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(200)]
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in history])
    probe = materialise._stored_spans
    probed: list[list[int]] = []

    def spy(session: Session, metric_ids: Any) -> Any:
        probed.append(sorted(metric_ids))
        return probe(session, metric_ids)

    monkeypatch.setattr(materialise, "_stored_spans", spy)
    expand = materialise._span_days
    expanded: list[Any] = []

    def spy_days(span: Any) -> Any:  # a span's days as a set: years of them, for moved ones
        expanded.append(span)
        return expand(span)

    monkeypatch.setattr(materialise, "_span_days", spy_days)
    _post(client, headers, [_record(s, history[-1], rng) for s in KINDS])
    _post(client, headers, [_record(s, history[-30], rng) for s in KINDS])
    assert not any(probed), probed
    assert expanded == []
    _assert_as_a_full_rescore(session, ids)  # (a full rescore probes every metric)
    probed.clear()
    new_day = history[-1] + dt.timedelta(days=1)
    _post(
        client,
        headers,
        [
            _record("ratio", new_day, rng),
            _record("fires", history[-1], rng),
            {"metric": "count", "date": history[-2].isoformat(), "deleted": True},
        ],
    )
    assert [m for call in probed for m in call] == sorted(
        [metric_id(session, "ratio"), metric_id(session, "count")]
    )
    _assert_as_a_full_rescore(session, ids)


def test_the_deletes_name_only_dates_inside_the_materialised_spans(
    client: TestClient, session: Session, monkeypatch: Any
) -> None:
    """A recent day's values feed baselines years later, past every materialised run: the
    DELETE of the old runs names only ranges inside the group's spans (each range outside
    them costs an index descent per metric and deletes nothing)."""
    headers, ids = _setup(client, session)
    rng = random.Random(17)
    history = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(400)]
    _post(client, headers, [_record(s, d, rng) for s in KINDS for d in history])
    delete = materialise._delete_runs
    named: list[tuple[D, D]] = []

    def spy(session: Session, metric_ids: Any, kind: Any = None, ranges: Any = (), *a: Any) -> Any:
        named.extend(ranges)
        return delete(session, metric_ids, kind, ranges, *a)

    monkeypatch.setattr(materialise, "_delete_runs", spy)
    _post(client, headers, [_record(s, history[-5], rng) for s in KINDS])
    last_run = history[-1] + dt.timedelta(days=materialise.AHEAD)
    assert named
    assert max(b for _, b in named) <= last_run
    _assert_as_a_full_rescore(session, ids)
