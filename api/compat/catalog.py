"""Catalogues harvesters read: DCAT-US 1.1 ``/data.json`` and a Frictionless ``datapackage.json``.

Both list the same datasets: each public CSV collection, with its Table Schema derived from the
API's own public schemas (so a column added to a schema shows up here too).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import Session
from starlette.responses import Response

from api.analyses.schemas import ANALYSIS_COLUMNS, AnalysisOut
from api.changes import service as changes
from api.cityscore.schemas import CSV_COLUMNS, HISTORY_COLUMNS, HistoryRow
from api.departments.schemas import DEPARTMENT_COLUMNS, DepartmentOut
from api.deps import SessionDep, SettingsDep
from api.http.respond import hashed
from api.metrics.schemas import METRIC_COLUMNS, MetricOut
from api.scorecards.schemas import SCORECARD_COLUMNS, ScorecardRow
from api.settings import Settings
from api.values.schemas import VALUE_COLUMNS, ValueRow

router = APIRouter(tags=["compat: catalogues"])

DCAT_CONTEXT = "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld"
DCAT_SCHEMA = "https://project-open-data.cio.gov/v1.1/schema"
LICENSE = "https://opendatacommons.org/licenses/pddl/1-0/"


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    description: str
    path: str  # the JSON collection; CSV is path + ".csv"
    columns: tuple[str, ...]
    types: dict[str, str]  # Table Schema type per column
    primary_key: tuple[str, ...]
    scopes: tuple[str, ...]
    keywords: tuple[str, ...]


def _type(annotation: Any) -> str:
    """A Table Schema type for a pydantic field annotation (lists are ';'-joined strings)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and args:
        return _type(args[0])
    if origin is list:
        return "string"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is dt.datetime:
        return "datetime"
    if annotation is dt.date:
        return "date"
    return "string"


def _types(model: type[BaseModel], columns: tuple[str, ...]) -> dict[str, str]:
    fields = model.model_fields
    return {c: _type(fields[c].annotation) for c in columns}


def _cityscore_types() -> dict[str, str]:
    text = {"metric", "name", "department", "metric_logic"}
    return {c: "string" if c in text else "date" if c == "as_of" else "number" for c in CSV_COLUMNS}


ENTRIES = (
    Entry(
        "departments",
        "Departments",
        "The city's departments and their cabinets.",
        "/v1/departments",
        DEPARTMENT_COLUMNS,
        _types(DepartmentOut, DEPARTMENT_COLUMNS),
        ("slug",),
        ("departments",),
        ("departments", "cabinets"),
    ),
    Entry(
        "metrics",
        "Metric catalogue",
        "Every performance metric: department, unit, direction, aggregation, targets.",
        "/v1/metrics",
        METRIC_COLUMNS,
        _types(MetricOut, METRIC_COLUMNS),
        ("slug",),
        ("metrics",),
        ("metrics", "targets", "performance"),
    ),
    Entry(
        "values",
        "Daily metric values",
        "Every metric's daily value, numerator and denominator.",
        "/v1/values",
        VALUE_COLUMNS,
        _types(ValueRow, VALUE_COLUMNS),
        ("metric", "date"),
        ("values", "metrics"),
        ("metrics", "daily values", "performance"),
    ),
    Entry(
        "cityscore",
        "CityScore today (Full Metric List columns)",
        "Today's CityScore: one row per metric with its day, week, month and quarter scores.",
        "/v1/cityscore",
        CSV_COLUMNS,
        _cityscore_types(),
        ("metric",),
        ("scores",),
        ("cityscore", "scores", "performance"),
    ),
    Entry(
        "cityscore-history",
        "CityScore history",
        "CityScore per as-of date over the last year.",
        "/v1/cityscore/history",
        HISTORY_COLUMNS,
        _types(HistoryRow, HISTORY_COLUMNS),
        ("as_of",),
        ("scores",),
        ("cityscore", "history"),
    ),
    Entry(
        "scorecards",
        "Department scorecards",
        "Each department's scores today and how many of its metrics are below target.",
        "/v1/scorecards",
        SCORECARD_COLUMNS,
        _types(ScorecardRow, SCORECARD_COLUMNS),
        ("department",),
        ("scores", "departments", "metrics"),
        ("scorecards", "departments"),
    ),
    Entry(
        "analyses",
        "Analyses",
        "The analytics team's written analyses.",
        "/v1/analyses",
        ANALYSIS_COLUMNS,
        _types(AnalysisOut, ANALYSIS_COLUMNS),
        ("slug",),
        ("analyses",),
        ("analyses", "reports"),
    ),
)


def _base(request: Request, settings: Settings) -> str:
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


def _modified(session: Session, entry: Entry) -> str:
    last = changes.version(session, *entry.scopes).last_modified or dt.datetime(1970, 1, 1)
    return last.replace(microsecond=0).isoformat() + "Z"


def table_schema(entry: Entry) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"name": c, "type": entry.types[c]} for c in entry.columns]
    for field in fields:
        if field["type"] == "boolean":
            field["trueValues"], field["falseValues"] = ["true"], ["false"]
    return {"fields": fields, "primaryKey": list(entry.primary_key), "missingValues": [""]}


def datapackage(base: str, settings: Settings) -> dict[str, Any]:
    """A Frictionless Data Package: one resource per CSV, each with its Table Schema."""
    return {
        "name": "cityscore",
        "title": f"{settings.city_name} CityScore",
        "profile": "tabular-data-package",
        "licenses": [{"name": "PDDL-1.0", "path": LICENSE, "title": "ODC PDDL 1.0"}],
        "resources": [
            {
                "name": e.name,
                "title": e.title,
                "description": e.description,
                "path": f"{base}{e.path}.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": table_schema(e),
            }
            for e in ENTRIES
        ],
    }


def _dcat_dataset(session: Session, settings: Settings, base: str, e: Entry) -> dict[str, Any]:
    return {
        "@type": "dcat:Dataset",
        "identifier": f"{base}{e.path}",
        "title": f"{settings.city_name} {e.title}",
        "description": e.description,
        "keyword": list(e.keywords),
        "modified": _modified(session, e),
        "publisher": {"@type": "org:Organization", "name": f"City of {settings.city_name}"},
        "contactPoint": {
            "@type": "vcard:Contact",
            "fn": settings.catalog_contact_name,
            "hasEmail": f"mailto:{settings.catalog_contact_email}",
        },
        "accessLevel": "public",
        "license": LICENSE,
        "spatial": settings.city_name,
        "accrualPeriodicity": "R/P1D",
        "landingPage": f"{base}/docs",
        "describedBy": f"{base}/v1/datapackage.json",
        "describedByType": "application/json",
        "distribution": [
            {
                "@type": "dcat:Distribution",
                "title": f"{e.title} (CSV)",
                "downloadURL": f"{base}{e.path}.csv",
                "mediaType": "text/csv",
                "format": "CSV",
            },
            {
                "@type": "dcat:Distribution",
                "title": f"{e.title} (JSON)",
                "downloadURL": f"{base}{e.path}",
                "mediaType": "application/json",
                "format": "JSON",
            },
        ],
    }


def data_json(session: Session, settings: Settings, base: str) -> dict[str, Any]:
    """The DCAT-US 1.1 catalogue of every dataset, a distribution per format."""
    return {
        "@context": DCAT_CONTEXT,
        "@id": f"{base}/data.json",
        "@type": "dcat:Catalog",
        "conformsTo": DCAT_SCHEMA,
        "describedBy": "https://project-open-data.cio.gov/v1.1/schema/catalog.json",
        "dataset": [_dcat_dataset(session, settings, base, e) for e in ENTRIES],
    }


@router.get("/data.json", operation_id="dcatCatalog", summary="DCAT-US 1.1 catalogue")
def get_data_json(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Every dataset with a CSV and a JSON distribution (Project Open Data's data.json)."""
    body = data_json(session, settings, _base(request, settings))
    scopes = sorted({s for e in ENTRIES for s in e.scopes})
    return hashed(request, orjson.dumps(body), changes.version(session, *scopes))


@router.get("/v1/datapackage.json", operation_id="dataPackage", summary="Frictionless Data Package")
def get_datapackage(request: Request, settings: SettingsDep) -> Response:
    """Every CSV as a Data Package resource with its Table Schema."""
    return hashed(request, orjson.dumps(datapackage(_base(request, settings), settings)))
