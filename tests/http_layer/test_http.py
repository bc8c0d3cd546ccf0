"""The shared HTTP layer on real endpoints: CSV bytes, formula neutralisation, limits and
cursors, paging against the CSV, conditional requests, CORS and error handling. Every test runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.main import create_app
from api.settings import Settings
from db.session import session_factory
from tests._data import (
    VALUE_HEADER,
    admin_headers,
    collect_pages,
    csv_instant,
    days,
    department_headers,
    insert_values,
    instant,
    parse_csv,
    put_department,
    put_metric,
)

CSV_TYPE = "text/csv; charset=utf-8"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "message"}


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status and body["message"] == body["detail"]
    assert isinstance(body["type"], str) and body["title"]
    return body


def json_value_row(row: dict[str, Any]) -> tuple[Any, ...]:
    """A JSON bulk-value row's fields, to compare with ``csv_value_row``."""
    numbers = (row["value"], row["numerator"], row["denominator"])
    return (
        row["metric"],
        row["department"],
        row["date"],
        *numbers,
        row["deleted"],
        instant(row["updated_at"]),
    )


def csv_value_row(cells: list[str]) -> tuple[Any, ...]:
    """A CSV bulk-value row read back: each number must parse to the JSON's double exactly."""
    metric, department, date, *numbers, deleted, updated_at = cells
    assert not any(c.endswith(".0") for c in numbers), cells  # whole numbers without ".0"
    parsed = (float(c) if c else None for c in numbers)
    flag = {"true": True, "false": False}[deleted]
    # The instant as the JSON writes one: "T" between date and time, "Z", no trailing zeros.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", updated_at), cells
    return (metric, department, date, *parsed, flag, instant(updated_at))


def assert_csv_matches_json(csv_rows: list[list[str]], json_rows: list[dict[str, Any]]) -> None:
    assert [csv_value_row(c) for c in csv_rows] == [json_value_row(r) for r in json_rows]


# --- CSV -----------------------------------------------------------------------------------

NASTY = 'He said "hi", then\nleft'


def test_csv_bytes_exactly(client: TestClient, admin: dict[str, str]) -> None:
    put_department(
        client,
        admin,
        "cafe",
        "Café Zoë — Ñandú 北京",
        cabinet="Ops, North",
        description=NASTY,
        url=None,
    )
    put_department(client, admin, "plain", "Plain", cabinet=None, description="x")
    docs = {d["slug"]: d for d in client.get("/v1/departments").json()["data"]}

    r = client.get("/v1/departments.csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == CSV_TYPE
    assert r.headers["content-disposition"] == 'attachment; filename="departments.csv"'
    cafe_at = csv_instant(instant(docs["cafe"]["updated_at"]))
    plain_at = csv_instant(instant(docs["plain"]["updated_at"]))
    expected = (
        "slug,name,cabinet,description,url,updated_at\r\n"
        f'cafe,Café Zoë — Ñandú 北京,"Ops, North","He said ""hi"", then\nleft",,{cafe_at}\r\n'
        f"plain,Plain,,x,,{plain_at}\r\n"
    ).encode()
    assert r.content == expected
    assert not r.content.startswith(b"\xef\xbb\xbf")
    assert parse_csv(r.content)[1][3] == NASTY

    bom = client.get("/v1/departments.csv?bom=true")
    assert bom.status_code == 200
    assert bom.content == b"\xef\xbb\xbf" + expected
    assert client.get("/v1/departments.csv?bom=false").content == expected

    accept = client.get("/v1/departments", headers={"Accept": "text/csv"})
    assert accept.status_code == 200
    assert accept.headers["content-type"] == CSV_TYPE
    assert accept.content == expected
    assert accept.headers["content-disposition"] == r.headers["content-disposition"]
    # JSON stays the default, and wins when preferred
    assert client.get("/v1/departments").headers["content-type"] == "application/json"
    r = client.get("/v1/departments", headers={"Accept": "application/json, text/csv;q=0.5"})
    assert r.headers["content-type"] == "application/json"


def test_values_csv_bytes_exactly(client: TestClient, session: Session, admin: dict) -> None:
    """The bulk CSV (PostgreSQL's COPY fast path) formats exactly like the Python writer."""
    put_department(client, admin, "parks")
    put_metric(client, admin, "m1", "parks")
    put_metric(client, admin, "m2", "parks", aggregation="sum")
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678900)
    at0 = dt.datetime(2026, 1, 2, 3, 4, 5)
    insert_values(
        session,
        "m1",
        [
            {"date": "2026-01-01", "numerator": 741.0, "denominator": 788.0, "updated_at": at},
            {"date": "2026-01-02", "numerator": 1.0, "denominator": 3.0, "updated_at": at0},
        ],
    )
    insert_values(
        session,
        "m2",
        [
            {"date": "2026-01-01", "value": -2.5, "updated_at": at},
            {"date": "2026-01-02", "value": 0.1, "updated_at": at},
            {"date": "2026-01-03", "value": 1e-05, "updated_at": at},
            {"date": "2026-01-04", "value": 12345678.0, "updated_at": at},
            {"date": "2026-01-05", "value": 1e22, "updated_at": at},
            {"date": "2026-01-06", "value": 0.0, "updated_at": at},
            {"date": "2026-01-07", "value": 123.456, "updated_at": at},
        ],
    )
    r = client.get("/v1/values.csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == CSV_TYPE
    assert r.headers["content-disposition"] == 'attachment; filename="values.csv"'
    expected = (
        b"metric,department,date,value,numerator,denominator,deleted,updated_at\r\n"
        # 741/788 and 1/3 in their shortest round-trip form (17 and 16 significant digits)
        b"m1,parks,2026-01-01,0.9403553299492385,741,788,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m1,parks,2026-01-02,0.3333333333333333,1,3,false,2026-01-02T03:04:05Z\r\n"
        b"m2,parks,2026-01-01,-2.5,,,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m2,parks,2026-01-02,0.1,,,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m2,parks,2026-01-03,1e-05,,,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m2,parks,2026-01-04,12345678,,,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m2,parks,2026-01-05,1e+22,,,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m2,parks,2026-01-06,0,,,false,2026-01-02T03:04:05.6789Z\r\n"
        b"m2,parks,2026-01-07,123.456,,,false,2026-01-02T03:04:05.6789Z\r\n"
    )
    assert r.content == expected
    assert client.get("/v1/values", headers={"Accept": "text/csv"}).content == expected
    assert client.get("/v1/values.csv?bom=1").content == b"\xef\xbb\xbf" + expected
    # the JSON of the same rows reads back as the same numbers
    json_rows = client.get("/v1/values").json()["data"]
    assert_csv_matches_json(parse_csv(expected)[1:], json_rows)


def test_values_csv_numbers_between_1e15_and_1e16(
    client: TestClient, session: Session, admin: dict
) -> None:
    """Both stores write a double the same way (Python's shortest repr, no trailing .0)."""
    put_department(client, admin, "parks")
    put_metric(client, admin, "big", "parks", aggregation="sum")
    at = dt.datetime(2026, 1, 2, 3, 4, 5)
    insert_values(
        session,
        "big",
        [
            {"date": "2026-01-01", "value": 1e15, "updated_at": at},
            {"date": "2026-01-02", "value": 2.5e15, "updated_at": at},
        ],
    )
    rows = parse_csv(client.get("/v1/values.csv").content)
    assert [r[3] for r in rows[1:]] == ["1000000000000000", "2500000000000000"]


def test_formula_neutralisation(client: TestClient, session: Session, admin: dict) -> None:
    names = {
        "d1": "=SUM(A1)",
        "d2": "+1",
        "d3": "-2",
        "d4": "@x",
        "d5": "\tTab",
        "d6": "\rReturn",
        "d7": "Safe = fine",
    }
    for slug, name in names.items():
        put_department(client, admin, slug, name, cabinet="=cmd|' /C calc'!A0", description="-x")
    # JSON is untouched
    listed = {d["slug"]: d for d in client.get("/v1/departments").json()["data"]}
    assert {slug: d["name"] for slug, d in listed.items()} == names

    rows = parse_csv(client.get("/v1/departments.csv").content)
    assert rows[0] == ["slug", "name", "cabinet", "description", "url", "updated_at"]
    got = {row[0]: row for row in rows[1:]}
    for slug, name in names.items():
        want = name if slug == "d7" else "'" + name
        assert got[slug][1] == want, slug
        assert got[slug][2] == "'=cmd|' /C calc'!A0"
        assert got[slug][3] == "'-x"

    # numbers are not text: a negative value stays a number
    put_metric(client, admin, "m", "d1", aggregation="sum")
    insert_values(session, "m", [{"date": "2026-01-01", "value": -2.0}])
    rows = parse_csv(client.get("/v1/values.csv").content)
    assert rows[1][3] == "-2"
    put_metric(client, admin, "m", "d1", aggregation="sum", name="=HYPERLINK(1)")
    rows = parse_csv(client.get("/v1/metrics.csv").content)
    assert rows[1][rows[0].index("name")] == "'=HYPERLINK(1)"


# --- limits and cursors --------------------------------------------------------------------


def _many_values(client: TestClient, session: Session, admin: dict, n: int = 1000) -> None:
    """3 metrics in 2 departments x ``n`` days of values."""
    put_department(client, admin, "d1")
    put_department(client, admin, "d2")
    for k, (slug, dept) in enumerate((("a", "d1"), ("b", "d2"), ("c", "d2"))):
        put_metric(client, admin, slug, dept, name=f"Metric {slug}")
        insert_values(
            session,
            slug,
            [
                {"date": day, "numerator": float((i * 7 + k) % 97), "denominator": 97.0 + k}
                for i, day in enumerate(days("2023-01-01", n))
            ],
        )


def test_limits(client: TestClient, session: Session, admin: dict) -> None:
    _many_values(client, session, admin, n=400)  # 1200 rows
    body = client.get("/v1/values").json()
    assert len(body["data"]) == 1000 and body["next"]
    assert len(client.get("/v1/values?limit=10000").json()["data"]) == 1200
    assert len(client.get("/v1/values?limit=1").json()["data"]) == 1
    body = client.get("/v1/values?limit=1200").json()
    assert len(body["data"]) == 1200 and body["next"] is None
    for bad in ("10001", "0", "-1", "abc", "1.5", "", "1e3", "99999999999999999999999"):
        body = assert_problem(client.get(f"/v1/values?limit={bad}"), 400)
        assert "limit" in body["detail"]
        assert_problem(client.get(f"/v1/departments?limit={bad}"), 400)
    # CSV ignores paging and is never truncated
    assert len(parse_csv(client.get("/v1/values.csv?limit=5").content)) == 1201


def test_cursors_are_validated(client: TestClient, session: Session, admin: dict) -> None:
    _many_values(client, session, admin, n=5)
    nxt = client.get("/v1/values?metric=a&limit=2").json()["next"]
    cursor = nxt.split("cursor=")[1]
    assert client.get(f"/v1/values?metric=a&limit=2&cursor={cursor}").status_code == 200
    # the same cursor on another query
    assert_problem(client.get(f"/v1/values?metric=b&limit=2&cursor={cursor}"), 400)
    assert_problem(client.get(f"/v1/values?limit=2&cursor={cursor}"), 400)
    assert_problem(client.get(f"/v1/values?metric=a&start=2023-01-02&cursor={cursor}"), 400)
    assert_problem(client.get(f"/v1/departments?cursor={cursor}"), 400)
    assert_problem(client.get(f"/v1/metrics/a/values?cursor={cursor}"), 400)
    # the limit may change between pages
    assert client.get(f"/v1/values?metric=a&limit=3&cursor={cursor}").status_code == 200

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    garbage = [
        "abc",
        "!!!",
        "%25%25",
        "",
        b64(b"not json"),
        b64(b"[]"),
        b64(b"{}"),
        b64(b'{"k": "x", "q": "y"}'),
        b64(orjson.dumps({"k": [None, None], "q": "0"})),
        cursor[:-3],
        cursor + "AAAA",
    ]
    for raw in garbage:
        for path in ("/v1/values?metric=a", "/v1/departments?x=1", "/v1/metrics/a/values?x=1"):
            assert_problem(client.get(f"{path}&cursor={raw}"), 400)


def test_paging_equals_the_csv(client: TestClient, session: Session, admin: dict) -> None:
    _many_values(client, session, admin, n=1000)  # 3000 rows

    rows, pages = collect_pages(client, "/v1/values?limit=250")
    assert pages == 12
    keys = [(r["metric"], r["date"]) for r in rows]
    assert len(keys) == 3000 == len(set(keys))
    assert keys == sorted(keys)
    csv_rows = parse_csv(client.get("/v1/values.csv").content)
    assert csv_rows[0] == VALUE_HEADER
    assert_csv_matches_json(csv_rows[1:], rows)

    # a filtered query, with an odd page size
    rows, _ = collect_pages(client, "/v1/values?department=d2&start=2023-03-01&limit=333")
    csv_rows = parse_csv(client.get("/v1/values.csv?department=d2&start=2023-03-01").content)
    assert len(rows) == 2 * (1000 - 59)
    assert_csv_matches_json(csv_rows[1:], rows)

    # one metric's periods and the catalogue page the same way
    rows, _ = collect_pages(client, "/v1/metrics/b/values?interval=week&limit=7")
    csv_rows = parse_csv(client.get("/v1/metrics/b/values.csv?interval=week").content)
    assert csv_rows[0] == ["metric", "start", "end", "value", "numerator", "denominator", "days"]
    assert [[r["metric"], r["start"], r["end"]] for r in rows] == [r[:3] for r in csv_rows[1:]]
    assert {r[0] for r in csv_rows[1:]} == {"b"}
    assert len(rows) == len(csv_rows) - 1 == 144
    rows, _ = collect_pages(client, "/v1/metrics?limit=1")
    assert [r["slug"] for r in rows] == ["a", "b", "c"]
    rows, _ = collect_pages(client, "/v1/departments?limit=1")
    assert [r["slug"] for r in rows] == ["d1", "d2"]


# --- caching -------------------------------------------------------------------------------


ANALYSIS = {
    "title": "T",
    "summary": "S",
    "body_markdown": "B",
    "published_on": "2026-01-01",
    "departments": ["parks"],
    "tags": ["x"],
    "metrics": ["m1"],
}


def _setup_everything(client: TestClient, session: Session, admin: dict) -> list[str]:
    put_department(client, admin, "parks", "Parks")
    put_metric(client, admin, "m1", "parks")
    insert_values(
        session,
        "m1",
        [{"date": day, "numerator": 8.0, "denominator": 10.0} for day in days("2026-01-01", 60)],
    )
    r = client.put("/v1/analyses/a1", json=ANALYSIS, headers=admin)
    assert r.status_code == 201, r.text
    return [
        "/v1/departments",
        "/v1/departments/parks",
        "/v1/metrics",
        "/v1/metrics/m1",
        "/v1/metrics/m1/values",
        "/v1/metrics/m1/values?interval=month",
        "/v1/metrics/m1/values/2026-01-05/revisions",
        "/v1/metrics/m1/scores?start=2026-01-01&end=2026-03-01",
        "/v1/values",
        "/v1/cityscore?as_of=2026-02-15",
        "/v1/cityscore/history?start=2026-01-01&end=2026-03-01",
        "/v1/scorecards?as_of=2026-02-15",
        "/v1/scorecards/parks?as_of=2026-02-15",
        "/v1/analyses",
        "/v1/analyses/a1",
    ]


COLLECTIONS = (
    "/v1/departments",
    "/v1/metrics",
    "/v1/values",
    "/v1/metrics/m1/values",
    "/v1/analyses",
    "/v1/scorecards",
)


def test_every_public_get_is_cacheable(client: TestClient, session: Session, admin: dict) -> None:
    for url in _setup_everything(client, session, admin):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        etag = r.headers.get("etag")
        assert etag and etag.startswith('"') and etag.endswith('"'), url
        assert (
            r.headers["cache-control"]
            == "public, max-age=60, stale-while-revalidate=30, stale-if-error=300"
        ), url
        assert "accept" in r.headers["vary"].lower(), url
        assert r.headers.get("last-modified"), url
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304, url
        assert again.content == b"", url
        assert again.headers["etag"] == etag, url
        assert (
            again.headers["cache-control"]
            == "public, max-age=60, stale-while-revalidate=30, stale-if-error=300"
        )
        ims = client.get(url, headers={"If-Modified-Since": r.headers["last-modified"]})
        assert ims.status_code == 304, url
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        both = {"If-None-Match": f'"other", W/{etag}'}
        assert client.get(url, headers=both).status_code == 304, url
        assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304, url
        # If-None-Match wins over If-Modified-Since
        mixed = {"If-None-Match": '"other"', "If-Modified-Since": r.headers["last-modified"]}
        assert client.get(url, headers=mixed).status_code == 200, url
        old = "Mon, 01 Jan 2001 00:00:00 GMT"
        assert client.get(url, headers={"If-Modified-Since": old}).status_code == 200, url
        garbage = client.get(url, headers={"If-Modified-Since": "garbage"})
        assert garbage.status_code == 200, url

    for path in COLLECTIONS:
        plain = client.get(path)
        dot_csv = client.get(path + ".csv")
        accept = client.get(path, headers={"Accept": "text/csv"})
        assert dot_csv.status_code == accept.status_code == 200, path
        assert dot_csv.headers["etag"] != plain.headers["etag"], path
        assert accept.headers["etag"] != plain.headers["etag"], path
        assert dot_csv.headers["vary"] == plain.headers["vary"]
        r = client.get(path + ".csv", headers={"If-None-Match": dot_csv.headers["etag"]})
        assert r.status_code == 304 and r.content == b"", path
        # a JSON ETag does not validate the CSV
        r = client.get(path + ".csv", headers={"If-None-Match": plain.headers["etag"]})
        assert r.status_code == 200, path
    # another query is another representation
    a = client.get("/v1/values?limit=5").headers["etag"]
    b = client.get("/v1/values?limit=6").headers["etag"]
    assert a != b


def test_etags_change_exactly_when_data_changes(
    client: TestClient, session: Session, admin: dict
) -> None:
    _setup_everything(client, session, admin)
    urls = ["/v1/departments", "/v1/departments/parks", "/v1/departments.csv"]
    before = {u: client.get(u) for u in urls}
    values_etag = client.get("/v1/values").headers["etag"]
    analyses_etag = client.get("/v1/analyses").headers["etag"]

    # an unchanged PUT changes nothing
    put_department(client, admin, "parks", "Parks", expect=200)
    for u in urls:
        r = client.get(u)
        assert r.headers["etag"] == before[u].headers["etag"], u
        assert r.headers["last-modified"] == before[u].headers["last-modified"], u
        assert client.get(u, headers={"If-None-Match": r.headers["etag"]}).status_code == 304

    time.sleep(1.1)  # Last-Modified has one-second resolution
    put_department(client, admin, "parks", "Parks and Recreation", expect=200)
    for u in urls:
        old = before[u]
        r = client.get(u)
        assert r.status_code == 200
        assert r.headers["etag"] != old.headers["etag"], u
        assert r.headers["last-modified"] != old.headers["last-modified"], u
        stale = client.get(u, headers={"If-None-Match": old.headers["etag"]})
        assert stale.status_code == 200, u
        assert stale.content == r.content
        stale = client.get(u, headers={"If-Modified-Since": old.headers["last-modified"]})
        assert stale.status_code == 200, u
        assert client.get(u, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get("/v1/departments/parks").json()["name"] == "Parks and Recreation"
    # data behind other resources did not change
    assert client.get("/v1/analyses").headers["etag"] == analyses_etag

    # unchanged PUTs of a metric and an analysis change nothing either
    etags = {u: client.get(u).headers["etag"] for u in ("/v1/metrics", "/v1/metrics/m1")}
    etags["/v1/analyses"] = analyses_etag
    etags["/v1/analyses/a1"] = client.get("/v1/analyses/a1").headers["etag"]
    put_metric(client, admin, "m1", "parks")
    r = client.put("/v1/analyses/a1", json=ANALYSIS, headers=admin)
    assert r.status_code == 200
    assert {u: client.get(u).headers["etag"] for u in etags} == etags
    # a changed one does
    put_metric(client, admin, "m1", "parks", name="Renamed")
    assert client.get("/v1/metrics/m1").headers["etag"] != etags["/v1/metrics/m1"]
    assert client.get("/v1/metrics").headers["etag"] != etags["/v1/metrics"]
    r = client.put("/v1/analyses/a1", json={**ANALYSIS, "title": "T2"}, headers=admin)
    assert r.status_code == 200
    assert client.get("/v1/analyses/a1").headers["etag"] != etags["/v1/analyses/a1"]

    # new values change the values' ETag
    insert_values(session, "m1", [{"date": "2026-03-15", "numerator": 1.0, "denominator": 2.0}])
    assert client.get("/v1/values").headers["etag"] != values_etag


def test_values_etag_follows_a_metric_moving_department(
    client: TestClient, session: Session, admin: dict
) -> None:
    put_department(client, admin, "parks")
    put_department(client, admin, "police")
    put_metric(client, admin, "m1", "parks")
    insert_values(session, "m1", [{"date": "2026-01-05", "numerator": 1.0, "denominator": 2.0}])
    before = client.get("/v1/values?department=parks")
    assert len(before.json()["data"]) == 1
    put_metric(client, admin, "m1", "police")
    after = client.get("/v1/values?department=parks")
    assert after.json()["data"] == []
    assert after.headers["etag"] != before.headers["etag"]
    r = client.get("/v1/values?department=parks", headers={"If-None-Match": before.headers["etag"]})
    assert r.status_code == 200


def test_accept_media_types_are_case_insensitive(client: TestClient, admin: dict) -> None:
    put_department(client, admin, "parks")
    expected = client.get("/v1/departments.csv").content
    for accept in ("TEXT/CSV", "Text/Csv; charset=utf-8"):
        r = client.get("/v1/departments", headers={"Accept": accept})
        assert r.headers["content-type"] == CSV_TYPE, accept
        assert r.content == expected


class _Clock(Settings):
    """Settings whose 'today' the test moves."""

    def today(self) -> dt.date:
        return CLOCK[0]


CLOCK = [dt.date(2036, 5, 15)]


def test_last_modified_moves_when_today_changes_the_answer(
    connection: Any, session: Session
) -> None:
    # The clock runs ahead of the real one: the writes below happen "before" both days.
    CLOCK[0] = dt.date(2036, 5, 15)
    app = create_app(_Clock(rate_limit_enabled=False), bind=connection)
    with TestClient(app) as c:
        admin = admin_headers(session)
        put_department(c, admin, "parks")
        put_metric(
            c,
            admin,
            "m1",
            "parks",
            targets=[
                {"effective_from": "2000-01-01", "value": 0.8},
                {"effective_from": "2036-05-16", "value": 0.9},
            ],
        )
        first = c.get("/v1/metrics/m1")
        assert first.json()["target"] == 0.8
        CLOCK[0] = dt.date(2036, 5, 16)
        # the ETag moves with the date ...
        r = c.get("/v1/metrics/m1", headers={"If-None-Match": first.headers["etag"]})
        assert r.status_code == 200 and r.json()["target"] == 0.9
        # ... and so must Last-Modified
        r = c.get("/v1/metrics/m1", headers={"If-Modified-Since": first.headers["last-modified"]})
        assert r.status_code == 200
        assert r.headers["last-modified"] != first.headers["last-modified"]


def test_last_modified_on_a_fresh_store(client: TestClient) -> None:
    for url in ("/v1/departments", "/v1/metrics", "/v1/values", "/v1/analyses"):
        r = client.get(url)
        assert r.status_code == 200 and r.headers.get("etag"), url
        assert r.headers.get("last-modified"), url


# --- CORS ----------------------------------------------------------------------------------


def test_cors(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "parks")
    for url in ("/v1/departments", "/v1/departments.csv", "/v1/departments/parks"):
        r = client.get(url, headers={"Origin": "https://civic.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"link", "etag"} <= exposed
    r = client.options(
        "/v1/departments",
        headers={
            "Origin": "https://civic.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "If-None-Match",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    # errors carry CORS headers too, so browsers can read them
    r = client.get("/v1/departments/nope", headers={"Origin": "https://civic.example"})
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == "*"


# --- errors --------------------------------------------------------------------------------


def test_bad_queries_are_400(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "parks")
    put_metric(client, admin, "m1", "parks")
    insert_values(session, "m1", [{"date": "2026-01-05", "numerator": 1.0, "denominator": 2.0}])
    bad = [
        "/v1/values?start=2026-02-30",
        "/v1/values?start=20260101",
        "/v1/values?end=2026-1-5",
        "/v1/values?start=2026-01-02&end=2026-01-01",
        "/v1/values?start=2026-01-02T00:00:00",
        "/v1/metrics/m1/values?start=2026-02-30",
        "/v1/metrics/m1/values?end=20260101",
        "/v1/metrics/m1/values?start=2026-03-01&end=2026-02-01",
        "/v1/metrics/m1/values?interval=hour",
        "/v1/metrics/m1/values?interval=WEEK",
        "/v1/metrics/m1/values?interval=",
        "/v1/metrics/m1/values.csv?interval=hour",
        "/v1/metrics/m1/values/2026-02-30/revisions",
        "/v1/metrics/m1/values/20260105/revisions",
        "/v1/scorecards?as_of=2026-02-30",
        "/v1/scorecards/parks?as_of=20260101",
        "/v1/cityscore?as_of=2026-13-01",
        "/v1/cityscore/history?start=2026-02-01&end=2026-01-01",
        "/v1/metrics/m1/scores?start=2026-02-30",
        "/v1/metrics?in_cityscore=maybe",
        "/v1/departments.csv?bom=maybe",
    ]
    for url in bad:
        assert_problem(client.get(url), 400)


def test_unknown_slugs_are_404(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "parks")
    for url in (
        "/v1/departments/nope",
        "/v1/metrics/nope",
        "/v1/metrics/nope/values",
        "/v1/metrics/nope/values.csv",
        "/v1/metrics/nope/values/2026-01-01/revisions",
        "/v1/metrics/nope/scores",
        "/v1/analyses/nope",
        "/v1/scorecards/nope",
        "/v1/nope",
    ):
        assert_problem(client.get(url), 404)


def test_unknown_filter_values_are_empty(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "parks")
    put_metric(client, admin, "m1", "parks")
    insert_values(session, "m1", [{"date": "2026-01-05", "numerator": 1.0, "denominator": 2.0}])
    for url in (
        "/v1/values?metric=nope",
        "/v1/values?department=nope",
        "/v1/metrics?department=nope",
        "/v1/metrics?q=zzz",
        "/v1/analyses?department=nope",
        "/v1/analyses?tag=nope",
        "/v1/analyses?q=zzz",
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.json() == {"data": [], "next": None}, url
    rows = parse_csv(client.get("/v1/values.csv?metric=nope").content)
    assert rows == [VALUE_HEADER]


GET_PATHS = (
    "/v1/departments",
    "/v1/departments/parks",
    "/v1/metrics",
    "/v1/metrics/m1",
    "/v1/metrics/m1/values",
    "/v1/metrics/m1/values/2026-01-05/revisions",
    "/v1/metrics/m1/scores",
    "/v1/values",
    "/v1/cityscore",
    "/v1/cityscore/history",
    "/v1/scorecards",
    "/v1/scorecards/parks",
    "/v1/analyses",
    "/v1/analyses/a1",
)

CSV_PATHS = {
    "/v1/departments",
    "/v1/metrics",
    "/v1/metrics/m1/values",
    "/v1/metrics/m1/scores",
    "/v1/values",
    "/v1/cityscore",
    "/v1/cityscore/history",
    "/v1/scorecards",
    "/v1/analyses",
}

WEIRD_QUERIES = (
    "limit=-0",
    "limit=%00",
    "limit=1&limit=2",
    "limit=%EF%BC%91",
    "cursor=%FF%FE",
    "cursor=" + "A" * 5000,
    "start=%00",
    "start=9999-12-31",
    "end=0001-01-01",
    "start=0001-01-01&end=0001-01-02",
    "start=0001-01-01",
    "end=9999-12-31",
    "start=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01",
    "as_of=0001-01-01",
    "as_of=9999-12-31",
    "as_of=",
    "interval=%00",
    "interval=year&start=0001-01-01&end=9999-12-31",
    "updated_since=0001-01-01T00:00:00Z",
    "updated_since=9999-12-31T23:59:59%2B00:00",
    "updated_since=%00",
    "metric=%00",
    "metric=" + "x" * 5000,
    "q=%25%5F%5C",
    "q='%3B DROP TABLE metrics;--",
    "department='%3B DROP TABLE metrics;--",
    "metric=a'b&department=o%5C'brien",
    "department=%E2%80%AE%F0%9F%92%A9",
    "tag=%00",
    "in_cityscore=%00",
    "bom=%00",
    "%00=%00",
)

WEIRD_PATHS = (
    "/v1/departments/..%2F..%2Fetc",
    "/v1/departments/" + "x" * 3000,
    "/v1/departments/%C3%A9",
    "/v1/metrics/m1/values/%00/revisions",
    "/v1/metrics/m1/values/0001-01-01/revisions",
    "/v1/metrics/m1/values/9999-12-31/revisions",
    "/v1/scorecards/parks.csv",
    "/v1/departments/parks.csv",
    "/v1/.csv",
    "/v1/values.csv.csv",
    "/v1/metrics/m1/scores.csv?start=0001-01-01",
)


def _server_errors(client: TestClient, urls: list[str]) -> list[tuple[str, Any]]:
    failures: list[tuple[str, Any]] = []
    for url in urls:
        try:
            r = client.get(url)
        except Exception as exc:  # the test client re-raises unhandled server errors
            failures.append((url, repr(exc)[:200]))
            continue
        if r.status_code >= 500:
            failures.append((url, r.status_code))
    return failures


def test_never_a_500(client: TestClient, session: Session, admin: dict) -> None:
    _setup_everything(client, session, admin)
    put_metric(
        client, admin, "base", "parks", aggregation="mean", reference="baseline", baseline_years=3
    )
    insert_values(session, "base", [{"date": d, "value": 3.0} for d in days("2025-01-01", 30)])
    failures: list[tuple[str, Any]] = []

    def check(url: str, headers: dict[str, str] | None = None) -> None:
        try:
            r = client.get(url, headers=headers)
        except Exception as exc:  # the test client re-raises server errors
            failures.append((url, repr(exc)[:200]))
            return
        if r.status_code >= 500:
            failures.append((url, r.status_code))
        elif r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", url

    for path in GET_PATHS:
        for query in WEIRD_QUERIES:
            check(f"{path}?{query}")
            if path in CSV_PATHS:
                check(f"{path}.csv?{query}")
        check(path, {"Accept": "text/csv;q=abc, */*;q=0"})
        check(path, {"If-Modified-Since": "Tue, 99 Foo 99999 99:99:99 GMT"})
        check(path, {"If-None-Match": ","})
    for path in WEIRD_PATHS:
        check(path)
    assert failures == [], "\n".join(map(str, failures))


def test_nul_bytes_are_not_a_500(client: TestClient, session: Session, admin: dict) -> None:
    """A NUL byte in a slug or a text filter is a client error (400) or an unknown slug (404)."""
    _setup_everything(client, session, admin)
    urls = [
        "/v1/metrics?department=%00",
        "/v1/metrics?q=%00",
        "/v1/metrics?q=a%00b",
        "/v1/values?department=%00",
        "/v1/values.csv?department=%00",
        "/v1/departments/%00",
        "/v1/metrics/%00",
        "/v1/metrics/%00/values",
        "/v1/metrics/%00/scores",
        "/v1/metrics/%00/values/2026-01-05/revisions",
        "/v1/analyses/%00",
        "/v1/scorecards/%00",
    ]
    failures = _server_errors(client, urls)
    assert failures == [], "\n".join(map(str, failures))
    for url in urls:
        assert client.get(url).status_code in (200, 400, 404), url


def test_updated_since_out_of_range_is_400(client: TestClient) -> None:
    for raw in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        failures = _server_errors(client, [f"/v1/values?updated_since={raw.replace('+', '%2B')}"])
        assert failures == []
        assert_problem(client.get("/v1/values", params={"updated_since": raw}), 400)


def test_csv_and_paging_through_a_real_engine(
    committing_engine: Engine, settings: Settings
) -> None:
    """Not bound to one test connection: each request has its own session and connection, and
    the CSV body streams after the endpoint has returned."""
    factory = session_factory(committing_engine)
    with factory() as s:
        headers = admin_headers(s)
        s.commit()
    with TestClient(create_app(settings, bind=committing_engine)) as c:
        put_department(c, headers, "d1", 'Name, with "quotes"')
        put_metric(c, headers, "a", "d1")
        put_metric(c, headers, "b", "d1")
        with factory() as s:
            for k, slug in enumerate(("a", "b")):
                insert_values(
                    s,
                    slug,
                    [
                        {"date": d, "numerator": float(i % 13 + k), "denominator": 13.0}
                        for i, d in enumerate(days("2022-01-01", 1200))
                    ],
                )
            s.commit()
        r = c.get("/v1/values.csv")
        assert r.status_code == 200
        csv_rows = parse_csv(r.content)
        assert len(csv_rows) == 2401
        rows, pages = collect_pages(c, "/v1/values?limit=500")
        assert pages == 5
        assert_csv_matches_json(csv_rows[1:], rows)
        etag = c.get("/v1/values").headers["etag"]
        assert c.get("/v1/values", headers={"If-None-Match": etag}).status_code == 304
        assert parse_csv(c.get("/v1/departments.csv").content)[1][1] == 'Name, with "quotes"'


def test_response_cache_never_serves_a_stale_body(client: TestClient, admin: dict) -> None:
    """Rendered bodies are cached per ETag; a change moves the ETag, so the next GET is fresh."""
    put_department(client, admin, "parks", name="Parks")
    first = client.get("/v1/departments")
    again = client.get("/v1/departments")
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    put_department(client, admin, "parks", name="Parks and Recreation")
    changed = client.get("/v1/departments")
    assert changed.json()["data"][0]["name"] == "Parks and Recreation"
    assert changed.headers["etag"] != first.headers["etag"]
    one = client.get("/v1/departments/parks")
    assert one.json()["name"] == "Parks and Recreation"


def test_unknown_parameters_neither_change_the_etag_nor_fill_the_cache(
    client: TestClient,
) -> None:
    """Issue 9 items 10 and 14: ``&x=N`` bypassed the response cache (each request paid the
    full computation) and 260 such requests grew the process by 345 MB."""
    base = client.get("/v1/cityscore/history")
    assert base.status_code == 200
    cache = client.app.state.responses  # type: ignore[attr-defined]
    before = len(cache._items)
    for n in range(30):
        r = client.get(f"/v1/cityscore/history?x={n}&junk{n}=1")
        assert r.status_code == 200 and r.headers["etag"] == base.headers["etag"]
    assert len(cache._items) == before
    other = client.get("/v1/cityscore/history?start=2026-01-01&end=2026-01-31")
    assert other.headers["etag"] != base.headers["etag"]


def test_the_response_cache_is_bounded_in_bytes() -> None:
    from api.http.respond import ResponseCache

    cache = ResponseCache(max_entries=1000, max_body=1 << 20, max_bytes=3 << 20)
    for n in range(20):
        cache.put(str(n), b"x" * (1 << 20), {})
    assert cache.size <= 3 << 20 and len(cache._items) == 3
    assert cache.get("19") is not None and cache.get("0") is None


@pytest.mark.parametrize("cell", [" =cmd", "\n=1+1", "\t+1", "  @SUM(A1)", "\r\n-2"])
def test_formulas_after_leading_whitespace_are_neutralised(cell: str) -> None:
    """Issue 9 item 15."""
    from api.http.csv import neutralise

    assert neutralise(cell) == "'" + cell
    assert neutralise("plain = text") == "plain = text"


def test_search_text_is_bounded(client: TestClient) -> None:
    """Issue 9 item 12: on SQLite a 60,000-character q was a 503 (LIKE pattern too complex)."""
    for path in ("/v1/metrics", "/v1/analyses"):
        r = client.get(path, params={"q": "a" * 60_000})
        assert r.status_code == 400 and "at most 500" in r.json()["detail"]
        assert client.get(path, params={"q": "a" * 500}).status_code == 200


def test_updated_since_before_year_1000(client: TestClient, session: Session, admin: dict) -> None:
    """Issue 9 item 12: on SQLite years before 1000 were not zero-padded and matched nothing."""
    put_department(client, admin, "311")
    put_metric(client, admin, "calls", "311")
    dept = department_headers(session, "311")
    r = client.post(
        "/v1/ingest/values",
        json=[{"metric": "calls", "date": "2026-05-15", "numerator": 1, "denominator": 2}],
        headers=dept,
    )
    assert r.status_code == 200, r.text
    r = client.get("/v1/values", params={"updated_since": "0999-01-01T00:00:00Z"})
    assert r.status_code == 200 and len(r.json()["data"]) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/departments/parks"),
        ("PUT", "/v1/metrics/m"),
        ("PUT", "/v1/analyses/a"),
        ("POST", "/v1/cityscore/runs"),
    ],
)
def test_a_deeply_nested_admin_body_is_a_422_like_any_invalid_body(
    client: TestClient, admin: dict[str, str], method: str, path: str
) -> None:
    """FastAPI answers a body it cannot parse (here: JSON nested past Python's recursion
    limit) with a bare 400 "Error"; every invalid body is a 422 problem here."""
    depth = 200_000  # 400 kB, under ADMIN_MAX_BYTES
    headers = {**admin, "Content-Type": "application/json"}
    r = client.request(method, path, content="[" * depth + "]" * depth, headers=headers)
    assert r.status_code == 422, r.text[:200]
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "Unprocessable Content"
    assert body["errors"][0]["field"] == "body"
    assert client.get("/v1/departments").json()["data"] == []  # nothing written
