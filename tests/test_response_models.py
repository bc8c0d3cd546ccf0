"""Every public JSON GET answers what the OpenAPI document declares for it (issue 15).

The demo is loaded; each GET operation of the published document whose 200 answer is JSON is
called with real path values, and its real body is validated against the declared schema
(JSON Schema 2020-12, as OpenAPI 3.1 writes it) by ``jsonschema``. A route left out of the
walk fails the test: the list of exceptions below says why each one is not a JSON GET.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jsonschema
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.demo import service as demo
from api.keys import service as keys

TODAY = dt.date(2026, 5, 16)
# Path parameters, by name, with values the demo has.
PATH_VALUES: dict[str, Any] = {
    "slug": {
        "metrics": "311-call-center-performance",
        "analyses": "data-analytics-overview",
        "departments": "311",
    },
    "department": "311",
    "date": "2026-05-15",
}
# GETs whose 200 is not a JSON document (or that need a key), and what covers them instead.
NOT_JSON = {
    "/v1/metrics/{slug}/sparkline.svg",  # SVG: tests/web/test_charts.py
    "/v1/analyses.atom",  # Atom: tests/web
    # Frictionless Data Package: validated by frictionless itself in tests/compat.
    "/v1/datapackage.json",
}
PRIVATE = {"/v1/ingest/batches", "/v1/ingest/batches/{batch_id}", "/v1/audit"}  # key-scoped
# Outside /v1 the formats are other products' (SODA, CKAN, DCAT-US), checked by their own
# clients and schemas in tests/compat; /healthz and /readyz by tests/test_foundation.py.


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = PATH_VALUES[name]
        if isinstance(found, dict):
            return next(v for k, v in found.items() if f"/{k}/" in path)
        return found

    return re.sub(r"\{(\w+)\}", value, path)


def json_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def test_every_json_get_matches_its_declared_schema(client: TestClient, session: Session) -> None:
    demo.load(session, years=2, metrics=23, today=TODAY)
    _, token = keys.create(session, name="t", admin=True)
    session.flush()
    admin = {"Authorization": f"Bearer {token}"}
    row = {"metric": "311-call-center-performance", "date": "2026-05-15", "numerator": 1}
    posted = client.post("/v1/ingest/values", json=[{**row, "denominator": 2}], headers=admin)
    PATH_VALUES["batch_id"] = str(posted.json()["batch"])
    document = client.get("/v1/openapi.json").json()
    checked, without_schema = [], []
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or path in NOT_JSON or not path.startswith("/v1/"):
            continue
        schema = json_schema(operation)
        if schema is None:
            without_schema.append(path)
            continue
        headers = admin if path in PRIVATE else {}
        r = client.get(concrete(path), headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        root = {**schema, "components": document["components"]}
        jsonschema.Draft202012Validator(root).validate(r.json())
        checked.append(path)
    assert without_schema == []
    # The walk reached the endpoints that matter most (a document that lost them fails here).
    for path in (
        "/v1/cityscore",
        "/v1/cityscore/runs",
        "/v1/metrics/{slug}/revisions",
        "/v1/scorecards/{department}",
        "/v1/values",
        "/v1/ingest/batches/{batch_id}",
    ):
        assert path in checked, path
    assert len(checked) >= 20, checked
