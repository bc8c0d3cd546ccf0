from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from api.cityscore.schemas import WindowScores
from api.schemas import page_example

SCORECARD_CSV_COLUMNS = (
    "metric",
    "name",
    "target",
    "latest_date",
    "latest_value",
    "day",
    "week",
    "month",
    "quarter",
    "status",
)


class ScorecardRow(BaseModel):
    department: str
    name: str
    cabinet: str | None
    as_of: dt.date
    metrics: int
    day: float | None
    week: float | None
    month: float | None
    quarter: float | None
    below_target: int


SCORECARD_COLUMNS = tuple(ScorecardRow.model_fields)  # CSV header and row order


class ScorecardList(BaseModel):
    model_config = page_example(
        "/v1/scorecards",
        {
            "department": "311",
            "name": "311 Customer Service",
            "cabinet": "Operations",
            "as_of": "2026-05-16",
            "metrics": 1,
            "day": 1.041944964,
            "week": 1.032246958,
            "month": 0.992346962,
            "quarter": 0.991979191,
            "below_target": 0,
        },
    )

    data: list[ScorecardRow]
    next: str | None


class Latest(BaseModel):
    date: dt.date
    value: float | None


class TrendPoint(BaseModel):
    week_start: dt.date
    score: float | None


class ScorecardMetric(BaseModel):
    metric: str
    name: str
    target: float | None
    latest: Latest | None
    day: float | None
    week: float | None
    month: float | None
    quarter: float | None
    status: Literal["above_target", "below_target", "not_scored", "no_data"] = Field(
        description="From the week score: above_target (>= 1), below_target (< 1), not_scored "
        "(the week has data but no score, e.g. zero events against a historical average), "
        "no_data (no value in the week)"
    )
    trend: list[TrendPoint]


class Scorecard(BaseModel):
    department: str
    name: str
    cabinet: str | None
    as_of: dt.date
    score: WindowScores
    metrics: list[ScorecardMetric]
