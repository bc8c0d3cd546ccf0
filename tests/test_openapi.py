"""The committed OpenAPI document matches the code, and operation ids are stable."""

from __future__ import annotations

import json
from pathlib import Path

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
