"""Department ingest: validation, scope, atomicity, idempotency, revisions, scores,
concurrency. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from api.keys import service as keys
from api.main import create_app
from api.settings import Settings
from db.models import IngestBatch, Metric, MetricValue, ValueRevision
from db.session import session_factory
from tests._data import bearer, department_headers, put_department, put_metric

V = MetricValue.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]
B = IngestBatch.__table__  # type: ignore[attr-defined]
CSV_HEADER = "metric,date,value,numerator,denominator\r\n"
M = Metric.__table__  # type: ignore[attr-defined]

DAY = "2026-05-15"
NEXT_DAY = "2026-05-16"
URL = "/v1/ingest/values"


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def catalogue(client: TestClient, admin: dict[str, str]) -> None:
    """Two departments: 311 (a pooled ratio and a mean), fire (a median)."""
    put_department(client, admin, "311")
    put_department(client, admin, "fire")
    put_metric(
        client,
        admin,
        "calls-on-time",
        "311",
        aggregation="pooled_ratio",
        target=0.95,
        name="calls on time",
    )
    put_metric(
        client,
        admin,
        "wait-minutes",
        "311",
        aggregation="mean",
        target=5,
        direction="lower_is_better",
        name="wait minutes",
    )
    put_metric(
        client,
        admin,
        "ems-response",
        "fire",
        aggregation="median",
        target=6.0,
        name="ems response",
    )


@pytest.fixture
def dept(session: Session, catalogue: None) -> dict[str, str]:
    return department_headers(session, "311")


def post(
    client: TestClient,
    headers: dict[str, str],
    body: Any,
    *,
    params: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> Any:
    content = body if isinstance(body, bytes | str) else orjson.dumps(body)
    h = {**headers, "Content-Type": "application/json", **(extra or {})}
    return client.post(URL, content=content, headers=h, params=params)


def post_csv(client: TestClient, headers: dict[str, str], text: str | bytes) -> Any:
    content = text.encode() if isinstance(text, str) else text
    h = {**headers, "Content-Type": "text/csv; charset=utf-8"}
    return client.post(URL, content=content, headers=h)


def current(session: Session, slug: str | None = None) -> list[tuple[Any, ...]]:
    stmt = (
        select(M.c.slug, V.c.date, V.c.value, V.c.numerator, V.c.denominator, V.c.deleted)
        .join(M, M.c.id == V.c.metric_id)
        .order_by(M.c.slug, V.c.date)
    )
    if slug is not None:
        stmt = stmt.where(M.c.slug == slug)
    return [tuple(r) for r in session.execute(stmt)]


def count(session: Session, table: Any) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def problems(r: Any) -> list[tuple[Any, str]]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return [(e["row"], e["field"]) for e in r.json()["errors"]]


def receipt(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def counts(body: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        body["received"],
        body["created"],
        body["updated"],
        body["unchanged"],
        body["deleted"],
    )


# --- the happy path ------------------------------------------------------------------------


def test_json_batch_creates_values_and_answers_a_receipt(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    r = post(
        client,
        dept,
        [
            {"metric": "calls-on-time", "date": DAY, "numerator": 741, "denominator": 788},
            {"metric": "wait-minutes", "date": DAY, "value": 4.5},
            {"metric": "wait-minutes", "date": "2026-05-14", "value": 0},
        ],
    )
    body = receipt(r)
    assert counts(body) == (3, 3, 0, 0, 0)
    assert isinstance(body["batch"], int) and body["dry_run"] is False
    assert r.headers["location"] == f"/v1/ingest/batches/{body['batch']}"
    assert current(session) == [
        ("calls-on-time", dt.date(2026, 5, 15), 741 / 788, 741.0, 788.0, False),
        ("wait-minutes", dt.date(2026, 5, 14), 0.0, None, None, False),
        ("wait-minutes", dt.date(2026, 5, 15), 4.5, None, None, False),
    ]
    rows = client.get("/v1/values", params={"metric": "calls-on-time"}).json()["data"]
    assert [(v["date"], v["value"], v["numerator"]) for v in rows] == [(DAY, 741 / 788, 741)]
    batch = session.execute(select(B).where(B.c.id == body["batch"])).one()
    assert (batch.received, batch.created, batch.idempotency_key) == (3, 3, None)
    assert batch.request_hash and len(batch.request_hash) == 64


def test_no_content_type_means_json(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    content = orjson.dumps([{"metric": "wait-minutes", "date": DAY, "value": 3}])
    r = client.post(URL, content=content, headers=dept)
    assert counts(receipt(r)) == (1, 1, 0, 0, 0)
    r = client.post(URL, content=content, headers={**dept, "Content-Type": ""})
    assert counts(receipt(r)) == (1, 0, 0, 1, 0)


def test_empty_batch_is_a_422_and_stores_nothing(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    """DESIGN: an empty batch is a 422 (it used to create an empty receipt)."""
    for body, ctype in (([], "application/json"), (CSV_HEADER, "text/csv")):
        content = body if isinstance(body, str) else "[]"
        r = client.post(URL, content=content, headers={**dept, "Content-Type": ctype})
        assert r.status_code == 422, r.text
        assert "no records" in r.json()["detail"]
    assert count(session, V) == 0
    assert count(session, B) == 0


def test_today_in_the_city_is_accepted_tomorrow_is_not(
    client: TestClient, dept: dict[str, str], frozen_clock: None
) -> None:
    # 02:30 UTC on 2026-05-16 is 22:30 on 05-15 in New York: the 16th is still tomorrow there
    rows = [
        {"metric": "wait-minutes", "date": "2026-05-15", "value": 1},
        {"metric": "wait-minutes", "date": "2026-05-16", "value": 1},
    ]
    assert problems(post(client, dept, rows)) == [(1, "date")]
    assert counts(receipt(post(client, dept, rows[:1]))) == (1, 1, 0, 0, 0)


# --- validation ----------------------------------------------------------------------------


def test_every_invalid_record_is_listed_and_nothing_is_written(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    rows: list[Any] = [
        {"metric": "wait-minutes", "date": DAY, "value": 1},  # 0 fine
        {"metric": "no-such-metric", "date": DAY, "value": 1},  # 1 unknown metric
        {"metric": "calls-on-time", "date": DAY, "value": 0.9},  # 2 value on a ratio
        {"metric": "calls-on-time", "date": "2026-05-14", "numerator": 1},  # 3 no denominator
        {"metric": "wait-minutes", "date": "2026-05-13", "numerator": 1, "denominator": 2},  # 4
        {"metric": "wait-minutes", "date": "2026-05-12", "value": -1},  # 5 negative
        {"metric": "calls-on-time", "date": "2026-05-12", "numerator": 1, "denominator": 0},  # 6
        {"metric": "wait-minutes", "date": "2026-02-30", "value": 1},  # 7 not a real date
        {"metric": "wait-minutes", "date": "15/05/2026", "value": 1},  # 8 bad format
        {"metric": "wait-minutes", "date": "2999-01-01", "value": 1},  # 9 future
        {"metric": "wait-minutes", "date": "2026-05-11", "value": "7"},  # 10 string number
        {"metric": "wait-minutes", "date": "2026-05-10", "value": 1, "colour": "red"},  # 11
        ["wait-minutes", DAY, 1],  # 12 not an object
        {"date": "2026-05-09", "value": 1},  # 13 no metric
        {"metric": "wait-minutes", "value": 1},  # 14 no date
        {"metric": "wait-minutes", "date": "2026-05-08"},  # 15 no value
        {"metric": "wait-minutes", "date": "2026-05-07", "value": True},  # 16 boolean
        {"metric": "wait-minutes", "date": "2026-05-06", "deleted": "yes"},  # 17 bad flag
        {"metric": "wait-minutes", "date": "2026-05-05", "deleted": True, "value": 1},  # 18
        {"metric": "calls-on-time", "date": "2026-05-05", "numerator": 1, "denominator": -2},
        {"metric": 7, "date": "2026-05-04", "value": 1},  # 20 metric not a slug
        {"metric": "wait-minutes", "date": 20260504, "value": 1},  # 21 date not a string
        "wait-minutes",  # 22 not an object
        None,  # 23 not an object
        {"metric": "wait\u0000minutes", "date": "2026-05-03", "value": 1},  # 24 NUL: no 500
        {"metric": "wait-minutes", "date": "2026-05-03\u0000", "value": 1},  # 25
    ]
    r = post(client, dept, rows)
    assert problems(r) == [
        (1, "metric"),
        (2, "value"),
        (2, "numerator"),
        (2, "denominator"),
        (3, "denominator"),
        (4, "value"),
        (4, "numerator"),
        (4, "denominator"),
        (5, "value"),
        (6, "denominator"),
        (7, "date"),
        (8, "date"),
        (9, "date"),
        (10, "value"),
        (11, "colour"),
        (12, "record"),
        (13, "metric"),
        (14, "date"),
        (15, "value"),
        (16, "value"),
        (17, "deleted"),
        (18, "value"),
        (19, "denominator"),
        (20, "metric"),
        (21, "date"),
        (22, "record"),
        (23, "record"),
        (24, "metric"),
        (25, "date"),
    ]
    body = r.json()
    assert body["status"] == 422 and body["message"] == body["detail"]
    assert count(session, V) == 0 and count(session, B) == 0


def test_non_finite_numbers_are_named_per_record(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    raw = (
        '[{"metric": "wait-minutes", "date": "2026-05-15", "value": 1},'
        ' {"metric": "wait-minutes", "date": "2026-05-14", "value": NaN},'
        ' {"metric": "wait-minutes", "date": "2026-05-13", "value": Infinity},'
        ' {"metric": "calls-on-time", "date": "2026-05-13", "numerator": 1e999,'
        ' "denominator": 2}]'
    )
    assert problems(post(client, dept, raw)) == [(1, "value"), (2, "value"), (3, "numerator")]
    assert count(session, V) == 0


def test_duplicates_list_both_records(client: TestClient, dept: dict[str, str]) -> None:
    rows = [
        {"metric": "wait-minutes", "date": DAY, "value": 1},
        {"metric": "wait-minutes", "date": "2026-05-14", "value": 1},
        {"metric": "calls-on-time", "date": DAY, "numerator": 1, "denominator": 2},
        {"metric": "wait-minutes", "date": DAY, "deleted": True},
        {"metric": "wait-minutes", "date": "2026-05-14", "value": -3},
    ]
    r = post(client, dept, rows)
    assert problems(r) == [(0, "date"), (1, "date"), (3, "date"), (4, "value"), (4, "date")]
    assert "rows 0, 3" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"metric": "wait-minutes", "date": "2026-05-15", "value": 1}',
        b'"hello"',
        b"null",
        b"[{",
        b"",
        b"\xff\xfe[]",
    ],
)
def test_a_body_that_is_not_a_json_array_is_422(
    client: TestClient, dept: dict[str, str], raw: bytes
) -> None:
    r = post(client, dept, raw)
    assert problems(r) == [(None, "body")]


def test_null_fields_count_as_absent(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    rows = [
        {"metric": "calls-on-time", "date": DAY, "value": None, "numerator": 1, "denominator": 4},
        {"metric": "wait-minutes", "date": DAY, "value": 2, "deleted": False},
    ]
    assert counts(receipt(post(client, dept, rows))) == (2, 2, 0, 0, 0)


# --- CSV -----------------------------------------------------------------------------------


def test_csv_ingest_with_bom_any_column_order_and_deletions(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    text = (
        "\ufeffmetric,date,value,numerator,denominator\r\n"
        "calls-on-time,2026-05-15,,741,788\r\n"
        "wait-minutes,2026-05-15,4.5,,\r\n"
        "wait-minutes,2026-05-14,1e1,,\r\n"
    )
    assert counts(receipt(post_csv(client, dept, text))) == (3, 3, 0, 0, 0)
    text = (
        "date,denominator,metric,numerator,value,deleted\n"
        "2026-05-15,788,calls-on-time,741,,\n"
        "2026-05-15,,wait-minutes,,5,false\n"
        "\n"
        "2026-05-14,,wait-minutes,,,true\n"
    )
    assert counts(receipt(post_csv(client, dept, text))) == (3, 0, 1, 1, 1)
    assert current(session) == [
        ("calls-on-time", dt.date(2026, 5, 15), 741 / 788, 741.0, 788.0, False),
        ("wait-minutes", dt.date(2026, 5, 14), None, None, None, True),
        ("wait-minutes", dt.date(2026, 5, 15), 5.0, None, None, False),
    ]


def test_csv_rows_are_validated_with_data_row_indexes(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    text = (
        "metric,date,value,numerator,denominator\n"
        "wait-minutes,2026-05-15,1,,\n"  # 0 fine
        "wait-minutes,2026-05-14,abc,,\n"  # 1 not a number
        "wait-minutes,2026-05-13,nan,,\n"  # 2 not a number
        "calls-on-time,2026-05-13,0.5,,\n"  # 3 value on a ratio: value + numerator + denominator
        "wait-minutes,2026-05-12,1\n"  # 4 wrong cell count
        "wait-minutes,2026-05-15,2,,\n"  # 5 duplicate of 0
        "wait-minutes,2026-05-11,1_000,,\n"  # 6 not a number
    )
    assert problems(post_csv(client, dept, text)) == [
        (0, "date"),
        (1, "value"),
        (2, "value"),
        (3, "value"),
        (3, "numerator"),
        (3, "denominator"),
        (4, "record"),
        (5, "date"),
        (6, "value"),
    ]
    assert count(session, V) == 0


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        ("metric,date,value,numerator", [(None, "denominator")]),
        ("metric,date,value,numerator,denominator,note", [(None, "note")]),
        ("", [(None, "body")]),
    ],
)
def test_csv_header_must_be_the_documented_one(
    client: TestClient, dept: dict[str, str], header: str, fields: list[Any]
) -> None:
    assert problems(post_csv(client, dept, header)) == fields


# --- media types and limits ----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/plain", "text/csv; charset=latin-1", "multipart/x"]
)
def test_other_media_types_are_415(
    client: TestClient, dept: dict[str, str], content_type: str
) -> None:
    r = client.post(URL, content=b"[]", headers={**dept, "Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.fixture
def small_client(connection: Any) -> Iterator[TestClient]:
    settings = Settings(ingest_max_rows=3, ingest_max_bytes=2000, rate_limit_enabled=False)
    with TestClient(create_app(settings, bind=connection)) as c:
        yield c


def test_too_many_records_or_bytes_is_413(
    small_client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    rows = [{"metric": "wait-minutes", "date": f"2026-05-1{i}", "value": i} for i in range(4)]
    r = post(small_client, dept, rows)
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    csv_text = "metric,date,value,numerator,denominator\n" + "".join(
        f"wait-minutes,2026-05-1{i},{i},,\n" for i in range(4)
    )
    assert post_csv(small_client, dept, csv_text).status_code == 413
    assert counts(receipt(post(small_client, dept, rows[:3]))) == (3, 3, 0, 0, 0)
    big = orjson.dumps(rows[:1]) + b" " * 2000
    assert post(small_client, dept, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is checked
        yield b"["
        for _ in range(100):
            yield b" " * 100
        yield b"]"

    r = small_client.post(URL, content=chunks(), headers={**dept, "Content-Type": "text/csv"})
    assert r.status_code == 413, r.text
    assert count(session, V) == 3
    # One problem type for one condition, however the size was found out.
    types = {post(small_client, dept, big).json()["type"], r.json()["type"]}
    types.add(post(small_client, dept, rows).json()["type"])
    assert types == {"https://cityscore.dev/problems/too-large"}, types


# --- keys and scope ------------------------------------------------------------------------


def test_a_valid_key_is_required(
    client: TestClient, session: Session, catalogue: None, dept: dict[str, str]
) -> None:
    rows = [{"metric": "wait-minutes", "date": DAY, "value": 1}]
    for headers in ({}, bearer("cs_not-a-key"), {"Authorization": "Basic abc"}):
        r = post(client, headers, rows)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "www-authenticate" in r.headers
    key, token = keys.create(session, name="soon revoked", department="311")
    session.flush()
    assert post(client, bearer(token), rows).status_code == 200
    assert key.id is not None
    keys.revoke(session, key.id)
    session.flush()
    assert post(client, bearer(token), rows).status_code == 401
    assert client.get("/v1/ingest/batches/1", headers=bearer(token)).status_code == 401


def test_another_departments_metric_forbids_the_whole_batch(
    client: TestClient, session: Session, dept: dict[str, str], admin: dict[str, str]
) -> None:
    rows = [
        {"metric": "wait-minutes", "date": DAY, "value": 1},
        {"metric": "ems-response", "date": DAY, "value": 7.1},
        {"metric": "wait-minutes", "date": "2026-05-14", "value": -1},
    ]
    r = post(client, dept, rows)
    assert r.status_code == 403, r.text
    assert "ems-response" in r.json()["detail"]
    assert count(session, V) == 0 and count(session, B) == 0
    # An admin key may write any department's metrics.
    assert counts(receipt(post(client, admin, rows[:2]))) == (2, 2, 0, 0, 0)
    fire = department_headers(session, "fire")
    assert counts(receipt(post(client, fire, rows[1:2]))) == (1, 0, 0, 1, 0)


# --- atomicity, replay, dry run ------------------------------------------------------------


def test_one_bad_record_in_the_middle_writes_nothing(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    receipt(post(client, dept, [{"metric": "wait-minutes", "date": "2026-05-01", "value": 9}]))
    before = (current(session), count(session, R), count(session, B))
    rows = [
        {"metric": "wait-minutes", "date": f"2026-05-{d:02d}", "value": d} for d in range(1, 21)
    ]
    rows[10]["value"] = -5
    assert problems(post(client, dept, rows)) == [(10, "value")]
    assert (current(session), count(session, R), count(session, B)) == before


def test_replaying_a_batch_changes_nothing_not_even_the_etag(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    rows = [
        {"metric": "calls-on-time", "date": DAY, "numerator": 741, "denominator": 788},
        {"metric": "wait-minutes", "date": DAY, "value": 4.25},
        {"metric": "wait-minutes", "date": "2026-05-14", "deleted": True},
    ]
    first = receipt(post(client, dept, rows))
    assert counts(first) == (3, 2, 0, 1, 0)
    etag = client.get("/v1/cityscore", params={"as_of": NEXT_DAY}).headers["etag"]
    values_etag = client.get("/v1/values").headers["etag"]
    state = (current(session), count(session, R))
    again = receipt(post(client, dept, rows))
    assert counts(again) == (3, 0, 0, 3, 0)
    assert again["batch"] != first["batch"]  # every real batch leaves a receipt
    assert count(session, B) == 2
    assert (current(session), count(session, R)) == state
    assert client.get("/v1/cityscore", params={"as_of": NEXT_DAY}).headers["etag"] == etag
    assert client.get("/v1/values").headers["etag"] == values_etag
    # A real change moves the ETag.
    receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 4.5}]))
    assert client.get("/v1/cityscore", params={"as_of": NEXT_DAY}).headers["etag"] != etag


def test_dry_run_validates_and_counts_without_writing(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 1}]))
    state = (current(session), count(session, R), count(session, B))
    rows = [
        {"metric": "wait-minutes", "date": DAY, "value": 2},
        {"metric": "wait-minutes", "date": "2026-05-14", "value": 2},
        {"metric": "wait-minutes", "date": "2026-05-13", "deleted": True},
    ]
    for flag in ("true", "1", "yes"):
        body = receipt(post(client, dept, rows, params={"dry_run": flag}))
        assert body == {
            "batch": None,
            "received": 3,
            "created": 1,
            "updated": 1,
            "unchanged": 1,
            "deleted": 0,
            "dry_run": True,
        }
    assert (current(session), count(session, R), count(session, B)) == state
    bad = [{"metric": "wait-minutes", "date": DAY, "value": -2}]
    assert problems(post(client, dept, bad, params={"dry_run": "true"})) == [(0, "value")]
    assert post(client, dept, rows, params={"dry_run": "maybe"}).status_code == 400
    assert receipt(post(client, dept, rows, params={"dry_run": "false"}))["batch"] is not None


# --- revisions and tombstones --------------------------------------------------------------


def test_changes_keep_revisions_and_deletions_leave_tombstones(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    key_id = keys.authenticate(session, dept["Authorization"].split()[1])
    assert key_id is not None
    first = receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 1}]))
    second = receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 2}]))
    assert counts(second) == (1, 0, 1, 0, 0)
    third = receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "deleted": True}]))
    assert counts(third) == (1, 0, 0, 0, 1)
    # Deleting again, or deleting what never existed, changes nothing.
    again = [
        {"metric": "wait-minutes", "date": DAY, "deleted": True},
        {"metric": "wait-minutes", "date": "2026-05-01", "deleted": True},
    ]
    assert counts(receipt(post(client, dept, again))) == (2, 0, 0, 2, 0)

    revisions = session.execute(
        select(R.c.value, R.c.deleted, R.c.batch_id, R.c.key_id, R.c.recorded_at).order_by(R.c.id)
    ).all()
    assert [(r.value, r.deleted, r.batch_id, r.key_id) for r in revisions] == [
        (1.0, False, first["batch"], key_id.id),
        (2.0, False, second["batch"], key_id.id),
    ]
    assert revisions[0].recorded_at < revisions[1].recorded_at
    tomb = session.execute(select(V)).one()
    assert (tomb.deleted, tomb.value, tomb.batch_id) == (True, None, third["batch"])

    versions = client.get(f"/v1/metrics/wait-minutes/values/{DAY}/revisions").json()["data"]
    assert [(v["value"], v["deleted"]) for v in versions] == [
        (1.0, False),
        (2.0, False),
        (None, True),
    ]
    since = "2000-01-01T00:00:00Z"
    synced = client.get("/v1/values", params={"updated_since": since}).json()["data"]
    assert [(v["date"], v["deleted"]) for v in synced] == [(DAY, True)]
    assert client.get("/v1/values").json()["data"] == []

    # A value posted again after its deletion is created anew; the tombstone is a revision.
    back = receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 3}]))
    assert counts(back) == (1, 1, 0, 0, 0)
    assert session.execute(select(R.c.deleted).order_by(R.c.id.desc())).scalars().first() is True
    assert count(session, R) == 3


# --- Idempotency-Key ------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_receipt(
    client: TestClient, session: Session, dept: dict[str, str]
) -> None:
    rows = [{"metric": "wait-minutes", "date": DAY, "value": 1}]
    idem = {"Idempotency-Key": "nightly-2026-05-16"}
    first = post(client, dept, rows, extra=idem)
    assert counts(receipt(first)) == (1, 1, 0, 0, 0)
    assert "idempotent-replayed" not in first.headers
    # The value changes in between; the retry must not re-apply its batch.
    receipt(post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 5}]))
    retry = post(client, dept, rows, extra=idem)
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert current(session)[0][2] == 5.0
    assert count(session, B) == 2
    other = post(client, dept, [{"metric": "wait-minutes", "date": DAY, "value": 9}], extra=idem)
    assert other.status_code == 409, other.text
    assert other.headers["content-type"] == "application/problem+json"
    # Keys are per API key: another key may use the same Idempotency-Key.
    same_dept = department_headers(session, "311")
    assert receipt(post(client, same_dept, rows, extra=idem))["batch"] != first.json()["batch"]
    # A failed request stores nothing, so the key can be used once the body is fixed.
    fresh = {"Idempotency-Key": "fix-and-retry"}
    bad = [{"metric": "wait-minutes", "date": DAY, "value": -1}]
    assert post(client, dept, bad, extra=fresh).status_code == 422
    assert post(client, dept, rows, extra=fresh).status_code == 200
    for bad_key in ("x" * 201, ""):
        assert post(client, dept, rows, extra={"Idempotency-Key": bad_key}).status_code == 400
    # A dry run ignores the header: it neither replays nor stores anything.
    dry = post(client, dept, rows, params={"dry_run": "true"}, extra=idem)
    assert receipt(dry)["batch"] is None and count(session, B) == 4


def test_only_the_metrics_a_batch_changed_move_their_etags(
    client: TestClient, dept: dict[str, str]
) -> None:
    rows = [
        {"metric": "wait-minutes", "date": DAY, "value": 1},
        {"metric": "calls-on-time", "date": DAY, "numerator": 1, "denominator": 2},
    ]
    receipt(post(client, dept, rows))

    def etag(slug: str) -> str:
        return str(client.get(f"/v1/metrics/{slug}/values").headers["etag"])

    wait, calls = etag("wait-minutes"), etag("calls-on-time")
    rows[0]["value"] = 2
    assert counts(receipt(post(client, dept, rows))) == (2, 0, 1, 1, 0)
    assert etag("wait-minutes") != wait
    assert etag("calls-on-time") == calls


# --- batch receipts ------------------------------------------------------------------------


def test_batch_receipt_is_scoped_to_the_department(
    client: TestClient, session: Session, dept: dict[str, str], admin: dict[str, str]
) -> None:
    rows = [
        {"metric": "wait-minutes", "date": DAY, "value": 1},
        {"metric": "wait-minutes", "date": "2026-05-14", "deleted": True},
    ]
    posted = receipt(post(client, dept, rows))
    url = f"/v1/ingest/batches/{posted['batch']}"
    for headers in (dept, department_headers(session, "311"), admin):
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["created_at"].endswith("Z")
        del body["created_at"]
        assert body == {
            "batch": posted["batch"],
            "received": 2,
            "created": 1,
            "updated": 0,
            "unchanged": 1,
            "deleted": 0,
            "department": "311",
        }
    assert client.get(url, headers=department_headers(session, "fire")).status_code == 404
    assert client.get(url).status_code == 401
    assert client.get("/v1/ingest/batches/999999", headers=admin).status_code == 404
    assert client.get("/v1/ingest/batches/abc", headers=admin).status_code == 400
    by_admin = receipt(post(client, admin, rows[:1]))
    r = client.get(f"/v1/ingest/batches/{by_admin['batch']}", headers=admin)
    assert r.json()["department"] is None
    assert client.get(f"/v1/ingest/batches/{by_admin['batch']}", headers=dept).status_code == 404


# --- scores --------------------------------------------------------------------------------


def test_scores_are_recomputed_before_the_response(
    client: TestClient, dept: dict[str, str]
) -> None:
    row = {"metric": "calls-on-time", "date": DAY, "numerator": 741, "denominator": 788}
    receipt(post(client, dept, [row]))
    body = client.get("/v1/cityscore", params={"as_of": NEXT_DAY}).json()
    assert body["score"]["day"] == pytest.approx(0.9898477157360406, rel=1e-12)
    by_metric = {m["metric"]: m for m in body["metrics"]}
    assert by_metric["calls-on-time"]["day"]["score"] == pytest.approx(0.9898477157360406)
    receipt(post(client, dept, [{**row, "numerator": 788}]))
    body = client.get("/v1/cityscore", params={"as_of": NEXT_DAY}).json()
    assert body["score"]["day"] == pytest.approx(1 / 0.95)
    receipt(post(client, dept, [{"metric": "calls-on-time", "date": DAY, "deleted": True}]))
    body = client.get("/v1/cityscore", params={"as_of": NEXT_DAY}).json()
    assert body["score"]["day"] is None


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_batches_for_the_same_value_both_apply(committing_engine: Engine) -> None:
    url = committing_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, rate_limit_enabled=False)
    with session_factory(committing_engine)() as session:
        _, admin_token = keys.create(session, name="admin", admin=True)
        session.commit()
    admin = bearer(admin_token)
    setup = create_app(settings)
    try:
        with TestClient(setup) as c:
            put_department(c, admin, "311")
            put_metric(
                c,
                admin,
                "calls-on-time",
                "311",
                aggregation="pooled_ratio",
                target=0.95,
                name="calls on time",
            )
    finally:
        setup.state.engine.dispose()
    with session_factory(committing_engine)() as session:
        _, token_a = keys.create(session, name="a", department="311")
        _, token_b = keys.create(session, name="b", department="311")
        session.commit()

    versions = {token_a: (741.0, 788.0), token_b: (700.0, 800.0)}
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(token: str) -> None:
        app = create_app(settings)
        try:
            with TestClient(app) as c:
                num, den = versions[token]
                body = [
                    {"metric": "calls-on-time", "date": DAY, "numerator": num, "denominator": den}
                ]
                barrier.wait(timeout=30)
                results[token] = c.post(URL, json=body, headers=bearer(token))
        finally:
            app.state.engine.dispose()

    threads = [threading.Thread(target=run, args=(t,)) for t in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(results[t].status_code == 200 for t in versions), {
        t: r.text for t, r in results.items()
    }
    outcomes = sorted(counts(results[t].json())[1:3] for t in versions)
    assert outcomes == [(0, 1), (1, 0)]  # one created the value, the other updated it

    with committing_engine.connect() as conn:
        live = conn.execute(select(V.c.numerator, V.c.denominator, V.c.batch_id)).all()
        old = conn.execute(select(R.c.numerator, R.c.denominator, R.c.batch_id)).all()
    assert len(live) == 1 and len(old) == 1
    assert {(live[0][0], live[0][1]), (old[0][0], old[0][1])} == set(versions.values())
    batches = {results[t].json()["batch"] for t in versions}
    assert {live[0][2], old[0][2]} == batches
