"""The CKAN package ``cityscore`` and its four datastore resources, with Boston's ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from api.compat.ckan import full_metric_list as fml
from api.settings import Settings

PACKAGE_NAME = "cityscore"
PACKAGE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "cityscore-api:package:cityscore"))
FULL_METRIC_LIST_ID = "dd657c02-3443-4c00-8b29-56a40cfe7ee4"
DEFINITIONS_ID = "db7b8b86-5c35-45b2-9276-5a6527ae6edc"
SUMMARY_ID = "cityscore-summary"
DAILY_VALUES_ID = "daily-values"

Rows = Callable[[Session, Settings], list[dict[str, Any]]]


@dataclass(frozen=True)
class Resource:
    id: str
    name: str
    description: str
    fields: tuple[tuple[str, str], ...]  # (id, CKAN type), after "_id"
    scopes: tuple[str, ...]
    rows: Rows | None = None  # small resources: every row, computed per request
    dataset: str | None = None  # large resources: a compat dataset queried in SQL

    def field_ids(self) -> list[str]:
        return ["_id", *(f for f, _ in self.fields)]

    def field_types(self) -> dict[str, str]:
        return {"_id": "int", **dict(self.fields)}


RESOURCES = (
    Resource(
        FULL_METRIC_LIST_ID,
        "CityScore Full Metric List",
        "Every CityScore metric's day, week, month and quarter scores per scoring run "
        "(text values, as in Boston's datastore): the runs log of /v1/cityscore/runs.csv.",
        tuple((c, "text") for c in fml.FULL_METRIC_LIST_COLUMNS),
        ("scores", "metrics"),
        rows=fml.full_metric_list_rows,
    ),
    Resource(
        DEFINITIONS_ID,
        "CityScore Metric Definitions",
        "What each CityScore metric measures.",
        tuple((c, "text") for c in fml.DEFINITION_COLUMNS),
        ("metrics",),
        rows=fml.definition_rows,
    ),
    Resource(
        SUMMARY_ID,
        "CityScore Summary",
        "The latest run's scores per window, the city's total first (rounded to 6 decimals).",
        (
            ("metric_name", "text"),
            ("score_calculated_ts", "text"),
            ("score_final_table_ts", "text"),
            ("previous_day_score", "numeric"),
            ("previous_week_score", "numeric"),
            ("previous_month_score", "numeric"),
            ("previous_quarter_score", "numeric"),
            ("score_day_name", "text"),
        ),
        ("scores", "metrics"),
        rows=fml.summary_rows,
    ),
    Resource(
        DAILY_VALUES_ID,
        "Daily metric values",
        "Every metric's daily value. `_id` is stable: metric id x 10,000,000 + the day's "
        "ordinal, so sorting by `_id` is (metric, date) order.",
        (
            ("metric", "text"),
            ("department", "text"),
            ("date", "date"),
            ("value", "numeric"),
            ("numerator", "numeric"),
            ("denominator", "numeric"),
            ("updated_at", "timestamp"),
        ),
        ("values", "metrics"),
        dataset="values",
    ),
)
BY_ID = {r.id: r for r in RESOURCES}
