from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas import Body, FiniteFloat, Slug, example, page_example
from api.scoring.kinds import Aggregation, Direction, Reference


def targets_cell(targets: list[dict[str, Any]]) -> str:
    """A metric's targets as one CSV cell: ``effective_from=value`` joined with ``;``."""
    return ";".join(f"{t['effective_from']}={t['value']!r}" for t in targets)


METRIC_EXAMPLE: dict[str, Any] = {
    "slug": "311-call-center-performance",
    "name": "311 Call Center Performance",
    "description": "Share of calls answered within 30 seconds.",
    "department": "311",
    "unit": "share of calls",
    "direction": "higher_is_better",
    "aggregation": "pooled_ratio",
    "reference": "target",
    "target": 0.95,
    "targets": [{"effective_from": "2016-01-01", "value": 0.95}],
    "baseline_years": 10,
    "in_cityscore": True,
    "metric_logic": "sum(numerator_value)/sum(denominator_value)/target",
    "source_url": None,
    "updated_at": "2026-05-16T04:00:12.345678Z",
}


class TargetIn(Body):
    model_config = ConfigDict(extra="forbid")

    effective_from: dt.date
    value: FiniteFloat = Field(gt=0)


class MetricIn(Body):
    model_config = example(
        {k: METRIC_EXAMPLE[k] for k in ("name", "description", "department", "unit")}
        | {k: METRIC_EXAMPLE[k] for k in ("direction", "aggregation", "reference", "targets")}
        | {"in_cityscore": True},
        extra="forbid",
    )

    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    department: Slug
    unit: str | None = Field(default=None, max_length=100)
    direction: Direction
    aggregation: Aggregation
    reference: Reference
    targets: list[TargetIn] = Field(default_factory=list)
    baseline_years: int = Field(default=10, ge=1, le=50)
    in_cityscore: bool = True
    source_url: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _targets_match_reference(self) -> MetricIn:
        if self.reference == "target" and not self.targets:
            raise ValueError("a metric scored against a target needs at least one target")
        if self.reference == "baseline" and self.targets:
            raise ValueError("a baseline metric has no targets (targets must be [])")
        days = [t.effective_from for t in self.targets]
        if len(set(days)) != len(days):
            raise ValueError("two targets share an effective_from date")
        return self


class TargetOut(BaseModel):
    effective_from: dt.date
    value: float


class MetricOut(BaseModel):
    slug: str
    name: str
    description: str | None
    department: str
    unit: str | None
    direction: Direction
    aggregation: Aggregation
    reference: Reference
    target: float | None
    targets: list[TargetOut]
    baseline_years: int
    in_cityscore: bool
    metric_logic: str
    source_url: str | None
    updated_at: dt.datetime


METRIC_COLUMNS = tuple(MetricOut.model_fields)  # the CSV header and row order


class MetricList(BaseModel):
    model_config = page_example("/v1/metrics", METRIC_EXAMPLE)

    data: list[MetricOut]
    next: str | None


class MetricRevisionOut(BaseModel):
    """One version of a metric definition; ``valid_from`` is when it was written."""

    revision: int
    valid_from: dt.datetime
    current: bool
    slug: str
    name: str
    description: str | None
    department: str | None
    unit: str | None
    direction: Direction
    aggregation: Aggregation
    reference: Reference
    targets: list[TargetOut]
    baseline_years: int
    in_cityscore: bool
    metric_logic: str
    source_url: str | None


class MetricRevisionList(BaseModel):
    model_config = page_example(
        "/v1/metrics/311-call-center-performance/revisions",
        {
            "revision": 1,
            "valid_from": "2026-05-16T04:00:12.345678Z",
            "current": True,
            **{k: v for k, v in METRIC_EXAMPLE.items() if k not in ("target", "updated_at")},
        },
    )

    data: list[MetricRevisionOut]
    next: str | None
