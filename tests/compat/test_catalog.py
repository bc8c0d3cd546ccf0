"""``/data.json`` against the published DCAT-US 1.1 JSON Schemas, ``/v1/datapackage.json``
through the real ``frictionless validate`` on the live CSVs, and every CSV through pandas.

The DCAT-US schemas are read from GSA's ``ckanext-datajson`` 0.1.29 package (PyPI; installed
by ``make install``), ``ckanext/datajson/pod_schema/``: ``non-federal-v1.1`` (the schema for
non-federal catalogues, which docs/contract.md asks for) and ``federal-v1.1`` (the same files as
project-open-data.github.io's ``v1.1/schema``).
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import frictionless
import httpx
import jsonschema
import pandas as pd
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.compat.conftest import Live

POD_BASE = "https://project-open-data.cio.gov/v1.1/schema/"


def schema_dir(flavour: str) -> Path:
    dist = importlib.metadata.distribution("ckanext-datajson")
    path = Path(str(dist.locate_file(f"ckanext/datajson/pod_schema/{flavour}")))
    assert (path / "catalog.json").is_file(), "run `make install` (ckanext-datajson schemas)"
    return path


def validator(flavour: str) -> jsonschema.Draft4Validator:
    folder = schema_dir(flavour)
    documents = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}
    registry: Registry[Any] = Registry().with_resources(
        (POD_BASE + name, Resource.from_contents(doc, default_specification=DRAFT4))
        for name, doc in documents.items()
    )
    return jsonschema.Draft4Validator(
        documents["catalog.json"], registry=registry, format_checker=jsonschema.FormatChecker()
    )


def errors(flavour: str, catalogue: dict[str, Any]) -> list[str]:
    found = validator(flavour).iter_errors(catalogue)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found)


def test_data_json_is_valid_dcat_us(live: Live) -> None:
    r = httpx.get(live.url + "/data.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    catalogue = r.json()
    assert errors("non-federal-v1.1", catalogue) == []
    names = {d["identifier"].rsplit("/v1/", 1)[1] for d in catalogue["dataset"]}
    assert {"values", "metrics", "cityscore", "departments", "scorecards"} <= names
    for dataset in catalogue["dataset"]:
        formats = {d["format"]: d["downloadURL"] for d in dataset["distribution"]}
        assert set(formats) == {"CSV", "JSON"}
        assert httpx.get(formats["CSV"]).headers["content-type"].startswith("text/csv")
    # the federal schema differs only in the federal agency codes a city does not have
    federal = {e.split(": ", 1)[1] for e in errors("federal-v1.1", catalogue)}
    assert federal == {
        "'bureauCode' is a required property",
        "'programCode' is a required property",
    }


def test_the_schema_check_can_fail(live: Live) -> None:
    catalogue = httpx.get(live.url + "/data.json").json()
    broken = copy.deepcopy(catalogue)
    del broken["dataset"][0]["title"]
    broken["dataset"][1]["contactPoint"]["hasEmail"] = "not-an-email"
    found = errors("non-federal-v1.1", broken)
    assert any("'title' is a required property" in e for e in found)
    assert any("hasEmail" in e for e in found)


def test_datapackage_validates_the_live_csvs(live: Live) -> None:
    url = live.url + "/v1/datapackage.json"
    descriptor = httpx.get(url).json()
    assert [r["path"] for r in descriptor["resources"]][:3] == [
        f"{live.url}/v1/departments.csv",
        f"{live.url}/v1/metrics.csv",
        f"{live.url}/v1/values.csv",
    ]
    report = frictionless.validate(url)
    problems = report.flatten(["taskNumber", "rowNumber", "fieldName", "type", "note"])
    assert report.valid, problems[:20]
    assert [t.name for t in report.tasks] == [r["name"] for r in descriptor["resources"]]
    assert all(t.stats["rows"] for t in report.tasks if t.name != "analyses")


def test_the_package_check_can_fail(live: Live) -> None:
    descriptor = httpx.get(live.url + "/v1/datapackage.json").json()
    values = next(r for r in descriptor["resources"] if r["name"] == "values")
    values["schema"]["fields"][0]["type"] = "integer"  # metric slugs are not integers
    report = frictionless.Resource(values).validate()
    assert not report.valid


PANDAS = {
    "string": pd.api.types.is_string_dtype,
    "number": lambda s: pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s),
    "integer": pd.api.types.is_integer_dtype,
    "boolean": pd.api.types.is_bool_dtype,
    "date": pd.api.types.is_datetime64_any_dtype,
    "datetime": pd.api.types.is_datetime64_any_dtype,
}


@pytest.mark.parametrize("extra", ["", "?bom=true"])
def test_every_csv_reads_into_pandas_with_only_parse_dates(live: Live, extra: str) -> None:
    descriptor = httpx.get(live.url + "/v1/datapackage.json").json()
    for resource in descriptor["resources"]:
        fields = resource["schema"]["fields"]
        dates = [f["name"] for f in fields if f["type"] in ("date", "datetime")]
        frame = pd.read_csv(resource["path"] + extra, parse_dates=dates)
        assert list(frame.columns) == [f["name"] for f in fields], resource["name"]
        if frame.empty:
            continue
        for field in fields:
            column = frame[field["name"]]
            if column.isna().all():
                continue  # an empty column has no type to check
            assert PANDAS[field["type"]](column), (resource["name"], field, column.dtype)
    values = pd.read_csv(live.url + "/v1/values.csv", parse_dates=["date", "updated_at"])
    assert values["department"].notna().all()
    slug = values["metric"].iloc[0]
    per_metric = pd.read_csv(live.url + f"/v1/metrics/{slug}/values.csv", parse_dates=["start"])
    assert set(per_metric["metric"]) == {slug}
