from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from api.schemas import page_example

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


VALUE_COLUMNS = tuple(ValueRow.model_fields)  # CSV header and row order


class ValueList(BaseModel):
    model_config = page_example(
        "/v1/values",
        {
            "metric": "311-call-center-performance",
            "date": "2026-05-15",
            "value": 0.940355329949239,
            "numerator": 741.0,
            "denominator": 788.0,
            "deleted": False,
            "updated_at": "2026-05-16T04:00:12.345678Z",
        },
    )

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


PERIOD_COLUMNS = tuple(PeriodRow.model_fields)  # CSV header and row order


class PeriodList(BaseModel):
    model_config = page_example(
        "/v1/metrics/311-call-center-performance/values",
        {
            "start": "2026-05-04",
            "end": "2026-05-10",
            "value": 0.931602879878742,
            "numerator": 4917.0,
            "denominator": 5278.0,
            "days": 7,
        },
    )

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


REVISION_COLUMNS = tuple(RevisionRow.model_fields)  # CSV header and row order


class RevisionList(BaseModel):
    model_config = page_example(
        "/v1/metrics/311-call-center-performance/values/2026-05-15/revisions",
        {
            "metric": "311-call-center-performance",
            "date": "2026-05-15",
            "value": 0.940355329949239,
            "numerator": 741.0,
            "denominator": 788.0,
            "deleted": False,
            "batch": 42,
            "recorded_at": "2026-05-16T04:00:12.345678Z",
            "current": True,
        },
    )

    data: list[RevisionRow]
    next: str | None
