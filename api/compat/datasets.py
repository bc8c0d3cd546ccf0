"""The tables the compatibility layers query: SODA's datasets and CKAN's daily-values resource.

Each dataset is a whitelist of public columns, each a Core expression over the same tables the
API's own services read, plus the unique key that gives the default order (index-backed, so
paging can seek instead of counting rows). Query text never becomes SQL: parsers resolve names
only through ``Dataset.column``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, FromClause, select

from db.models import (
    CityScoreDaily,
    Department,
    Metric,
    MetricTarget,
    MetricValue,
    metric_scores_view,
)

V = MetricValue.__table__  # type: ignore[attr-defined]
M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]
S = metric_scores_view  # one row per metric per as-of date, over the score runs
C = CityScoreDaily.__table__  # type: ignore[attr-defined]

# SODA's data types (X-SODA2-Types, dataTypeName).
TEXT, NUMBER, TIMESTAMP, CHECKBOX = "text", "number", "floating_timestamp", "checkbox"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    expr: Any
    description: str


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str
    columns: tuple[Column, ...]
    from_: FromClause
    key: tuple[Any, ...]
    base_where: ColumnElement[bool] | None = None
    scopes: tuple[str, ...] = ()
    by_name: dict[str, Column] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_name.update({c.name: c for c in self.columns})

    def column(self, name: str) -> Column | None:
        return self.by_name.get(name)


def _values() -> Dataset:
    return Dataset(
        id="values",
        name="Daily metric values",
        description="Every metric's daily value, one row per metric per local calendar day.",
        columns=(
            Column("metric", TEXT, M.c.slug, "Metric slug"),
            Column("department", TEXT, D.c.slug, "Department slug"),
            Column("date", TIMESTAMP, V.c.date, "The city's local calendar day"),
            Column(
                "value", NUMBER, V.c.value, "The day's value (numerator/denominator for ratios)"
            ),
            Column("numerator", NUMBER, V.c.numerator, "Ratio metrics: the day's numerator"),
            Column("denominator", NUMBER, V.c.denominator, "Ratio metrics: the day's denominator"),
            Column(
                "updated_at", TIMESTAMP, V.c.updated_at, "When the value was last written (UTC)"
            ),
        ),
        from_=V.join(M, M.c.id == V.c.metric_id).join(D, D.c.id == M.c.department_id),
        key=(V.c.metric_id, V.c.date),
        base_where=~V.c.deleted,
        scopes=("values", "metrics"),
    )


def _metrics(today: dt.date) -> Dataset:
    target = (
        select(TG.c.value)
        .where(TG.c.metric_id == M.c.id, TG.c.effective_from <= today)
        .order_by(TG.c.effective_from.desc())
        .limit(1)
        .scalar_subquery()
    )
    return Dataset(
        id="metrics",
        name="Metric catalogue",
        description="Every metric with its department, direction, aggregation and target.",
        columns=(
            Column("slug", TEXT, M.c.slug, "Metric slug"),
            Column("name", TEXT, M.c.name, "Metric name"),
            Column("department", TEXT, D.c.slug, "Department slug"),
            Column("unit", TEXT, M.c.unit, "Unit of the daily value"),
            Column("direction", TEXT, M.c.direction, "higher_is_better or lower_is_better"),
            Column("aggregation", TEXT, M.c.aggregation, "How daily values make a window"),
            Column("reference", TEXT, M.c.reference, "target or baseline"),
            Column("target", NUMBER, target, "The target in force today (none for baselines)"),
            Column("in_cityscore", CHECKBOX, M.c.in_cityscore, "Counts towards CityScore"),
        ),
        from_=M.join(D, D.c.id == M.c.department_id),
        key=(M.c.slug,),
        scopes=("metrics",),
    )


def _cityscore(today: dt.date) -> Dataset:
    return Dataset(
        id="cityscore",
        name="CityScore history",
        description="CityScore per as-of date: the mean of the CityScore metrics' window scores.",
        columns=(
            Column("as_of", TIMESTAMP, C.c.as_of, "Publication date"),
            Column("day", NUMBER, C.c.day, "Day window CityScore"),
            Column("week", NUMBER, C.c.week, "Week window CityScore"),
            Column("month", NUMBER, C.c.month, "Month window CityScore"),
            Column("quarter", NUMBER, C.c.quarter, "Quarter window CityScore"),
        ),
        from_=C,
        key=(C.c.as_of,),
        base_where=C.c.as_of <= today,  # scores are materialised ahead; publish up to today
        scopes=("scores",),
    )


def _scores(today: dt.date) -> Dataset:
    return Dataset(
        id="scores",
        name="Metric scores",
        description="Every metric's four window scores per as-of date.",
        columns=(
            Column("metric", TEXT, M.c.slug, "Metric slug"),
            Column("as_of", TIMESTAMP, S.c.as_of, "Publication date"),
            Column("day_score", NUMBER, S.c.day_score, "Day window score"),
            Column("week_score", NUMBER, S.c.week_score, "Week window score"),
            Column("month_score", NUMBER, S.c.month_score, "Month window score"),
            Column("quarter_score", NUMBER, S.c.quarter_score, "Quarter window score"),
        ),
        from_=S.join(M, M.c.id == S.c.metric_id),
        key=(S.c.metric_id, S.c.as_of),
        base_where=S.c.as_of <= today,
        scopes=("scores", "metrics"),
    )


DATASET_IDS = ("values", "metrics", "cityscore", "scores")


def dataset(name: str, today: dt.date) -> Dataset | None:
    """The dataset called ``name`` (its target column depends on today), or None."""
    if name == "values":
        return _values()
    if name == "metrics":
        return _metrics(today)
    if name == "cityscore":
        return _cityscore(today)
    if name == "scores":
        return _scores(today)
    return None
