"""The public read API: catalogue, one metric's values by period, bulk values, revisions,
analyses. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import statistics
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import (
    add_revision,
    department_headers,
    insert_values,
    instant,
    metric_id,
    parse_csv,
    put_department,
    put_metric,
    tombstone,
)

METRIC_FIELDS = {
    "slug",
    "name",
    "description",
    "department",
    "unit",
    "direction",
    "aggregation",
    "reference",
    "target",
    "targets",
    "baseline_years",
    "in_cityscore",
    "metric_logic",
    "source_url",
    "updated_at",
}


def slugs(body: dict[str, Any]) -> list[str]:
    return [row["slug"] for row in body["data"]]


# --- departments ---------------------------------------------------------------------------


def test_departments_list_and_one(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/v1/departments").json() == {"data": [], "next": None}
    put_department(
        client,
        admin,
        "public-works",
        "Public Works",
        cabinet="Streets",
        description="Roads",
        url="https://example.org/pwd",
        expect=201,
    )
    put_department(client, admin, "311", "311 Call Center", cabinet=None, expect=201)

    body = client.get("/v1/departments").json()
    assert slugs(body) == ["311", "public-works"]
    assert body["next"] is None
    pwd = body["data"][1]
    assert set(pwd) == {"slug", "name", "cabinet", "description", "url", "updated_at"}
    assert pwd["name"] == "Public Works" and pwd["cabinet"] == "Streets"
    assert pwd["description"] == "Roads" and pwd["url"] == "https://example.org/pwd"
    instant(pwd["updated_at"])
    assert body["data"][0]["cabinet"] is None

    r = client.get("/v1/departments/public-works")
    assert r.status_code == 200
    assert r.json() == pwd
    assert client.get("/v1/departments/nope").status_code == 404


# --- metrics -------------------------------------------------------------------------------


def _catalogue(client: TestClient, admin: dict[str, str]) -> None:
    put_department(client, admin, "parks")
    put_department(client, admin, "police")
    put_metric(
        client,
        admin,
        "a-ratio",
        "parks",
        name="Potholes on time",
        description="Share of POTHOLES filled within two days",
        aggregation="pooled_ratio",
        unit="share",
        source_url="https://example.org/potholes",
    )
    put_metric(
        client,
        admin,
        "b-median",
        "police",
        name="Response Time",
        aggregation="median",
        direction="lower_is_better",
        targets=[{"effective_from": "2000-01-01", "value": 6.0}],
        in_cityscore=False,
    )
    put_metric(
        client,
        admin,
        "c-base",
        "parks",
        name="Incidents",
        aggregation="mean",
        direction="lower_is_better",
        reference="baseline",
        baseline_years=3,
    )


def test_metrics_list_filters(client: TestClient, admin: dict[str, str]) -> None:
    _catalogue(client, admin)
    assert slugs(client.get("/v1/metrics").json()) == ["a-ratio", "b-median", "c-base"]
    assert slugs(client.get("/v1/metrics?department=parks").json()) == ["a-ratio", "c-base"]
    assert slugs(client.get("/v1/metrics?department=police").json()) == ["b-median"]
    assert slugs(client.get("/v1/metrics?in_cityscore=true").json()) == ["a-ratio", "c-base"]
    assert slugs(client.get("/v1/metrics?in_cityscore=false").json()) == ["b-median"]
    assert slugs(client.get("/v1/metrics?department=parks&in_cityscore=false").json()) == []
    # q: case-insensitive, in slug, name or description
    assert slugs(client.get("/v1/metrics?q=potholes").json()) == ["a-ratio"]
    assert slugs(client.get("/v1/metrics?q=RESPONSE").json()) == ["b-median"]
    assert slugs(client.get("/v1/metrics?q=c-BASE").json()) == ["c-base"]
    assert slugs(client.get("/v1/metrics?q=100%").json()) == []
    assert slugs(client.get("/v1/metrics?q=_").json()) == []
    # unknown values: an empty list, not an error
    assert client.get("/v1/metrics?department=nope").json() == {"data": [], "next": None}
    assert client.get("/v1/metrics?q=zzz").json() == {"data": [], "next": None}
    r = client.get("/v1/metrics?in_cityscore=maybe")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_metric_fields_and_targets(
    client: TestClient, admin: dict[str, str], frozen_clock: None
) -> None:
    _catalogue(client, admin)
    # the frozen clock's city date is 2026-05-15: a target from the 16th (already the date in
    # UTC) is not yet in force
    future = "2026-05-16"
    put_metric(
        client,
        admin,
        "d-two-targets",
        "parks",
        name="Two targets",
        targets=[
            {"effective_from": "2020-01-01", "value": 0.95},
            {"effective_from": "2000-01-01", "value": 0.8},
            {"effective_from": future, "value": 0.99},
        ],
    )
    ratio = client.get("/v1/metrics/a-ratio").json()
    assert set(ratio) == METRIC_FIELDS
    assert ratio["slug"] == "a-ratio" and ratio["department"] == "parks"
    assert ratio["name"] == "Potholes on time" and ratio["unit"] == "share"
    assert ratio["description"] == "Share of POTHOLES filled within two days"
    assert ratio["direction"] == "higher_is_better" and ratio["aggregation"] == "pooled_ratio"
    assert ratio["reference"] == "target" and ratio["target"] == 0.9
    assert ratio["targets"] == [{"effective_from": "2000-01-01", "value": 0.9}]
    assert ratio["baseline_years"] == 10 and ratio["in_cityscore"] is True
    assert ratio["metric_logic"] == "sum(numerator_value)/sum(denominator_value)/target"
    assert ratio["source_url"] == "https://example.org/potholes"
    instant(ratio["updated_at"])

    median = client.get("/v1/metrics/b-median").json()
    assert median["metric_logic"] == "target / median"
    assert median["target"] == 6.0 and median["in_cityscore"] is False
    assert median["unit"] is None and median["source_url"] is None

    base = client.get("/v1/metrics/c-base").json()
    assert base["targets"] == [] and base["target"] is None
    assert base["reference"] == "baseline" and base["baseline_years"] == 3
    assert base["metric_logic"] == "historical_average / current_average"

    two = client.get("/v1/metrics/d-two-targets").json()
    assert two["target"] == 0.95
    assert two["targets"] == [
        {"effective_from": "2000-01-01", "value": 0.8},
        {"effective_from": "2020-01-01", "value": 0.95},
        {"effective_from": future, "value": 0.99},
    ]
    # the list carries the same documents
    listed = {m["slug"]: m for m in client.get("/v1/metrics").json()["data"]}
    assert listed["d-two-targets"] == two and listed["c-base"] == base
    assert client.get("/v1/metrics/nope").status_code == 404


# --- one metric's values by period ---------------------------------------------------------

RATIO_ROWS = [
    ("2026-01-01", 1.0, 1.0),  # Thursday
    ("2026-01-02", 1.0, 9.0),
    ("2026-01-05", 3.0, 4.0),  # Monday
    ("2026-01-20", 5.0, 50.0),
    ("2026-02-10", 9.0, 10.0),
    ("2026-04-15", 2.0, 8.0),
    ("2027-01-04", 7.0, 7.0),
]


def _ratio_metric(client: TestClient, session: Session, admin: dict[str, str]) -> None:
    put_department(client, admin, "parks")
    put_metric(client, admin, "ratio", "parks")
    insert_values(
        session,
        "ratio",
        [{"date": d, "numerator": n, "denominator": q} for d, n, q in RATIO_ROWS],
    )


def _pooled(start: str, end: str, first: str | None = None, last: str | None = None) -> dict:
    """The expected pooled row over the data inside [first or start, last or end]."""
    lo, hi = first or start, last or end
    inside = [(n, q) for d, n, q in RATIO_ROWS if lo <= d <= hi]
    num = sum(n for n, _ in inside)
    den = sum(q for _, q in inside)
    return {
        "metric": "ratio",
        "start": start,
        "end": end,
        "value": num / den,
        "numerator": num,
        "denominator": den,
        "days": len(inside),
    }


def test_metric_values_by_day(client: TestClient, session: Session, admin: dict) -> None:
    _ratio_metric(client, session, admin)
    body = client.get("/v1/metrics/ratio/values").json()
    assert body["next"] is None
    assert body["data"] == [
        {
            "metric": "ratio",
            "start": d,
            "end": d,
            "value": n / q,
            "numerator": n,
            "denominator": q,
            "days": 1,
        }
        for d, n, q in RATIO_ROWS
    ]
    assert client.get("/v1/metrics/ratio/values?interval=day").json() == body
    clipped = client.get("/v1/metrics/ratio/values?start=2026-01-02&end=2026-01-20").json()
    assert [r["start"] for r in clipped["data"]] == ["2026-01-02", "2026-01-05", "2026-01-20"]
    assert client.get("/v1/metrics/nope/values").status_code == 404


def test_metric_values_pooled_by_period(client: TestClient, session: Session, admin: dict) -> None:
    _ratio_metric(client, session, admin)

    def get(query: str) -> list[dict[str, Any]]:
        r = client.get(f"/v1/metrics/ratio/values?{query}")
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    weeks = get("interval=week")
    assert weeks == [
        _pooled("2025-12-29", "2026-01-04"),
        _pooled("2026-01-05", "2026-01-11"),
        _pooled("2026-01-19", "2026-01-25"),
        _pooled("2026-02-09", "2026-02-15"),
        _pooled("2026-04-13", "2026-04-19"),
        _pooled("2027-01-04", "2027-01-10"),
    ]
    assert weeks[0]["value"] == 0.2  # 2 / 10, not the mean of 1 and 1/9

    months = get("interval=month")
    assert months == [
        _pooled("2026-01-01", "2026-01-31"),
        _pooled("2026-02-01", "2026-02-28"),
        _pooled("2026-04-01", "2026-04-30"),  # March has no data: omitted
        _pooled("2027-01-01", "2027-01-31"),
    ]
    january = months[0]
    assert january["value"] == 10 / 64 and january["days"] == 4
    mean_of_ratios = statistics.mean(n / q for d, n, q in RATIO_ROWS if d < "2026-02")
    assert january["value"] != pytest.approx(mean_of_ratios)

    assert get("interval=quarter") == [
        _pooled("2026-01-01", "2026-03-31"),
        _pooled("2026-04-01", "2026-06-30"),
        _pooled("2027-01-01", "2027-03-31"),
    ]
    assert get("interval=year") == [
        _pooled("2026-01-01", "2026-12-31"),
        _pooled("2027-01-01", "2027-12-31"),
    ]

    # clipped to start/end: the first period starts at start, the last ends at end
    assert get("interval=month&start=2026-01-02&end=2026-02-20") == [
        _pooled("2026-01-02", "2026-01-31"),
        _pooled("2026-02-01", "2026-02-20"),
    ]
    assert get("interval=week&start=2026-01-02&end=2026-01-21") == [
        _pooled("2026-01-02", "2026-01-04"),
        _pooled("2026-01-05", "2026-01-11"),
        _pooled("2026-01-19", "2026-01-21"),
    ]
    assert get("interval=year&start=2026-01-02&end=2026-12-31") == [
        _pooled("2026-01-02", "2026-12-31")
    ]
    assert get("interval=quarter&start=2026-05-01&end=2026-12-31") == []


def test_metric_values_median_by_month(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "police")
    put_metric(
        client,
        admin,
        "response",
        "police",
        aggregation="median",
        direction="lower_is_better",
        targets=[{"effective_from": "2000-01-01", "value": 6.0}],
    )
    march = [1.0, 2.0, 10.0, 4.0]
    may = [7.0, 3.0, 5.0]
    insert_values(
        session,
        "response",
        [{"date": f"2026-03-0{i + 1}", "value": v} for i, v in enumerate(march)]
        + [{"date": f"2026-05-1{i}", "value": v} for i, v in enumerate(may)],
    )
    data = client.get("/v1/metrics/response/values?interval=month").json()["data"]
    assert data == [
        {
            "metric": "response",
            "start": "2026-03-01",
            "end": "2026-03-31",
            "value": 3.0,
            "numerator": None,
            "denominator": None,
            "days": 4,
        },
        {
            "metric": "response",
            "start": "2026-05-01",
            "end": "2026-05-31",
            "value": 5.0,
            "numerator": None,
            "denominator": None,
            "days": 3,
        },
    ]
    assert data[0]["value"] != statistics.mean(march)
    # clipping changes the median to the days inside
    data = client.get("/v1/metrics/response/values?interval=month&start=2026-03-03").json()["data"]
    assert (data[0]["start"], data[0]["value"], data[0]["days"]) == ("2026-03-03", 7.0, 2)


# --- bulk values ---------------------------------------------------------------------------

T0 = dt.datetime(2026, 1, 1, 0, 0, 0)
T1 = dt.datetime(2026, 1, 2, 0, 0, 0)
T2 = dt.datetime(2026, 1, 3, 0, 0, 0)


def _bulk(client: TestClient, session: Session, admin: dict[str, str]) -> None:
    put_department(client, admin, "parks")
    put_department(client, admin, "police")
    put_metric(client, admin, "m1", "parks")
    put_metric(
        client,
        admin,
        "m2",
        "police",
        aggregation="sum",
        direction="lower_is_better",
        targets=[{"effective_from": "2000-01-01", "value": 10.0}],
    )
    insert_values(
        session,
        "m1",
        [
            {"date": "2026-01-01", "numerator": 1.0, "denominator": 2.0, "updated_at": T0},
            {"date": "2026-01-02", "numerator": 3.0, "denominator": 4.0, "updated_at": T1},
            {"date": "2026-01-03", "numerator": 5.0, "denominator": 8.0, "updated_at": T0},
        ],
    )
    insert_values(
        session,
        "m2",
        [
            {"date": "2026-01-01", "value": 7.0, "updated_at": T0},
            {"date": "2026-01-02", "value": -2.5, "updated_at": T1},
        ],
    )


def _keys(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["metric"], r["date"]) for r in body["data"]]


def test_bulk_values_filters(client: TestClient, session: Session, admin: dict) -> None:
    _bulk(client, session, admin)
    body = client.get("/v1/values").json()
    assert body["next"] is None
    assert _keys(body) == [
        ("m1", "2026-01-01"),
        ("m1", "2026-01-02"),
        ("m1", "2026-01-03"),
        ("m2", "2026-01-01"),
        ("m2", "2026-01-02"),
    ]
    first = body["data"][0]
    assert set(first) == {
        "metric",
        "department",
        "date",
        "value",
        "numerator",
        "denominator",
        "deleted",
        "updated_at",
    }
    assert first["value"] == 0.5 and first["numerator"] == 1.0 and first["denominator"] == 2.0
    assert first["deleted"] is False and instant(first["updated_at"]) == T0
    assert [r["department"] for r in body["data"]] == ["parks"] * 3 + ["police"] * 2
    assert body["data"][4]["value"] == -2.5 and body["data"][4]["numerator"] is None

    assert _keys(client.get("/v1/values?metric=m2").json()) == [
        ("m2", "2026-01-01"),
        ("m2", "2026-01-02"),
    ]
    assert _keys(client.get("/v1/values?department=parks").json()) == [
        ("m1", "2026-01-01"),
        ("m1", "2026-01-02"),
        ("m1", "2026-01-03"),
    ]
    assert _keys(client.get("/v1/values?start=2026-01-02&end=2026-01-02").json()) == [
        ("m1", "2026-01-02"),
        ("m2", "2026-01-02"),
    ]
    assert _keys(client.get("/v1/values?start=2026-01-03").json()) == [("m1", "2026-01-03")]
    assert _keys(client.get("/v1/values?metric=m1&department=police").json()) == []
    assert client.get("/v1/values?metric=nope").json() == {"data": [], "next": None}
    assert client.get("/v1/values?department=nope").json() == {"data": [], "next": None}

    # a deleted row is left out unless updated_since asks for changes
    tombstone(session, "m1", dt.date(2026, 1, 2), T2)
    assert ("m1", "2026-01-02") not in _keys(client.get("/v1/values").json())
    assert ("m1", "2026-01-02") not in _keys(client.get("/v1/values?metric=m1").json())
    csv_rows = parse_csv(client.get("/v1/values.csv").content)
    assert csv_rows[0][:3] == ["metric", "department", "date"]
    assert [[r[0], r[2]] for r in csv_rows[1:]] == [
        list(k) for k in _keys(client.get("/v1/values").json())
    ]
    assert {r[1] for r in csv_rows[1:]} == {"parks", "police"}


def test_bulk_values_updated_since(client: TestClient, session: Session, admin: dict) -> None:
    _bulk(client, session, admin)

    def since(value: str, **extra: str) -> dict[str, Any]:
        r = client.get("/v1/values", params={"updated_since": value, **extra})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    # exclusive: rows updated exactly at T0 are not "after" T0
    assert _keys(since("2026-01-01T00:00:00Z")) == [("m1", "2026-01-02"), ("m2", "2026-01-02")]
    assert _keys(since("2026-01-01T01:00:00+01:00")) == [
        ("m1", "2026-01-02"),
        ("m2", "2026-01-02"),
    ]
    assert len(since("2025-12-31T23:59:59.999999Z")["data"]) == 5
    assert since("2026-01-02T00:00:00Z")["data"] == []

    tombstone(session, "m1", dt.date(2026, 1, 3), T2)
    changed = since("2026-01-02T00:00:00Z")
    assert changed["data"] == [
        {
            "metric": "m1",
            "department": "parks",
            "date": "2026-01-03",
            "value": None,
            "numerator": None,
            "denominator": None,
            "deleted": True,
            "updated_at": "2026-01-03T00:00:00Z",
        }
    ]
    assert _keys(since("2026-01-02T00:00:00Z", metric="m1")) == [("m1", "2026-01-03")]
    assert since("2026-01-02T00:00:00Z", metric="m2")["data"] == []
    # the CSV of the same query carries the tombstone too
    r = client.get("/v1/values.csv", params={"updated_since": "2026-01-02T00:00:00Z"})
    assert r.status_code == 200
    assert parse_csv(r.content) == [
        [
            "metric",
            "department",
            "date",
            "value",
            "numerator",
            "denominator",
            "deleted",
            "updated_at",
        ],
        ["m1", "parks", "2026-01-03", "", "", "", "true", "2026-01-03T00:00:00Z"],
    ]
    # the tombstone is still absent without updated_since
    assert ("m1", "2026-01-03") not in _keys(client.get("/v1/values").json())

    # sub-second precision, on the JSON and the CSV (PostgreSQL's COPY) paths alike
    tombstone(session, "m2", dt.date(2026, 1, 1), dt.datetime(2026, 1, 4, 0, 0, 0, 500000))
    for raw, expected in (
        ("2026-01-04T00:00:00.4Z", [("m2", "2026-01-01")]),
        ("2026-01-04T00:00:00.499999Z", [("m2", "2026-01-01")]),
        ("2026-01-04T00:00:00.5Z", []),
    ):
        assert _keys(since(raw)) == expected, raw
        r = client.get("/v1/values.csv", params={"updated_since": raw})
        assert [(row[0], row[2]) for row in parse_csv(r.content)[1:]] == expected, raw

    for bad in ("2026-01-01T00:00:00", "2026-01-01", "yesterday", "2026-13-01T00:00:00Z"):
        r = client.get("/v1/values", params={"updated_since": bad})
        assert r.status_code == 400, bad
        assert r.headers["content-type"] == "application/problem+json"


# --- revisions -----------------------------------------------------------------------------


def test_value_revisions(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "parks")
    put_metric(client, admin, "m1", "parks")
    day = dt.date(2026, 1, 5)
    insert_values(session, "m1", [{"date": day, "numerator": 3.0, "denominator": 4.0}])
    add_revision(
        session,
        "m1",
        day,
        dt.datetime(2026, 1, 6, 12, 0, 0),
        value=0.5,
        numerator=1.0,
        denominator=2.0,
    )
    r = client.get("/v1/metrics/m1/values/2026-01-05/revisions")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 2
    old, current = data
    assert old["metric"] == "m1" and old["date"] == "2026-01-05"
    assert (old["value"], old["numerator"], old["denominator"]) == (0.5, 1.0, 2.0)
    assert old["current"] is False and old["deleted"] is False
    assert old["recorded_at"] == "2026-01-06T12:00:00Z"
    assert (current["value"], current["numerator"], current["denominator"]) == (0.75, 3.0, 4.0)
    assert current["current"] is True
    assert instant(current["recorded_at"]) > instant(old["recorded_at"])

    assert client.get("/v1/metrics/m1/values/2026-01-06/revisions").status_code == 404
    assert client.get("/v1/metrics/nope/values/2026-01-05/revisions").status_code == 404
    assert client.get("/v1/metrics/m1/values/2026-02-30/revisions").status_code == 400
    assert metric_id(session, "m1") > 0


# --- analyses ------------------------------------------------------------------------------

UNSAFE = (
    "# Findings\n\nHello <script>alert(1)</script> world.\n\n"
    '[click me](javascript:alert(1)) and <a href="javascript:alert(2)">raw</a>\n\n'
    '<img src=x onerror="alert(3)">\n'
)


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(attrs)))


def _tags(html: str) -> list[tuple[str, tuple[tuple[str, str | None], ...]]]:
    parser = _TagCollector()
    parser.feed(html)
    return parser.tags


def _analysis(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "EMS Ambulance Allocation",
        "summary": "Where ambulances wait",
        "body_markdown": "Some **bold** text about response times.",
        "published_on": "2026-03-01",
        "departments": ["ems"],
        "tags": ["Operations", "health"],
        "metrics": [],
    }
    body.update(overrides)
    return body


def test_analyses_put_get_and_sanitise(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "ems")
    r = client.put("/v1/analyses/ems-allocation", json=_analysis(), headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["slug"] == "ems-allocation"
    assert "<strong>bold</strong>" in created["body_html"]
    r = client.put(
        "/v1/analyses/ems-allocation", json=_analysis(body_markdown=UNSAFE), headers=admin
    )
    assert r.status_code == 200, r.text

    doc = client.get("/v1/analyses/ems-allocation").json()
    assert set(doc) == {
        "slug",
        "title",
        "summary",
        "body_markdown",
        "body_html",
        "published_on",
        "departments",
        "tags",
        "metrics",
        "updated_at",
    }
    assert doc["body_markdown"] == UNSAFE
    tags = _tags(doc["body_html"])
    assert ("h1", ()) in tags
    assert all(tag not in ("script", "img", "iframe") for tag, _ in tags)
    for _tag, attrs in tags:
        for name, value in attrs:
            assert not name.startswith("on")
            assert "javascript:" not in (value or "").lower().replace(" ", "")
    assert "<script" not in doc["body_html"].lower()
    assert doc["departments"] == ["ems"] and doc["published_on"] == "2026-03-01"
    assert client.get("/v1/analyses/nope").status_code == 404


def test_analyses_filters(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "ems")
    put_department(client, admin, "311")
    for slug, body in (
        ("ems-allocation", _analysis()),
        (
            "call-center",
            _analysis(
                title="311 Call Center Improvements",
                summary="Faster answers",
                body_markdown="Calls answered within 30 seconds.",
                published_on="2026-04-01",
                departments=["311"],
                tags=["customer-service"],
            ),
        ),
        (
            "overview",
            _analysis(
                title="Data Analytics overview",
                summary=None,
                body_markdown="What the team does.",
                published_on="2026-04-01",
                departments=["ems", "311"],
                tags=[],
            ),
        ),
    ):
        r = client.put(f"/v1/analyses/{slug}", json=body, headers=admin)
        assert r.status_code == 201, r.text

    def listed(query: str = "") -> list[str]:
        r = client.get(f"/v1/analyses{query}")
        assert r.status_code == 200, r.text
        return slugs(r.json())

    # newest first, slug breaks ties
    assert listed() == ["call-center", "overview", "ems-allocation"]
    assert listed("?department=ems") == ["overview", "ems-allocation"]
    assert listed("?department=311") == ["call-center", "overview"]
    assert listed("?tag=operations") == ["ems-allocation"]
    assert listed("?tag=customer-service") == ["call-center"]
    assert listed("?q=ANSWERED") == ["call-center"]
    assert listed("?q=ambulances") == ["ems-allocation"]
    assert listed("?q=overview") == ["overview"]
    assert listed("?department=nope") == []
    assert listed("?tag=nope") == []
    assert listed("?q=zzz") == []
    assert listed("?department=ems&tag=health") == ["ems-allocation"]
    page = client.get("/v1/analyses?limit=2").json()
    assert slugs(page) == ["call-center", "overview"] and page["next"]
    assert slugs(client.get(page["next"]).json()) == ["ems-allocation"]


def test_analyses_writes_need_an_admin_key(
    client: TestClient, session: Session, admin: dict
) -> None:
    put_department(client, admin, "ems")
    dept_key = department_headers(session, "ems")
    body = _analysis()
    r = client.put("/v1/analyses/a1", json=body)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    r = client.put("/v1/analyses/a1", json=body, headers={"Authorization": "Bearer cs_wrong"})
    assert r.status_code == 401
    r = client.put("/v1/analyses/a1", json=body, headers=dept_key)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/analyses/a1").status_code == 404

    r = client.put("/v1/analyses/a1", json=_analysis(departments=["nope"]), headers=admin)
    assert r.status_code == 422
    problem = r.json()
    assert problem["status"] == 422 and problem["errors"]
    assert {e["field"] for e in problem["errors"]} == {"departments.0"}
    r = client.put("/v1/analyses/a1", json=_analysis(published_on="2026-02-30"), headers=admin)
    assert r.status_code == 422 and r.json()["errors"]

    assert client.put("/v1/analyses/a1", json=body, headers=admin).status_code == 201
    assert client.delete("/v1/analyses/a1").status_code == 401
    assert client.delete("/v1/analyses/a1", headers=dept_key).status_code == 403
    assert client.get("/v1/analyses/a1").status_code == 200
    r = client.delete("/v1/analyses/a1", headers=admin)
    assert r.status_code == 204 and r.content == b""
    assert client.get("/v1/analyses/a1").status_code == 404
    assert client.delete("/v1/analyses/a1", headers=admin).status_code == 404
    assert slugs(client.get("/v1/analyses").json()) == []
