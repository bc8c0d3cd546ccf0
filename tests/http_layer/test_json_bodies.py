"""Admin writes take JSON bodies: another media type (or none: FastAPI reads a body without
one as bytes) is a 415, unparseable JSON a 422 that
names the body (not a row: these bodies are one object), and nothing is written."""

from __future__ import annotations

import base64
import gzip
import hashlib

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, metric_body, put_department

ANALYSIS = {"title": "T", "body_markdown": "B", "published_on": "2026-05-01"}

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


def test_a_nul_in_any_text_field_is_a_422_on_both_stores(
    client: TestClient, session: Session
) -> None:
    """PostgreSQL refused a NUL with a 400 about the store; SQLite stored it."""
    headers = admin_headers(session)
    put_department(client, headers, "one")
    cases = [
        ("/v1/departments/nul", {"name": "x\x00y", "cabinet": "Operations"}, "name"),
        ("/v1/metrics/nul", {**metric_body("one"), "description": "a\x00"}, "description"),
        (
            "/v1/metrics/nul",
            {
                **metric_body("one"),
                "targets": [{"effective_from": "2026-01-01", "value": 1, "x\x00": 1}],
            },
            "targets",
        ),
        ("/v1/analyses/nul", {**ANALYSIS, "tags": ["ok", "b\x00d"]}, "tags"),
    ]
    for path, body, field in cases:
        r = client.put(path, json=body, headers=headers)
        assert r.status_code == 422, (path, r.text)
        assert any(e["field"] == field and "NUL" in e["message"] for e in r.json()["errors"])
        assert client.get(path).status_code == 404, path


def test_a_nul_in_a_cursor_is_a_bad_cursor(client: TestClient) -> None:
    fingerprint = hashlib.sha256(b"/v1/metrics?").hexdigest()[:16]  # the query's own
    for key in (["a\x00"], ["a"]):
        forged = base64.urlsafe_b64encode(orjson.dumps({"k": key, "q": fingerprint})).decode()
        r = client.get("/v1/metrics", params={"cursor": forged.rstrip("=")})
        if key == ["a"]:  # the control: a well-formed forged cursor is a page
            assert r.status_code == 200, r.text
            continue
        assert r.status_code == 400, r.text
        assert r.json()["detail"] == "cursor is malformed."


def test_a_nul_in_an_ingest_row_is_a_422_naming_the_row(
    client: TestClient, session: Session
) -> None:
    headers = admin_headers(session)
    put_department(client, headers, "one")
    rows = [
        {"metric": "a\x00", "date": "2026-05-01", "value": 1},
        {"metric": "b", "date": "2026-05-01\x00", "value": 1},
    ]
    r = client.post("/v1/ingest/values", json=rows, headers=headers)
    assert r.status_code == 422, r.text
    assert {e["row"] for e in r.json()["errors"]} == {0, 1}, r.text


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://x", "//x"])
def test_a_department_link_is_http_or_https(client: TestClient, session: Session, url: str) -> None:
    """The site renders it as <a href>: a javascript: link was stored and rendered."""
    headers = admin_headers(session)
    body = {"name": "Zeds", "cabinet": "Operations", "url": url}
    r = client.put("/v1/departments/zz", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["url"]
    ok = client.put("/v1/departments/zz", json={**body, "url": "HTTPS://x.gov/a"}, headers=headers)
    assert ok.status_code == 201, ok.text


def test_tags_survive_the_csv_join(client: TestClient, session: Session) -> None:
    """Tags join with ';' in CSV: '' and 'a;b' made a cell that split into other tags."""
    headers = admin_headers(session)
    r = client.put("/v1/analyses/t", json={**ANALYSIS, "tags": ["", "a;b"]}, headers=headers)
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"tags.0", "tags.1"}
    r = client.put("/v1/analyses/t", json={**ANALYSIS, "tags": ["a", "b c"]}, headers=headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("method", "path"), [*WRITES, ("POST", "/v1/ingest/values")])
def test_a_compressed_body_is_a_415_that_says_so(
    client: TestClient, session: Session, method: str, path: str
) -> None:
    """A gzip body got a 422 saying it was not UTF-8."""
    headers = {
        **admin_headers(session),
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    body = gzip.compress(b'[{"metric": "a", "date": "2026-05-01", "value": 1}]')
    r = client.request(method, path, content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert "Content-Encoding 'gzip'" in r.json()["detail"]
