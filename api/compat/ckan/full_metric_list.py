"""Boston's Full Metric List, Summary and metric definitions as CKAN datastore rows.

The Full Metric List is the runs log (``/v1/cityscore/runs.csv``, ``api.runs.service``): one
row per CityScore metric per published run, every cell as text, as in Boston's datastore.
The Summary is the latest run's, with the city's total first.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from api.http.csv import format_number
from api.metrics import service as metrics_service
from api.runs import service as runs_service
from api.runs.schemas import FULL_METRIC_LIST_COLUMNS, SUMMARY_COLUMNS
from api.scoring.scores import mean_score
from api.scoring.windows import WINDOW_NAMES
from api.settings import Settings

DEFINITION_COLUMNS = ("metric_name", "metric_title", "definition")
TOTAL_NAME = "CITYSCORE TOTAL"


def _text(value: Any) -> str | None:
    """Boston's datastore keeps every cell as text; a missing figure stays null."""
    if value is None:
        return None
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def full_metric_list_rows(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Boston's Full Metric List (17 text columns), one row per CityScore metric per run."""
    return [
        {c: _text(v) for c, v in zip(FULL_METRIC_LIST_COLUMNS, row, strict=True)}
        for row in runs_service.full_metric_list(session, settings.tz, None, None)
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def summary_rows(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Boston's Summary for the latest run: the city's total first (the plain mean of the
    metrics' unrounded scores per window, as CityScore is), then each metric; empty before
    any run."""
    run = runs_service.latest_run(session)
    if run is None:
        return []
    tz = settings.tz
    rows = [
        dict(zip(SUMMARY_COLUMNS, r, strict=True))
        for r in runs_service.summary_rows(session, run, tz)
    ]
    if not rows:
        return []
    changed = runs_service.definitions_changed_at(session)
    full = runs_service.run_rows(session, run, tz, 0, changed)
    score_at = {w: FULL_METRIC_LIST_COLUMNS.index(f"{w}_score") for w in WINDOW_NAMES}
    total = {
        **rows[0],
        "metric_name": TOTAL_NAME,
        **{
            f"previous_{w}_score": _rounded(mean_score([_number(r[i]) for r in full]))
            for w, i in score_at.items()
        },
    }
    return [total, *rows]


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


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
