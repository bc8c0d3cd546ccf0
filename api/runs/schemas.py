"""Published runs: request and response models, and Boston's column lists."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from api.schemas import Body, example, page_example
from api.scoring.windows import WINDOW_NAMES

FIGURE_COLUMNS = tuple(
    f"{w}_{p}" for w in WINDOW_NAMES for p in ("score", "numerator", "denominator")
)
# Boston's "CityScore Full Metric List", its 17 columns in Boston's order and names.
FULL_METRIC_LIST_COLUMNS = (
    "metric_name",
    "score_calculated_ts",
    "target",
    "metric_logic",
    *FIGURE_COLUMNS,
    "latest_score_flag",
)


class RunIn(Body):
    model_config = example({"as_of": "2026-05-16"}, extra="forbid")

    as_of: dt.date


class RunOut(BaseModel):
    model_config = example(
        {"as_of": "2026-05-16", "published_at": "2026-05-16T11:00:04.123456Z", "archived": False}
    )

    as_of: dt.date
    published_at: dt.datetime
    archived: bool


class RunRow(BaseModel):
    as_of: dt.date
    published_at: dt.datetime
    revised: bool
    archived: bool


RUN_COLUMNS = tuple(RunRow.model_fields)  # CSV header and row order


class RunList(BaseModel):
    model_config = page_example(
        "/v1/cityscore/runs",
        {
            "as_of": "2026-05-16",
            "published_at": "2026-05-16T11:00:04.123456Z",
            "revised": False,
            "archived": False,
        },
    )

    data: list[RunRow]
    next: str | None


class SummaryRow(BaseModel):
    metric_name: str
    score_calculated_ts: str
    score_final_table_ts: str
    previous_day_score: float | None
    previous_week_score: float | None
    previous_month_score: float | None
    previous_quarter_score: float | None
    score_day_name: str


# Boston's "CityScore Summary".
SUMMARY_COLUMNS = tuple(SummaryRow.model_fields)  # CSV header and row order


class Summary(BaseModel):
    model_config = page_example(
        "/v1/cityscore/summary",
        {
            "metric_name": "311 Call Center Performance",
            "score_calculated_ts": "2026-05-16 07:00:04",
            "score_final_table_ts": "2026-05-16 07:00:04",
            "previous_day_score": 1.041944,
            "previous_week_score": 1.032247,
            "previous_month_score": 0.992347,
            "previous_quarter_score": 0.991979,
            "score_day_name": "Friday",
        },
    )

    data: list[SummaryRow]
    next: str | None
