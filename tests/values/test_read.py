"""One metric's values by period, bulk values (JSON, CSV, updated_since) and value revisions.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import (
    VALUE_HEADER,
    add_revision,
    insert_values,
    instant,
    metric_id,
    parse_csv,
    put_department,
    put_metric,
    tombstone,
)

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
    assert set(first) == set(VALUE_HEADER)
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
        VALUE_HEADER,
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


def test_bulk_values_text_with_many_instants_and_a_moved_metric(
    client: TestClient, session: Session, admin: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's bulk rows are formatted from per-metric slugs and per-instant text kept for a
    bounded number of instants: past the bound the text is still every row's own, and a
    metric moved to another department reads under its new one."""
    from api.values import service

    monkeypatch.setattr(service._SqliteText, "MAX_INSTANTS", 2)
    put_department(client, admin, "parks")
    put_department(client, admin, "police")
    put_metric(client, admin, "m1", "parks", aggregation="sum")
    stamps = [dt.datetime(2026, 1, 2, 3, 4, s, 10_000 * s) for s in range(6)]
    rows = [
        {"date": f"2026-01-0{i + 1}", "value": 0.5 + i, "updated_at": at}
        for i, at in enumerate(stamps)
    ]
    insert_values(session, "m1", rows)

    def iso(at: dt.datetime, trim: bool) -> str:
        fraction = f".{at.microsecond:06d}" if at.microsecond else ""
        return at.isoformat("T", "seconds") + (fraction.rstrip("0") if trim else fraction) + "Z"

    def expect(department: str) -> None:
        csv_rows = parse_csv(client.get("/v1/values.csv").content)[1:]
        assert csv_rows == [
            ["m1", department, r["date"], repr(r["value"]), "", "", "false", iso(at, True)]
            for r, at in zip(rows, stamps, strict=True)
        ]
        data = client.get("/v1/values").json()["data"]
        assert [(d["department"], d["updated_at"]) for d in data] == [
            (department, iso(at, False)) for at in stamps
        ]

    expect("parks")
    put_metric(client, admin, "m1", "police", aggregation="sum")
    expect("police")


def test_a_json_page_of_bulk_values_formats_no_csv_cells() -> None:
    """The CSV's per-metric prefixes are made only for the CSV: a JSON page of a large
    catalogue would otherwise pay for every metric's prefix, whatever rows it holds."""
    from api.values import service

    names = {m: (f"m{m}", "parks") for m in range(1, 1001)}
    text = service._SqliteText(names)
    row = (7, "2026-01-01", 1.5, None, None, 0, "2026-01-02 03:04:05.000000")
    assert text.json_rows([row]) == [
        ("m7", "parks", "2026-01-01", 1.5, None, None, False, "2026-01-02T03:04:05Z")
    ]
    assert "prefixes" not in vars(text)
    assert text.csv_text([row]) == "m7,parks,2026-01-01,1.5,,,false,2026-01-02T03:04:05Z\n"


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
