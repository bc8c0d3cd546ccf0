"""Every public GET carries the API's caching: ETag, Last-Modified, Cache-Control, and a 304
for a matching If-None-Match or If-Modified-Since (DESIGN: "Every public GET").

The sweep calls every GET route of the app without path parameters, plus the compatibility
documents with their parameters, so a route added without caching fails here.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, put_department, put_metric

# GETs that are not public data: keys' receipts and the audit log, health, the process's
# own metrics, and routes that answer a redirect or need a parameter to mean anything.
PRIVATE = ("/v1/ingest", "/v1/audit", "/healthz", "/readyz", "/metrics", "/internal")
DOCUMENTS = (
    "/v1/openapi.json",
    "/v1/datapackage.json",
    "/data.json",
    "/api/views/values.json",
    "/api/views/cityscore.json",
    "/api/3/action/package_list",
    "/api/3/action/package_show?id=cityscore",
    "/api/3/action/resource_show?id=daily-values",
    "/api/3/action/datastore_search?resource_id=daily-values&limit=2",
    "/api/action/package_show?id=cityscore",
)


def _public_paths(client: TestClient) -> list[str]:
    paths = set(DOCUMENTS)
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or "GET" not in (route.methods or ()):
            continue
        if "{" in route.path or route.path.startswith(PRIVATE):
            continue
        paths.add(route.path)
    return sorted(paths)


def _seed(client: TestClient, session: Session) -> dict[str, str]:
    headers = admin_headers(session)
    put_department(client, headers, "one")
    put_metric(client, headers, "a1", "one")
    return headers


def test_every_public_get_answers_with_caching_and_304(
    client: TestClient, session: Session
) -> None:
    _seed(client, session)
    missing = []
    for path in _public_paths(client):
        r = client.get(path, follow_redirects=False)
        if r.status_code != 200:
            continue  # a redirect or a route that needs parameters: not a document
        headers = {k: r.headers.get(k) for k in ("etag", "last-modified", "cache-control")}
        if not all(headers.values()):
            missing.append((path, headers))
            continue
        again = client.get(path, headers={"If-None-Match": headers["etag"] or ""})
        since = client.get(path, headers={"If-Modified-Since": headers["last-modified"] or ""})
        if again.status_code != 304 or since.status_code != 304:
            missing.append((path, {"inm": again.status_code, "ims": since.status_code}))
    assert not missing, missing


@pytest.mark.parametrize(
    "path",
    [
        "/data.json",
        "/api/views/values.json",
        "/api/3/action/datastore_search?resource_id=daily-values&limit=2",
    ],
)
def test_a_catalogue_etag_moves_with_the_data(
    client: TestClient, session: Session, path: str
) -> None:
    headers = _seed(client, session)
    before = client.get(path).headers["etag"]
    assert client.get(path).headers["etag"] == before
    r = client.post(
        "/v1/ingest/values",
        json=[{"metric": "a1", "date": "2026-05-01", "numerator": 3.0, "denominator": 4.0}],
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert client.get(path).headers["etag"] != before


def test_a_ckan_post_is_an_action_call_without_caching(
    client: TestClient, session: Session
) -> None:
    _seed(client, session)
    r = client.post("/api/3/action/package_show", json={"id": "cityscore"})
    assert r.status_code == 200, r.text
    assert "etag" not in r.headers and r.json()["success"] is True
