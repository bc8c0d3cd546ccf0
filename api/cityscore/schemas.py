from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from api.schemas import page_example


class WindowRange(BaseModel):
    start: dt.date
    end: dt.date


class Windows(BaseModel):
    day: WindowRange
    week: WindowRange
    month: WindowRange
    quarter: WindowRange


class WindowScores(BaseModel):
    day: float | None
    week: float | None
    month: float | None
    quarter: float | None


class ScoreDetail(BaseModel):
    score: float | None
    numerator: float | None
    denominator: float | None


class CityScoreMetric(BaseModel):
    metric: str
    name: str
    department: str
    target: float | None
    metric_logic: str
    day: ScoreDetail
    week: ScoreDetail
    month: ScoreDetail
    quarter: ScoreDetail


class CityScore(BaseModel):
    as_of: dt.date
    windows: Windows
    score: WindowScores
    metrics: list[CityScoreMetric]


class HistoryRow(BaseModel):
    as_of: dt.date
    day: float | None
    week: float | None
    month: float | None
    quarter: float | None


HISTORY_COLUMNS = tuple(HistoryRow.model_fields)  # CSV header and row order


class History(BaseModel):
    model_config = page_example(
        "/v1/cityscore/history",
        {
            "as_of": "2026-05-16",
            "day": 1.0412,
            "week": 0.9876,
            "month": 1.0133,
            "quarter": 1.0051,
        },
    )

    data: list[HistoryRow]
    next: str | None


CSV_COLUMNS = (
    "metric",
    "name",
    "department",
    "as_of",
    "target",
    "metric_logic",
    *(
        f"{w}_{p}"
        for w in ("day", "week", "month", "quarter")
        for p in ("score", "numerator", "denominator")
    ),
)
