"""The committed OpenAPI document matches the code, and operation ids are stable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.openapi import render

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    assert COMMITTED.read_text() == render(), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_every_operation_has_an_explicit_id() -> None:
    spec = json.loads(render())
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all("_" not in i for i in ids), ids  # our camelCase ids, not FastAPI's generated ones


# --- the document is complete enough to use from /docs and to generate clients ---------------

DATE_PARAMETERS = {"start", "end", "as_of", "date"}


def _spec() -> dict[str, Any]:
    return dict(json.loads(render()))


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return dict(spec["components"]["schemas"][ref.rsplit("/", 1)[1]])


def _is_collection(spec: dict[str, Any], op: dict[str, Any]) -> bool:
    content = op["responses"].get("200", {}).get("content", {}).get("application/json", {})
    props = _resolve(spec, content.get("schema", {})).get("properties", {})
    return {"data", "next"} <= set(props)


def test_every_operation_and_parameter_is_described() -> None:
    """Applies to every endpoint, including the ones added later."""
    spec = _spec()
    missing = []
    for method, path, op in _operations(spec):
        if not op.get("description", "").strip():
            missing.append(f"{method.upper()} {path}: no description (write a docstring)")
        for param in op.get("parameters", []):
            where = f"{method.upper()} {path} {param['in']} parameter {param['name']}"
            if not param.get("description", "").strip():
                missing.append(f"{where}: no description")
            if "type" not in param.get("schema", {}):
                missing.append(f"{where}: no type")
            if param["name"] in DATE_PARAMETERS and param["schema"].get("format") != "date":
                missing.append(f"{where}: not format: date (use api.http.params.date_query)")
    assert missing == []


def test_collections_declare_limit_cursor_and_bom() -> None:
    spec = _spec()
    collections = 0
    for method, path, op in _operations(spec):
        names = {p["name"] for p in op.get("parameters", [])}
        if _is_collection(spec, op):
            collections += 1
            assert {"limit", "cursor"} <= names, f"{method} {path}: dependencies=PAGED"
            limit = next(p for p in op["parameters"] if p["name"] == "limit")
            assert limit["schema"] == {
                "type": "integer",
                "minimum": 1,
                "maximum": 10000,
                "title": "Limit",
            }
        # SODA's /resource/*.csv follows Socrata's parameters (a "bom" there is a column filter).
        csv_form = "text/csv" in op["responses"].get("200", {}).get("content", {})
        if csv_form and not path.startswith("/resource/"):
            assert "bom" in names, f"{method} {path}: a CSV form needs bom (CSV_FORM or PAGED)"
    assert collections >= 10


def test_every_request_body_and_collection_has_an_example() -> None:
    spec = _spec()
    missing = []
    for method, path, op in _operations(spec):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            schema = _resolve(spec, content.get("schema", {}))
            if not ({"example", "examples"} & set(content) or "examples" in schema):
                missing.append(f"{method.upper()} {path} request body {media}")
        if _is_collection(spec, op):
            content = op["responses"]["200"]["content"]["application/json"]
            if "examples" not in _resolve(spec, content["schema"]):
                missing.append(f"{method.upper()} {path} response (model_config = page_example)")
    assert missing == []


def test_writes_declare_the_bearer_scheme_so_docs_can_authorize() -> None:
    spec = _spec()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `cityscore keys create`: `Authorization: Bearer cs_...`.",
    }
    for method, path, op in _operations(spec):
        needs_key = "401" in op["responses"]
        assert (op.get("security") == [{"bearer": []}]) == needs_key, f"{method} {path}"
    assert spec["paths"]["/v1/ingest/values"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/v1/cityscore"]["get"]
