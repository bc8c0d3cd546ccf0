from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

VALUE_COLUMNS = (
    "metric",
    "department",
    "date",
    "value",
    "numerator",
    "denominator",
    "deleted",
    "updated_at",
)
PERIOD_COLUMNS = ("metric", "start", "end", "value", "numerator", "denominator", "days")
REVISION_COLUMNS = (
    "metric",
    "date",
    "value",
    "numerator",
    "denominator",
    "deleted",
    "batch",
    "recorded_at",
    "current",
)
INTERVALS = ("day", "week", "month", "quarter", "year")


class ValueRow(BaseModel):
    metric: str
    department: str
    date: dt.date
    value: float | None
    numerator: float | None
    denominator: float | None
    deleted: bool
    updated_at: dt.datetime


class ValueList(BaseModel):
    data: list[ValueRow]
    next: str | None


class PeriodRow(BaseModel):
    metric: str
    start: dt.date
    end: dt.date
    value: float | None
    numerator: float | None
    denominator: float | None
    days: int


class PeriodList(BaseModel):
    data: list[PeriodRow]
    next: str | None


class RevisionRow(BaseModel):
    metric: str
    date: dt.date
    value: float | None
    numerator: float | None
    denominator: float | None
    deleted: bool
    batch: int | None
    recorded_at: dt.datetime
    current: bool


class RevisionList(BaseModel):
    data: list[RevisionRow]
    next: str | None
