"""The compatibility endpoints are in the OpenAPI document, every parameter described."""

from __future__ import annotations

import json

from api.openapi import render

COMPAT_PATHS = (
    "/resource/{dataset}.json",
    "/resource/{dataset}.csv",
    "/api/views/{dataset}.json",
    "/api/3/action/package_list",
    "/api/3/action/package_show",
    "/api/3/action/resource_show",
    "/api/3/action/datastore_search",
    "/api/3/action/datastore_search_sql",
    "/datastore/dump/{resource_id}",
    "/data.json",
    "/v1/datapackage.json",
)


def test_compat_endpoints_are_documented() -> None:
    paths = json.loads(render())["paths"]
    for path in COMPAT_PATHS:
        assert path in paths, path
        for method, operation in paths[path].items():
            assert operation.get("description") or operation.get("summary"), (path, method)
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (path, method, parameter["name"])
    soda = [p["name"] for p in paths["/resource/{dataset}.json"]["get"]["parameters"]]
    assert soda == [
        "dataset",
        "$select",
        "$where",
        "$order",
        "$group",
        "$limit",
        "$offset",
        "$q",
        "X-App-Token",
    ]
    search = paths["/api/3/action/datastore_search"]
    assert "post" in search and "requestBody" in search["post"]
    assert "422" not in search["post"]["responses"]
