"""An ingest that changes a value moves the values ETags, so the response cache is bypassed.

The bodies are cached per ETag and the ETag is the ``values`` (or ``metric:<id>``) change
counter: an ingest that forgot to bump it would leave the old ETag and the old cached body
in place, and clients would be told ``304 Not Modified`` for data that did change.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, department_headers, put_department, put_metric

URL = "/v1/ingest/values"
DAY = "2026-05-14"
PAGES = (
    "/v1/values",  # scope ``values``
    "/v1/values?metric=wait-minutes",  # scope ``metric:<id>``
    "/v1/values?department=311",  # scopes ``department:<id>`` and its metrics
    "/v1/metrics/wait-minutes/values",  # scope ``metric:<id>``
)


def ingest(client: TestClient, headers: dict[str, str], value: float) -> None:
    r = client.post(
        URL, json=[{"metric": "wait-minutes", "date": DAY, "value": value}], headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] + r.json()["updated"] == 1, r.text


def shown(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(row.get("date") or row["start"], row["value"]) for row in body["data"]]


@pytest.mark.parametrize("page", PAGES)
def test_a_real_ingest_moves_the_etag_and_the_body(
    client: TestClient, session: Session, page: str
) -> None:
    admin = admin_headers(session)
    put_department(client, admin, "311")
    put_metric(
        client,
        admin,
        "wait-minutes",
        "311",
        aggregation="mean",
        targets=[{"effective_from": "2000-01-01", "value": 5.0}],
    )
    dept = department_headers(session, "311")
    ingest(client, dept, 4.0)

    first = client.get(page)
    assert first.status_code == 200, first.text
    assert shown(first.json()) == [(DAY, 4.0)]
    cached = client.get(page)  # served from the response cache
    assert cached.content == first.content and cached.headers["etag"] == first.headers["etag"]

    ingest(client, dept, 4.5)
    after = client.get(page)
    assert shown(after.json()) == [(DAY, 4.5)]
    assert after.headers["etag"] != first.headers["etag"]
    stale = client.get(page, headers={"If-None-Match": first.headers["etag"]})
    assert stale.status_code == 200 and shown(stale.json()) == [(DAY, 4.5)]
