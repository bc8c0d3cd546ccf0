"""GET /v1/ingest/batches: a department's own receipts (all for an admin), newest first,
keyset-paged, never cached. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import department_headers, put_department, put_metric
from tests.ingest.test_ingest import post

LIST = "/v1/ingest/batches"


@pytest.fixture
def dept(client: TestClient, session: Session, admin: dict[str, str]) -> dict[str, str]:
    """A 311 key; departments 311 (metric wait-minutes) and fire (ems-response) exist."""
    for slug in ("311", "fire"):
        put_department(client, admin, slug)
    put_metric(
        client,
        admin,
        "wait-minutes",
        "311",
        aggregation="mean",
        target=5,
        name="wait minutes",
    )
    put_metric(
        client,
        admin,
        "ems-response",
        "fire",
        aggregation="median",
        target=6,
        name="ems response",
    )
    return department_headers(session, "311")


def post_day(client: TestClient, key: dict[str, str], metric: str, day: int) -> int:
    body = [{"metric": metric, "date": f"2026-04-{day:02d}", "value": float(day)}]
    r = post(client, key, body)
    assert r.status_code == 200, r.text
    return int(r.json()["batch"])


def pages(client: TestClient, key: dict[str, str], url: str) -> list[list[dict[str, Any]]]:
    out = []
    while url:
        r = client.get(url, headers=key)
        assert r.status_code == 200, r.text
        body = r.json()
        out.append(body["data"])
        url = body["next"]
        if url:
            assert r.headers["link"] == f'<{url}>; rel="next"'
    return out


def test_a_department_sees_its_own_receipts_newest_first(
    client: TestClient, session: Session, dept: dict[str, str], admin: dict[str, str]
) -> None:
    mine = [post_day(client, dept, "wait-minutes", d) for d in (1, 2, 3)]
    fire = department_headers(session, "fire")
    theirs = post_day(client, fire, "ems-response", 4)
    by_admin = post_day(client, admin, "wait-minutes", 5)

    r = client.get(LIST, headers=dept)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-store"
    rows = r.json()["data"]
    assert [row["batch"] for row in rows] == mine[::-1]
    assert r.json()["next"] is None
    # the same row shape as GET /v1/ingest/batches/{id}
    for row in rows:
        assert row == client.get(f"{LIST}/{row['batch']}", headers=dept).json()
    assert rows[0]["department"] == "311" and rows[0]["received"] == 1

    everything = client.get(LIST, headers=admin).json()["data"]
    assert [row["batch"] for row in everything] == [by_admin, theirs, *mine[::-1]]
    assert [row["batch"] for row in client.get(LIST, headers=fire).json()["data"]] == [theirs]


def test_receipts_page_with_limit_and_cursor(
    client: TestClient, dept: dict[str, str], admin: dict[str, str]
) -> None:
    made = [post_day(client, dept, "wait-minutes", d) for d in range(1, 6)]
    got = pages(client, dept, f"{LIST}?limit=2")
    assert [len(p) for p in got] == [2, 2, 1]
    assert [row["batch"] for p in got for row in p] == made[::-1]
    # a cursor is bound to its query, and malformed ones are refused
    first = client.get(f"{LIST}?limit=2", headers=dept).json()["next"]
    cursor = first.split("cursor=")[1]
    assert client.get(f"{LIST}?limit=3&cursor={cursor}", headers=dept).status_code == 200
    for bad in ("cursor=nope", "limit=0", "limit=10001", "limit=x"):
        r = client.get(f"{LIST}?{bad}", headers=dept)
        assert r.status_code == 400, bad
        assert r.headers["content-type"] == "application/problem+json"


def test_receipts_need_a_key(client: TestClient, dept: dict[str, str]) -> None:
    r = client.get(LIST)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get(LIST, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_no_receipts_is_an_empty_page(client: TestClient, dept: dict[str, str]) -> None:
    assert client.get(LIST, headers=dept).json() == {"data": [], "next": None}
    assert client.get(f"{LIST}.csv", headers=dept).status_code == 404
