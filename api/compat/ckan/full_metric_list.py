"""Rows of Boston's Full Metric List, Summary and metric definitions, from our own figures.

TEMPORARY SOURCE: Boston's Full Metric List is the log of published scoring runs (one row per
CityScore metric per run). The runs log is built by another piece of work (issue 12,
``/v1/cityscore/runs``); until it lands, ``full_metric_list_rows`` builds a single run from the
current ``/v1/cityscore`` figures as of today. Everything here reads the run through that one
function, so swapping in the real runs log changes this module only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from api.changes import service as changes
from api.cityscore import publish
from api.http.csv import format_number
from api.metrics import service as metrics_service
from api.scoring.windows import WINDOW_NAMES, windows_as_of
from api.settings import Settings

FULL_METRIC_LIST_COLUMNS = (
    "metric_name",
    "score_calculated_ts",
    "target",
    "metric_logic",
    *(f"{w}_{p}" for w in WINDOW_NAMES for p in ("score", "numerator", "denominator")),
    "latest_score_flag",
)
SUMMARY_COLUMNS = (
    "metric_name",
    "score_calculated_ts",
    "score_final_table_ts",
    "previous_day_score",
    "previous_week_score",
    "previous_month_score",
    "previous_quarter_score",
    "score_day_name",
)
DEFINITION_COLUMNS = ("metric_name", "metric_title", "definition")
TOTAL_NAME = "CITYSCORE TOTAL"


def _text(value: Any) -> str | None:
    """Boston's datastore keeps every cell as text; a missing figure stays null."""
    if value is None:
        return None
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def _calculated_at(session: Session, settings: Settings) -> str:
    """When today's figures were (last) calculated, in city-local ``YYYY-MM-DD HH:MM:SS``."""
    version = changes.version(session, "scores")
    moment = max(version.last_modified or dt.datetime(1970, 1, 1), settings.today_began())
    local = moment.replace(tzinfo=dt.UTC).astimezone(settings.tz)
    return local.strftime("%Y-%m-%d %H:%M:%S")


def current_run(session: Session, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The single run published here for now: ``(score_calculated_ts, /v1/cityscore doc)``."""
    return _calculated_at(session, settings), publish.cityscore_document(session, settings.today())


def full_metric_list_rows(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Boston's Full Metric List (17 text columns), one row per CityScore metric per run.

    Runs will replace this: today it is ONE run built from the current /v1/cityscore figures,
    so every row has ``latest_score_flag`` "1".
    """
    stamp, doc = current_run(session, settings)
    rows = []
    for m in doc["metrics"]:
        row: dict[str, Any] = {
            "metric_name": m["name"],
            "score_calculated_ts": stamp,
            "target": _text(m["target"]),
            "metric_logic": m["metric_logic"],
        }
        for w in WINDOW_NAMES:
            for part in ("score", "numerator", "denominator"):
                row[f"{w}_{part}"] = _text(m[w][part])
        row["latest_score_flag"] = "1"
        rows.append(row)
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def summary_rows(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Boston's Summary for the latest run: the city's total first, then each metric."""
    stamp, doc = current_run(session, settings)
    day_name = windows_as_of(doc["as_of"])["day"].start.strftime("%A")

    def row(name: str, scores: dict[str, float | None]) -> dict[str, Any]:
        return {
            "metric_name": name,
            "score_calculated_ts": stamp,
            "score_final_table_ts": stamp,
            **{f"previous_{w}_score": _rounded(scores[w]) for w in WINDOW_NAMES},
            "score_day_name": day_name,
        }

    out = [row(TOTAL_NAME, doc["score"])]
    for m in doc["metrics"]:
        out.append(row(m["name"], {w: m[w]["score"] for w in WINDOW_NAMES}))
    return out


def definition_rows(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Metric definitions: Boston's ``metric_name, metric_title, definition``."""
    listing = metrics_service.listing(session, settings.today(), in_cityscore=True)
    columns = listing.columns
    out = []
    for values in listing.fetch(None, None):
        metric = dict(zip(columns, values, strict=True))
        out.append(
            {
                "metric_name": metric["name"],
                "metric_title": metric["name"],
                "definition": metric["description"],
            }
        )
    return out
