"""HTTP tests of /v1/cityscore, /v1/cityscore.csv, /v1/cityscore/history and
/v1/metrics/{slug}/scores, on SQLite and PostgreSQL.

Departments and metrics are created through the admin API; daily values are inserted straight
into ``metric_values`` and scored with ``rescore_metrics`` (independent of the ingest endpoint).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.cityscore import materialise, reads
from api.scoring.windows import Window, date_range
from db.models import Metric, MetricValue, utcnow
from tests._data import admin_headers, metric_id, put_department, put_metric

D = dt.date
AS_OF = D(2026, 5, 16)
EXACT = 5e-16
WINDOWS = ("day", "week", "month", "quarter")
CSV_HEADER = (
    "metric,name,department,as_of,target,metric_logic,"
    "day_score,day_numerator,day_denominator,week_score,week_numerator,week_denominator,"
    "month_score,month_numerator,month_denominator,"
    "quarter_score,quarter_numerator,quarter_denominator"
)
M = Metric.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]

Row = tuple[dt.date, float | None, float | None, float | None]
TARGETS_FROM = "2020-01-01"  # these metrics have no target in force before 2020


# --- set-up helpers ------------------------------------------------------------------------


def insert(session: Session, slug: str, rows: Iterable[Row]) -> int:
    mid = metric_id(session, slug)
    now = utcnow()
    records = [
        {
            "metric_id": mid,
            "date": d,
            "value": value,
            "numerator": num,
            "denominator": den,
            "deleted": False,
            "updated_at": now,
        }
        for d, value, num, den in rows
    ]
    session.execute(V.insert(), records)
    session.flush()
    return mid


def score(session: Session, ids: Iterable[int]) -> None:
    materialise.rescore_metrics(session, list(ids))
    session.flush()


def ratio_rows(
    span: list[dt.date], total_num: float, total_den: float, num: float, den: float
) -> list[Row]:
    """Days of ``span`` whose numerators and denominators sum exactly to the totals."""
    rows: list[Row] = [(d, num / den, num, den) for d in span[:-1]]
    n, d_ = total_num - num * (len(span) - 1), total_den - den * (len(span) - 1)
    rows.append((span[-1], n / d_, n, d_))
    return rows


# The windows as of Saturday 2026-05-16, written out (not taken from the code under test).
W = {
    "day": Window(D(2026, 5, 15), D(2026, 5, 15)),
    "week": Window(D(2026, 5, 4), D(2026, 5, 10)),
    "month": Window(D(2026, 4, 1), D(2026, 4, 30)),
    "quarter": Window(D(2026, 2, 1), D(2026, 4, 30)),
}
# Boston's published scores as of 2026-05-16 (15 decimals), from which CityScore is worked
# out by hand below: 311 scores every window; EMS (no April data) only day and week; BFD
# (no value on 05-15, none in April) only the week.
F311 = {
    "day": 0.989847715736041,  # 741/788/0.95
    "week": 0.980634610398676,  # 4917/5278/0.95
    "month": 0.942729614196907,  # 20973/23418/0.95
    "quarter": 0.942380231712577,  # 67842/75779/0.95
}
F_EMS = 0.845070422535211  # 6.0/7.1
F_BFD = 0.906156343656344  # (14513/77)/208
CITY_2026_05_16 = {
    "day": (F311["day"] + F_EMS) / 2,
    "week": (F311["week"] + F_EMS + F_BFD) / 3,
    "month": F311["month"],
    "quarter": F311["quarter"],
}


def rows_311() -> list[Row]:
    return [
        (D(2026, 5, 15), 741 / 788, 741.0, 788.0),
        *ratio_rows(date_range(*W["week"]), 4917, 5278, 700, 750),
        *ratio_rows(date_range(*W["month"]), 20973, 23418, 700, 780),
        *ratio_rows(
            date_range(W["quarter"].start, D(2026, 3, 31)), 67842 - 20973, 75779 - 23418, 790, 880
        ),
    ]


def rows_ems() -> list[Row]:
    week = date_range(*W["week"])
    vals = [5.0, 9.0, 7.1, 6.0, 8.0, 7.5, 7.0]
    rows: list[Row] = [(D(2026, 5, 15), 7.1, None, None)]
    rows += [(d, v, None, None) for d, v in zip(week, vals, strict=True)]
    return rows


def rows_bfd() -> list[Row]:
    week = date_range(*W["week"])
    current = [200.0, 210, 205, 215, 208, 206, 212]
    rows: list[Row] = [(d, v, None, None) for d, v in zip(week, current, strict=True)]
    history = [d.replace(year=d.year - k) for k in range(1, 12) for d in week]
    rows += [(d, 188.0, None, None) for d in history[:-1]]
    rows.append((history[-1], 188.0 + 14513 - 188 * 77, None, None))
    return rows


@pytest.fixture
def headers(session: Session) -> dict[str, str]:
    return admin_headers(session)


@pytest.fixture
def boston(client: TestClient, session: Session, headers: dict[str, str]) -> dict[str, int]:
    """311 (pooled ratio, target 0.95), EMS (median, target 6.0), BFD (mean vs baseline) and a
    metric left out of CityScore."""
    for dept in ("311", "ems", "bfd"):
        put_department(client, headers, dept)
    put_metric(
        client,
        headers,
        "311-call-center",
        "311",
        direction="higher_is_better",
        aggregation="pooled_ratio",
        reference="target",
        target_from=TARGETS_FROM,
        target=0.95,
        name="311 metric",
    )
    put_metric(
        client,
        headers,
        "ems-response",
        "ems",
        direction="lower_is_better",
        aggregation="median",
        reference="target",
        target_from=TARGETS_FROM,
        target=6.0,
    )
    put_metric(
        client,
        headers,
        "bfd-incidents",
        "bfd",
        direction="lower_is_better",
        aggregation="mean",
        reference="baseline",
        baseline_years=11,
    )
    put_metric(
        client,
        headers,
        "hidden",
        "311",
        direction="higher_is_better",
        aggregation="mean",
        reference="target",
        target_from=TARGETS_FROM,
        target=1.0,
        in_cityscore=False,
    )
    ids = {
        "311-call-center": insert(session, "311-call-center", rows_311()),
        "ems-response": insert(session, "ems-response", rows_ems()),
        "bfd-incidents": insert(session, "bfd-incidents", rows_bfd()),
        # a big score that would move CityScore if it counted
        "hidden": insert(
            session,
            "hidden",
            [(d, 50.0, None, None) for d in date_range(D(2026, 1, 1), D(2026, 5, 31))],
        ),
    }
    score(session, ids.values())
    return ids


def get_ok(client: TestClient, url: str, **kwargs: Any) -> Any:
    r = client.get(url, **kwargs)
    assert r.status_code == 200, r.text
    return r


def cityscore(client: TestClient, as_of: dt.date | str) -> dict[str, Any]:
    doc: dict[str, Any] = get_ok(client, f"/v1/cityscore?as_of={as_of}").json()
    return doc


def by_slug(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in doc["metrics"]}


def assert_city(score: dict[str, float | None], expected: Mapping[str, float | None]) -> None:
    """CityScore equals hand-worked figures (means of 15-decimal figures: 1e-15 apart)."""
    assert set(score) == set(WINDOWS) == set(expected)
    for w in WINDOWS:
        want = expected[w]
        if want is None:
            assert score[w] is None, w
        else:
            assert score[w] == pytest.approx(want, rel=0, abs=1e-15), w


# --- /v1/cityscore -------------------------------------------------------------------------


def test_cityscore_reproduces_boston_figures(client: TestClient, boston: dict[str, int]) -> None:
    doc = cityscore(client, "2026-05-16")
    assert doc["as_of"] == "2026-05-16"
    assert doc["windows"] == {
        "day": {"start": "2026-05-15", "end": "2026-05-15"},
        "week": {"start": "2026-05-04", "end": "2026-05-10"},
        "month": {"start": "2026-04-01", "end": "2026-04-30"},
        "quarter": {"start": "2026-02-01", "end": "2026-04-30"},
    }
    metrics = by_slug(doc)
    assert [m["metric"] for m in doc["metrics"]] == sorted(metrics)
    assert set(metrics) == {"311-call-center", "ems-response", "bfd-incidents"}

    m311 = metrics["311-call-center"]
    assert m311["name"] == "311 metric" and m311["department"] == "311"
    assert m311["target"] == 0.95
    assert m311["metric_logic"] == "sum(numerator_value)/sum(denominator_value)/target"
    for w, num, den, figure in [
        ("day", 741, 788, 0.989847715736041),
        ("week", 4917, 5278, 0.980634610398676),
        ("month", 20973, 23418, 0.942729614196907),
        ("quarter", 67842, 75779, 0.942380231712577),
    ]:
        assert m311[w]["score"] == pytest.approx(figure, rel=0, abs=EXACT), w
        assert (m311[w]["numerator"], m311[w]["denominator"]) == (num, den)

    ems = metrics["ems-response"]
    assert ems["target"] == 6.0 and ems["metric_logic"] == "target / median"
    for w in ("day", "week"):
        assert ems[w]["score"] == pytest.approx(0.845070422535211, rel=0, abs=EXACT)
        assert (ems[w]["numerator"], ems[w]["denominator"]) == (6.0, 7.1)
    # no data in April: the target is still published
    assert ems["month"] == {"score": None, "numerator": 6.0, "denominator": None}

    bfd = metrics["bfd-incidents"]
    assert bfd["target"] is None
    assert bfd["metric_logic"] == "historical_average / current_average"
    assert bfd["week"]["score"] == pytest.approx(0.906156343656344, rel=0, abs=EXACT)
    assert bfd["week"]["numerator"] == pytest.approx(188.480519480519, abs=1e-12)
    assert bfd["week"]["denominator"] == 208.0
    # no value on 05-15: no day score, but the (week's) baseline is still published
    assert bfd["day"] == {
        "score": None,
        "numerator": bfd["week"]["numerator"],
        "denominator": None,
    }

    # CityScore = plain mean of the listed metrics' non-null scores; "hidden" not counted
    assert_city(doc["score"], CITY_2026_05_16)
    assert doc["score"]["day"] == pytest.approx(
        (741 / 788 / 0.95 + 6.0 / 7.1) / 2, rel=0, abs=1e-15
    )


# "hidden" scores 50 on every window (mean 50, target 1): counted, it would move each figure.
# As of 2026-03-01 only 311 has data (February: 790/880 a day, every window).
# As of 2026-06-01 (month May, quarter March..May): 311's May is (741+4917)/(788+5278) =
# 5658/6066; its March is 30 days of 790/880 plus 03-31's remainder of the Feb..Mar spread,
# (46869-58*790)/(52361-58*880) = 1049/1321, so March..May is (23700+1049+20973+5658)/
# (26400+1321+23418+6066) = 51380/57205. EMS's May median is 7.1 (8 values, middle two 7.1);
# BFD's May is the same week against the same 77 baseline days. No day or week data.
WITHOUT_HIDDEN: dict[str, Mapping[str, float | None]] = {
    "2026-05-16": CITY_2026_05_16,
    "2026-03-01": {w: 790 / 880 / 0.95 for w in WINDOWS},
    "2026-06-01": {
        "day": None,
        "week": None,
        "month": (5658 / 6066 / 0.95 + F_EMS + F_BFD) / 3,
        "quarter": (51380 / 57205 / 0.95 + F_EMS + F_BFD) / 3,
    },
}


def test_cityscore_excludes_metric_not_in_cityscore(
    client: TestClient, boston: dict[str, int]
) -> None:
    for as_of, expected in WITHOUT_HIDDEN.items():
        doc = cityscore(client, as_of)
        assert "hidden" not in by_slug(doc)
        assert_city(doc["score"], expected)
    # ... but its scores exist
    r = get_ok(client, "/v1/metrics/hidden/scores?start=2026-05-16&end=2026-05-16").json()
    assert r["data"][0]["week"] == 50.0


def test_cityscore_without_data(client: TestClient, boston: dict[str, int]) -> None:
    doc = cityscore(client, "2010-01-01")
    assert doc["score"] == {w: None for w in WINDOWS}
    m = by_slug(doc)
    assert m["ems-response"]["target"] is None  # before the first target
    for entry in doc["metrics"]:
        assert all(entry[w]["score"] is None for w in WINDOWS)


def test_cityscore_csv(client: TestClient, boston: dict[str, int]) -> None:
    r = get_ok(client, "/v1/cityscore.csv?as_of=2026-05-16")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith(CSV_HEADER + "\r\n")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    doc = cityscore(client, "2026-05-16")
    assert [row["metric"] for row in rows] == [m["metric"] for m in doc["metrics"]]
    for row, m in zip(rows, doc["metrics"], strict=True):
        assert row["as_of"] == "2026-05-16"
        assert (row["name"], row["department"], row["metric_logic"]) == (
            m["name"],
            m["department"],
            m["metric_logic"],
        )
        assert (float(row["target"]) if row["target"] else None) == m["target"]
        for w in WINDOWS:
            for part in ("score", "numerator", "denominator"):
                cell = row[f"{w}_{part}"]
                assert (float(cell) if cell else None) == m[w][part], (m["metric"], w, part)
    accept = get_ok(client, "/v1/cityscore?as_of=2026-05-16", headers={"Accept": "text/csv"})
    assert accept.headers["content-type"] == "text/csv; charset=utf-8"
    assert accept.content == r.content


# --- history and metric scores -------------------------------------------------------------


def test_history_agrees_with_cityscore_for_every_date(
    client: TestClient, boston: dict[str, int]
) -> None:
    start, end = D(2026, 4, 1), D(2026, 5, 30)
    data = get_ok(client, f"/v1/cityscore/history?start={start}&end={end}").json()["data"]
    assert [row["as_of"] for row in data] == [d.isoformat() for d in date_range(start, end)]
    # CityScore from another source: the mean of each metric's own stored scores
    per_metric = [
        get_ok(client, f"/v1/metrics/{slug}/scores?start={start}&end={end}").json()["data"]
        for slug in ("311-call-center", "ems-response", "bfd-incidents")
    ]
    for row, *metric_rows in zip(data, *per_metric, strict=True):
        doc = cityscore(client, row["as_of"])
        assert {w: row[w] for w in WINDOWS} == doc["score"], row["as_of"]
        for w in WINDOWS:
            present = [m[w] for m in metric_rows if m[w] is not None]
            mean = math.fsum(present) / len(present) if present else None
            assert row[w] == (None if mean is None else pytest.approx(mean, rel=1e-15)), w
    assert_city(
        {w: r[w] for r in data if r["as_of"] == "2026-05-16" for w in WINDOWS}, CITY_2026_05_16
    )
    assert any(row["day"] is not None for row in data)


def test_metric_scores_agree_with_cityscore(client: TestClient, boston: dict[str, int]) -> None:
    start, end = D(2026, 5, 1), D(2026, 6, 5)
    docs = {d: by_slug(cityscore(client, d)) for d in date_range(start, end)}
    for slug in ("311-call-center", "ems-response", "bfd-incidents"):
        url = f"/v1/metrics/{slug}/scores?start={start}&end={end}"
        data = get_ok(client, url).json()["data"]
        assert [row["as_of"] for row in data] == [d.isoformat() for d in date_range(start, end)]
        for row in data:
            entry = docs[D.fromisoformat(row["as_of"])][slug]
            assert {w: row[w] for w in WINDOWS} == {w: entry[w]["score"] for w in WINDOWS}, (
                slug,
                row["as_of"],
            )
    row = get_ok(client, "/v1/metrics/311-call-center/scores?start=2026-05-16&end=2026-05-16")
    assert row.json()["data"][0]["day"] == pytest.approx(0.989847715736041, rel=0, abs=EXACT)


def test_history_paging_collects_the_same_rows(client: TestClient, boston: dict[str, int]) -> None:
    for path in ("/v1/cityscore/history", "/v1/metrics/311-call-center/scores"):
        url = f"{path}?start=2026-02-20&end=2026-05-31"
        whole = get_ok(client, url).json()
        assert whole["next"] is None
        paged: list[dict[str, Any]] = []
        next_url: str | None = url + "&limit=7"
        pages = 0
        while next_url:
            r = get_ok(client, next_url)
            body = r.json()
            assert len(body["data"]) <= 7
            paged += body["data"]
            next_url = body["next"]
            if next_url:
                assert r.headers["link"] == f'<{next_url}>; rel="next"'
            pages += 1
        assert paged == whole["data"]
        assert pages == math.ceil(len(whole["data"]) / 7)


def test_history_is_served_from_memory_per_data_version(
    client: TestClient,
    boston: dict[str, int],
    session: Session,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One read of cityscore_daily per data version answers every history range: before,
    across and after the stored dates, paged or whole, byte for byte what the store says;
    a write that moves the scores is seen by the next request."""
    ranges = [
        ("2026-01-01", "2026-03-10"),  # starts before the first stored date
        ("2026-04-20", "2026-06-30"),  # runs past the last
        ("2025-01-01", "2025-01-31"),  # entirely before
        ("2000-01-01", "2026-05-20"),  # from before the null rows held ready
        ("2026-06-01", "2028-01-01"),  # on past them
        ("2026-05-16", "2026-05-16"),
    ]

    read = reads.cityscore_history
    calls: list[tuple[dt.date, dt.date]] = []

    def counted(session: Session, start: dt.date, end: dt.date, **options: Any) -> Any:
        calls.append((start, end))
        return read(session, start, end, **options)

    monkeypatch.setattr(reads, "cityscore_history", counted)

    def expected(start: str, end: str) -> list[dict[str, Any]]:
        rows = read(session, dt.date.fromisoformat(start), dt.date.fromisoformat(end))
        keys = ("as_of", "day", "week", "month", "quarter")
        return [
            {"as_of": r[0].isoformat(), **dict(zip(keys[1:], r[1:], strict=True))} for r in rows
        ]

    for start, end in ranges:
        url = f"/v1/cityscore/history?start={start}&end={end}&limit=10000"
        body = get_ok(client, url).json()
        assert body["data"] == expected(start, end) and body["next"] is None
    page = get_ok(client, "/v1/cityscore/history?start=2026-04-20&end=2026-06-30&limit=5")
    assert page.json()["data"] == expected("2026-04-20", "2026-06-30")[:5]
    assert len(calls) == 1, calls  # one read of the whole table for this data version

    before = get_ok(client, "/v1/cityscore/history?start=2026-05-01&end=2026-05-20").json()
    rows = [{"metric": "bfd-incidents", "date": "2026-05-14", "value": 900.0}]
    assert client.post("/v1/ingest/values", json=rows, headers=headers).status_code == 200
    after = get_ok(client, "/v1/cityscore/history?start=2026-05-01&end=2026-05-20").json()
    assert after["data"] == expected("2026-05-01", "2026-05-20")
    assert after["data"] != before["data"]


# --- writes rescore; caching ---------------------------------------------------------------


def test_target_change_rescores_and_changes_etag(
    client: TestClient, boston: dict[str, int], headers: dict[str, str]
) -> None:
    url = "/v1/cityscore?as_of=2026-05-16"
    first = get_ok(client, url)
    etag = first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    scores_url = "/v1/metrics/311-call-center/scores?start=2026-05-16&end=2026-05-16"
    scores_etag = get_ok(client, scores_url).headers["etag"]
    history_url = "/v1/cityscore/history?start=2026-05-10&end=2026-05-20"
    history_etag = get_ok(client, history_url).headers["etag"]

    put_metric(
        client,
        headers,
        "311-call-center",
        "311",
        name="311 metric",
        direction="higher_is_better",
        aggregation="pooled_ratio",
        reference="target",
        target_from=TARGETS_FROM,
        target=0.9,
    )
    second = client.get(url, headers={"If-None-Match": etag})
    assert second.status_code == 200
    assert second.headers["etag"] != etag
    m = by_slug(second.json())["311-call-center"]
    assert m["target"] == 0.9
    assert m["day"]["score"] == pytest.approx(741 / 788 / 0.9, rel=1e-15)
    assert m["day"]["score"] != by_slug(first.json())["311-call-center"]["day"]["score"]
    assert_city(
        second.json()["score"],
        {
            "day": (741 / 788 / 0.9 + F_EMS) / 2,
            "week": (4917 / 5278 / 0.9 + F_EMS + F_BFD) / 3,
            "month": 20973 / 23418 / 0.9,
            "quarter": 67842 / 75779 / 0.9,
        },
    )
    s = client.get(scores_url, headers={"If-None-Match": scores_etag})
    assert s.status_code == 200 and s.json()["data"][0]["day"] == m["day"]["score"]
    h = client.get(history_url, headers={"If-None-Match": history_etag})
    assert h.status_code == 200
    day = {row["as_of"]: row for row in h.json()["data"]}["2026-05-16"]
    assert {w: day[w] for w in WINDOWS} == second.json()["score"]


def test_in_cityscore_change_updates_cityscore(
    client: TestClient, boston: dict[str, int], headers: dict[str, str]
) -> None:
    put_metric(
        client,
        headers,
        "hidden",
        "311",
        direction="higher_is_better",
        aggregation="mean",
        reference="target",
        target_from=TARGETS_FROM,
        target=1.0,
        in_cityscore=True,
    )
    doc = cityscore(client, "2026-05-16")
    assert by_slug(doc)["hidden"]["week"]["score"] == 50.0
    assert_city(  # "hidden" scores 50 on every window
        doc["score"],
        {
            "day": (F311["day"] + F_EMS + 50) / 3,
            "week": (F311["week"] + F_EMS + F_BFD + 50) / 4,
            "month": (F311["month"] + 50) / 2,
            "quarter": (F311["quarter"] + 50) / 2,
        },
    )
    history = get_ok(client, "/v1/cityscore/history?start=2026-05-16&end=2026-05-16").json()
    assert {w: history["data"][0][w] for w in WINDOWS} == doc["score"]


def test_etag_per_representation(client: TestClient, boston: dict[str, int]) -> None:
    json_r = get_ok(client, "/v1/cityscore?as_of=2026-05-16")
    csv_r = get_ok(client, "/v1/cityscore.csv?as_of=2026-05-16")
    other = get_ok(client, "/v1/cityscore?as_of=2026-05-17")
    assert len({json_r.headers["etag"], csv_r.headers["etag"], other.headers["etag"]}) == 3
    r = client.get(
        "/v1/cityscore.csv?as_of=2026-05-16", headers={"If-None-Match": csv_r.headers["etag"]}
    )
    assert r.status_code == 304


# --- errors --------------------------------------------------------------------------------


def assert_problem(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["detail"] and body["message"] == body["detail"]


@pytest.mark.parametrize("as_of", ["2026-13-01", "yesterday", "2026-02-30", "2026-5-16"])
def test_malformed_as_of(client: TestClient, as_of: str) -> None:
    assert_problem(client.get(f"/v1/cityscore?as_of={as_of}"), 400)
    assert_problem(client.get(f"/v1/cityscore.csv?as_of={as_of}"), 400)


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-05-02&end=2026-05-01",
        "start=2026-13-01&end=2026-05-01",
        "start=2026-05-01&end=tomorrow",
        "start=2026-05-01&end=2026-05-31&limit=0",
        "start=2026-05-01&end=2026-05-31&cursor=garbage",
        "start=2026-05-01&end=2026-05-31&limit=10001",
        "start=2026-05-01&end=2026-05-31&limit=ten",
    ],
)
def test_bad_ranges(client: TestClient, boston: dict[str, int], query: str) -> None:
    assert_problem(client.get(f"/v1/cityscore/history?{query}"), 400)
    assert_problem(client.get(f"/v1/metrics/311-call-center/scores?{query}"), 400)


def test_unknown_metric_scores(client: TestClient) -> None:
    assert_problem(client.get("/v1/metrics/no-such-metric/scores"), 404)
    assert_problem(client.get("/v1/metrics/no-such-metric/scores.csv"), 404)


# --- incremental rescoring (what an ingest does) -------------------------------------------


def _all_scores(session: Session, ids: Iterable[int], start: dt.date, end: dt.date) -> Any:
    per_metric = {mid: reads.metric_history(session, mid, start, end) for mid in ids}
    return per_metric, reads.cityscore_history(session, start, end)


def test_rescore_days_matches_full_rescore(
    client: TestClient, session: Session, headers: dict[str, str]
) -> None:
    put_department(client, headers, "bfd")
    put_metric(
        client,
        headers,
        "incidents",
        "bfd",
        direction="lower_is_better",
        aggregation="mean",
        reference="baseline",
        baseline_years=2,
    )
    put_metric(
        client,
        headers,
        "on-time",
        "bfd",
        direction="higher_is_better",
        aggregation="pooled_ratio",
        reference="target",
        target_from=TARGETS_FROM,
        target=0.8,
    )
    span = date_range(D(2023, 1, 1), D(2026, 4, 30))
    a = insert(
        session,
        "incidents",
        [(d, float(d.toordinal() % 11 + 1), None, None) for d in span if d.toordinal() % 5],
    )
    b = insert(
        session,
        "on-time",
        [(d, 0.8, 8.0 + d.toordinal() % 3, 10.0) for d in span if d.toordinal() % 7],
    )
    score(session, [a, b])
    start, end = D(2023, 1, 1), D(2026, 9, 30)
    before = _all_scores(session, [a, b], start, end)

    changed = {
        a: [D(2024, 2, 29), D(2023, 2, 28), D(2025, 12, 31), D(2026, 5, 3)],
        b: [D(2024, 2, 29), D(2026, 4, 30)],
    }
    session.execute(
        V.update().where(V.c.metric_id == a).where(V.c.date.in_(changed[a][:3])).values(value=500.0)
    )
    session.execute(  # a new day after the last one
        V.insert(),
        [
            {
                "metric_id": a,
                "date": changed[a][3],
                "value": 0.5,
                "numerator": None,
                "denominator": None,
                "deleted": False,
                "updated_at": utcnow(),
            }
        ],
    )
    session.execute(  # a deletion
        V.update().where(V.c.metric_id == b).where(V.c.date.in_(changed[b])).values(deleted=True)
    )
    session.flush()
    materialise.rescore_days(session, changed)
    session.flush()
    incremental = _all_scores(session, [a, b], start, end)
    assert incremental != before

    score(session, [a, b])
    full = _all_scores(session, [a, b], start, end)
    assert incremental[0][a] == full[0][a]
    assert incremental[0][b] == full[0][b]
    assert incremental[1] == full[1]


def test_cityscore_default_as_of_is_today(
    client: TestClient, boston: dict[str, int], frozen_clock: None
) -> None:
    doc = get_ok(client, "/v1/cityscore").json()
    assert doc["as_of"] == "2026-05-15"  # 02:30 UTC on the 16th is still the 15th in New York
    assert doc["windows"]["day"] == {"start": "2026-05-14", "end": "2026-05-14"}


def test_history_and_scores_csv(client: TestClient, boston: dict[str, int]) -> None:
    for path in ("/v1/cityscore/history", "/v1/metrics/ems-response/scores"):
        query = "?start=2026-05-01&end=2026-05-20"
        json_rows = get_ok(client, path + query).json()["data"]
        r = get_ok(client, path + ".csv" + query)
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        text = r.content.decode("utf-8")
        assert text.startswith("as_of,day,week,month,quarter\r\n")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert len(rows) == len(json_rows) == 20
        for row, j in zip(rows, json_rows, strict=True):
            assert row["as_of"] == j["as_of"]
            for w in WINDOWS:
                assert (float(row[w]) if row[w] else None) == j[w]
        bom = get_ok(client, path + ".csv" + query + "&bom=true").content
        assert bom == b"\xef\xbb\xbf" + r.content


def test_history_default_range_is_last_365_days(client: TestClient, boston: dict[str, int]) -> None:
    data = get_ok(client, "/v1/cityscore/history?end=2026-05-16").json()["data"]
    assert len(data) == 365
    assert (data[0]["as_of"], data[-1]["as_of"]) == ("2025-05-17", "2026-05-16")


def test_caching_headers_and_idempotent_put(
    client: TestClient, boston: dict[str, int], headers: dict[str, str]
) -> None:
    url = "/v1/cityscore?as_of=2026-05-16"
    r = get_ok(client, url)
    etag = r.headers["etag"]
    assert r.headers["last-modified"]
    assert (
        r.headers["cache-control"]
        == "public, max-age=60, stale-while-revalidate=30, stale-if-error=300"
    )
    assert "accept" in r.headers["vary"].lower()
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == etag
    # replaying the same definition changes nothing
    put_metric(
        client,
        headers,
        "311-call-center",
        "311",
        name="311 metric",
        direction="higher_is_better",
        aggregation="pooled_ratio",
        reference="target",
        target_from=TARGETS_FROM,
        target=0.95,
    )
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    # taking a metric out of CityScore changes the document and its ETag
    put_metric(
        client,
        headers,
        "ems-response",
        "ems",
        direction="lower_is_better",
        aggregation="median",
        reference="target",
        target_from=TARGETS_FROM,
        target=6.0,
        in_cityscore=False,
    )
    r2 = client.get(url, headers={"If-None-Match": etag})
    assert r2.status_code == 200 and r2.headers["etag"] != etag
    doc = r2.json()
    assert set(by_slug(doc)) == {"311-call-center", "bfd-incidents"}
    assert_city(doc["score"], {**F311, "week": (F311["week"] + F_BFD) / 2})
    assert doc["score"]["day"] == by_slug(doc)["311-call-center"]["day"]["score"]
    hist = get_ok(client, "/v1/cityscore/history?start=2026-05-16&end=2026-05-16").json()
    assert {w: hist["data"][0][w] for w in WINDOWS} == doc["score"]


def test_cursor_is_bound_to_its_query(client: TestClient, boston: dict[str, int]) -> None:
    first = get_ok(client, "/v1/cityscore/history?start=2026-03-01&end=2026-05-31&limit=7")
    cursor = first.json()["next"].split("cursor=")[1]
    other = client.get(f"/v1/cityscore/history?start=2026-03-02&end=2026-05-31&cursor={cursor}")
    assert_problem(other, 400)


def test_metric_without_any_data(
    client: TestClient, session: Session, boston: dict[str, int], headers: dict[str, str]
) -> None:
    before = cityscore(client, "2026-05-16")
    put_metric(
        client,
        headers,
        "empty",
        "ems",
        direction="lower_is_better",
        aggregation="median",
        reference="target",
        target_from=TARGETS_FROM,
        target=6.0,
        name="Empty",
    )
    doc = cityscore(client, "2026-05-16")
    entry = by_slug(doc)["empty"]
    assert entry["target"] == 6.0 and entry["metric_logic"] == "target / median"
    for w in WINDOWS:
        assert entry[w] == {"score": None, "numerator": 6.0, "denominator": None}
    assert doc["score"] == before["score"]
    assert_city(doc["score"], CITY_2026_05_16)
    data = get_ok(client, "/v1/metrics/empty/scores?start=2026-05-01&end=2026-05-31").json()
    assert len(data["data"]) == 31
    assert all(row[w] is None for row in data["data"] for w in WINDOWS)


@pytest.mark.parametrize(
    ("as_of", "quarter"),
    [
        ("0100-01-01", ("0099-10-01", "0099-12-31")),  # the three months before January
        ("9899-12-31", ("9899-09-01", "9899-11-30")),
        ("2024-02-29", ("2023-11-01", "2024-01-31")),
        ("2024-03-01", ("2023-12-01", "2024-02-29")),  # a leap February ends the quarter
    ],
)
def test_extreme_and_leap_as_of_dates(
    client: TestClient, boston: dict[str, int], as_of: str, quarter: tuple[str, str]
) -> None:
    doc = cityscore(client, as_of)
    assert doc["as_of"] == as_of
    assert doc["windows"]["quarter"] == {"start": quarter[0], "end": quarter[1]}
    get_ok(client, f"/v1/cityscore/history?start={as_of}&end={as_of}")
    get_ok(client, f"/v1/metrics/bfd-incidents/scores?start={as_of}&end={as_of}")


@pytest.mark.parametrize("as_of", ["0099-12-31", "9900-01-01", "20260516", "2026-05-16T00:00"])
def test_out_of_range_as_of(client: TestClient, as_of: str) -> None:
    assert_problem(client.get(f"/v1/cityscore?as_of={as_of}"), 400)
