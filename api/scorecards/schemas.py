from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

from api.cityscore.schemas import WindowScores

SCORECARD_COLUMNS = (
    "department",
    "name",
    "cabinet",
    "as_of",
    "metrics",
    "day",
    "week",
    "month",
    "quarter",
    "below_target",
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


class ScorecardList(BaseModel):
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
    status: Literal["above_target", "below_target", "no_data"]
    trend: list[TrendPoint]


class Scorecard(BaseModel):
    department: str
    name: str
    cabinet: str | None
    as_of: dt.date
    score: WindowScores
    metrics: list[ScorecardMetric]
