"""Admin writes take JSON bodies: another media type (or none: FastAPI reads a body without
one as bytes) is a 415, unparseable JSON a 422 that
names the body (not a row: these bodies are one object), and nothing is written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, put_department

WRITES = [
    ("PUT", "/v1/departments/zz"),
    ("PUT", "/v1/metrics/zz"),
    ("PUT", "/v1/analyses/zz"),
    ("POST", "/v1/cityscore/runs"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "content_type", ["text/csv", "application/x-www-form-urlencoded", "text/plain", None]
)
def test_another_media_type_is_a_415(
    client: TestClient, session: Session, method: str, path: str, content_type: str | None
) -> None:
    headers = admin_headers(session)
    if content_type:
        headers["Content-Type"] = content_type
    r = client.request(method, path, content=b'{"name": "x"}', headers=headers)
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "application/json" in r.json()["detail"]
    assert client.get("/v1/departments/zz").status_code == 404


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/Merge+JSON; charset=utf-8"]
)
def test_json_media_types_are_read_as_json(
    client: TestClient, session: Session, content_type: str
) -> None:
    headers = {**admin_headers(session), "Content-Type": content_type}
    body = b'{"name": "Zeds", "cabinet": "Operations"}'
    r = client.put("/v1/departments/zz", content=body, headers=headers)
    assert r.status_code == 201, r.text


def test_unparseable_json_names_the_body_not_a_row(client: TestClient, session: Session) -> None:
    headers = {**admin_headers(session), "Content-Type": "application/json"}
    put_department(client, headers, "one")
    r = client.put("/v1/departments/one", content=b'{"name": ', headers=headers)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors and all(e["row"] is None and e["field"] == "body" for e in errors), errors
