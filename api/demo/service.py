"""``cityscore demo``: Boston's real CityScore catalogue with synthetic daily values.

The 23 metrics, their targets, directions and logic come from Boston's published catalogue;
the daily values are synthetic (a fixed seed, so every load is identical) at realistic
magnitudes, and every metric's description says so. ``--metrics N`` repeats the catalogue to
reach any size; values go in with set-based bulk inserts.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session

from api.analyses import service as analyses_service
from api.analyses.schemas import AnalysisIn
from api.changes import service as changes
from api.cityscore import materialise
from api.demo.analyses import ANALYSES
from api.metrics import revisions
from api.runs import service as runs_service
from api.scoring.windows import date_range
from db.bulk import indexes_rebuilt_after, insert_columns
from db.models import (
    CityScoreDaily,
    Department,
    Metric,
    MetricScoreRun,
    MetricTarget,
    MetricValue,
    utcnow,
)
from db.session import begin_write

SEED = 20160101
POINT_COLUMNS = ("date", "value", "numerator", "denominator")  # what scoring takes
VALUES = MetricValue.__table__  # type: ignore[attr-defined]
SCORES = MetricScoreRun.__table__  # type: ignore[attr-defined]
CITYSCORE = CityScoreDaily.__table__  # type: ignore[attr-defined]
TARGETS_FROM = dt.date(2015, 1, 1)

# Boston's departments for the demo catalogue: slug, name, cabinet, url.
DEPARTMENTS = {
    "311": (
        "311",
        "311 Constituent Service Center",
        "Community Engagement",
        "https://www.boston.gov/departments/311",
    ),
    "Boston Fire Department": (
        "fire",
        "Boston Fire Department",
        "Public Safety",
        "https://www.boston.gov/departments/fire-operations",
    ),
    "Boston EMS": (
        "ems",
        "Boston EMS",
        "Public Safety",
        "https://www.boston.gov/departments/emergency-medical-services",
    ),
    "Boston Public Schools": (
        "bps",
        "Boston Public Schools",
        "Education",
        "https://www.bostonpublicschools.org",
    ),
    "Public Works": (
        "public-works",
        "Public Works",
        "Streets",
        "https://www.boston.gov/departments/public-works",
    ),
    "Transportation": (
        "transportation",
        "Transportation",
        "Streets",
        "https://www.boston.gov/departments/transportation",
    ),
    "Parks and Recreation": (
        "parks",
        "Parks and Recreation",
        "Environment, Energy and Open Space",
        "https://www.boston.gov/departments/parks-and-recreation",
    ),
    "Inspectional Services": (
        "isd",
        "Inspectional Services",
        "Operations",
        "https://www.boston.gov/departments/inspectional-services",
    ),
    "Boston Police Department": (
        "police",
        "Boston Police Department",
        "Public Safety",
        "https://police.boston.gov",
    ),
    "Boston Public Library": (
        "library",
        "Boston Public Library",
        "Arts and Culture",
        "https://www.bpl.org",
    ),
}


@dataclass(frozen=True)
class Template:
    slug: str
    name: str
    department: str
    direction: str
    aggregation: str
    reference: str
    target: float | None
    standard: str


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def templates() -> list[Template]:
    text = resources.files("api.demo").joinpath("boston_metrics.csv").read_text("utf-8")
    out = []
    for row in csv.DictReader(text.splitlines()):
        out.append(
            Template(
                slug=slugify(row["metric_name"]),
                name=row["metric_name"],
                department=DEPARTMENTS[row["department"]][0],
                direction=row["direction"],
                aggregation=row["aggregation"],
                reference=row["reference"],
                target=float(row["target"]) if row["target"] else None,
                standard=row["standard"],
            )
        )
    return out


@lru_cache(maxsize=4)
def _day_parts(first: dt.date, n: int) -> tuple[Any, Any, Any]:
    """Day of year, weekday and month of ``n`` days from ``first`` (shared by every metric)."""
    days = [first + dt.timedelta(days=i) for i in range(n)]
    return (
        np.array([d.timetuple().tm_yday for d in days], dtype=float),
        np.array([d.weekday() for d in days]),
        np.array([d.month for d in days]),
    )


def _daily(template: Template, rng: np.random.Generator, days: list[dt.date]) -> Columns:
    """Synthetic (day index, value, numerator, denominator) columns for one metric.

    Vectorised with NumPy: ten years of a thousand metrics is 3.65 million values.
    """
    n = len(days)
    doy, weekday, month = _day_parts(days[0], n) if n else (np.zeros(0),) * 3
    season = 1 + 0.1 * np.sin(2 * np.pi * doy / 365.25)
    weekend = weekday >= 5
    keep = np.ones(n, dtype=bool)
    name = template.name
    num = den = None
    if template.aggregation == "mean_of_ratios":  # school attendance: school days only
        keep = ~weekend & (month != 7) & (month != 8)
        den = np.round(rng.normal(49_000, 400, n))
        num = np.round(den * np.clip(rng.normal(0.925, 0.015, n), 0, 0.99))
    elif template.aggregation == "pooled_ratio":
        if "SURVEY" in name:
            den = np.maximum(1, rng.poisson(np.where(weekend, 8, 45))).astype(float)
            num = np.round(den * np.clip(rng.normal(4.1, 0.25, n), 1, 5))
        elif "311 CALL" in name:
            den = rng.poisson(np.where(weekend, 350, 800 * season)).astype(float)
            num = np.round(den * np.clip(rng.normal(0.93, 0.03, n), 0, 1))
        elif "PERMIT" in name:
            keep = ~weekend
            den = rng.poisson(110, n).astype(float)
            num = np.round(den * np.clip(rng.normal(0.97, 0.03, n), 0, 1))
        else:
            share = 0.89 if "BFD" in name else 0.84
            den = rng.poisson(np.where(weekend, 25, 90) * season).astype(float)
            num = np.round(den * np.clip(rng.normal(share, 0.06, n), 0, 1))
        keep &= den > 0
        value = np.divide(num, den, out=np.zeros(n), where=den > 0)
    elif template.aggregation == "median":  # EMS: the day's median response time, minutes
        value = np.round(np.clip(rng.normal(6.3, 0.45, n), 1, None), 1)
    else:
        lam = {
            "BFD INCIDENTS": 190.0 * season,
            "PART 1 CRIMES": 55.0 * season,
            "HOMICIDES (TREND)": np.full(n, 0.1),
            "SHOOTINGS (TREND)": 0.55 * season,
            "STABBINGS (TREND)": np.full(n, 0.6),
            "LIBRARY USERS": np.where(weekend, 4_000.0, 9_000.0),
        }.get(name, np.full(n, 50.0))
        value = rng.poisson(lam).astype(float)
    if template.aggregation == "mean_of_ratios":
        assert num is not None and den is not None
        value = num / den
    index = np.flatnonzero(keep)
    return Columns(
        index,
        value[index],
        None if num is None else num[index],
        None if den is None else den[index],
    )


class Columns(NamedTuple):
    days: Any  # day indexes into the loaded range (NumPy arrays from here on)
    value: Any
    numerator: Any
    denominator: Any


def is_empty(session: Session) -> bool:
    count = session.execute(select(func.count()).select_from(Metric)).scalar()
    return not count


def _value_columns(
    metric_id: int, template: Template, seed: int, days: list[dt.date], now: dt.datetime
) -> list[tuple[str, Any]]:
    """One metric's synthetic values as bulk-insert columns (NaN is null)."""
    cols = _daily(template, np.random.default_rng(seed), days)
    n = len(cols.days)
    first = days[0].toordinal() if days else 0
    nothing = np.full(n, np.nan)
    return [
        ("metric_id", np.full(n, metric_id, dtype=np.int64)),
        ("date", np.asarray(cols.days, dtype=np.int64) + first),
        ("value", np.asarray(cols.value, dtype=float)),
        ("numerator", nothing if cols.numerator is None else np.asarray(cols.numerator)),
        ("denominator", nothing if cols.denominator is None else np.asarray(cols.denominator)),
        ("deleted", np.zeros(n, dtype=bool)),
        ("updated_at", np.full(n, np.datetime64(now, "us"))),
    ]


def _insert_values(session: Session, blocks: list[list[tuple[str, Any]]]) -> int:
    if not blocks:
        return 0
    columns = [
        (name, np.concatenate([block[i][1] for block in blocks]))
        for i, (name, _) in enumerate(blocks[0])
    ]
    return insert_columns(session.connection(), VALUES, columns)


def _chosen(metrics: int) -> list[tuple[str, Template]]:
    """``metrics`` metrics: the catalogue, repeated with numbered slugs to reach the count."""
    base = templates()
    chosen: list[tuple[str, Template]] = []
    for i in range(metrics):
        t = base[i % len(base)]
        copy = i // len(base)
        chosen.append((t.slug if copy == 0 else f"{t.slug}-{copy + 1}", t))
    return chosen


def _create_catalogue(
    session: Session, chosen: list[tuple[str, Template]], now: dt.datetime
) -> list[int]:
    """Departments, metrics and targets (one flush each); the metrics' ids in order."""
    depts = {}
    for slug, name, cabinet, url in DEPARTMENTS.values():
        depts[slug] = Department(
            slug=slug,
            name=name,
            cabinet=cabinet,
            url=url,
            updated_at=now,
            description=f"{name}, in the {cabinet} cabinet.",
        )
    session.add_all(depts.values())
    session.flush()
    dept_ids = {slug: d.id for slug, d in depts.items() if d.id is not None}
    metrics = [
        Metric(
            slug=slug,
            name=t.name if slug == t.slug else f"{t.name} ({slug})",
            description=f"{t.standard.capitalize()}. Demo data: the values are synthetic.",
            department_id=dept_ids[t.department],
            unit=None,
            direction=t.direction,
            aggregation=t.aggregation,
            reference=t.reference,
            baseline_years=10,
            in_cityscore=True,
            source_url="https://www.boston.gov/departments/analytics-team/cityscore",
            updated_at=now,
        )
        for slug, t in chosen
    ]
    session.add_all(metrics)
    session.flush()
    ids = [m.id for m in metrics if m.id is not None]
    session.add_all(
        MetricTarget(metric_id=m, effective_from=TARGETS_FROM, value=t.target)
        for m, (_, t) in zip(ids, chosen, strict=True)
        if t.target is not None
    )
    session.flush()
    revisions.record(session, ids, now)
    return ids


def _load_values(
    session: Session,
    ids: list[int],
    chosen: list[tuple[str, Template]],
    days: list[dt.date],
    now: dt.datetime,
) -> dict[int, tuple[Any, ...]]:
    """Insert the values; return each metric's points (scoring reads them from here)."""
    points = {}
    blocks: list[list[tuple[str, Any]]] = []
    for index, (metric_id, (_, t)) in enumerate(zip(ids, chosen, strict=True)):
        block = _value_columns(metric_id, t, SEED + index, days, now)
        blocks.append(block)
        points[metric_id] = tuple(dict(block)[c] for c in POINT_COLUMNS)
        if sum(len(b[0][1]) for b in blocks) >= 500_000:
            _insert_values(session, blocks)
            blocks = []
    _insert_values(session, blocks)
    return points


def load(session: Session, *, years: int, metrics: int, today: dt.date) -> str:
    """Load the catalogue, ``years`` of values for ``metrics`` metrics, scores and analyses.

    Values and scores go into empty tables with their indexes rebuilt afterwards (one sort
    per index instead of a b-tree insert per row).
    """
    begin_write(session)
    if not is_empty(session):
        raise RuntimeError("the database already has metrics; load the demo into an empty one")
    if years < 1 or metrics < 1:
        raise ValueError("--years and --metrics must be at least 1")
    started = time.monotonic()
    now = utcnow()
    chosen = _chosen(metrics)
    metric_ids = _create_catalogue(session, chosen, now)
    start = today - dt.timedelta(days=round(365.25 * years))
    end = today - dt.timedelta(days=1)
    connection = session.connection()
    with indexes_rebuilt_after(connection, [VALUES]):
        points = _load_values(session, metric_ids, chosen, date_range(start, end), now)
    value_count = sum(len(p[0]) for p in points.values())
    loaded = time.monotonic() - started
    with indexes_rebuilt_after(connection, [SCORES, CITYSCORE]):
        materialise.rescore_metrics(session, metric_ids, known=points)
    scored = time.monotonic() - started - loaded
    for doc in ANALYSES:
        fields = {k: v for k, v in doc.items() if k != "slug"}
        fields["metrics"] = [m for m in fields["metrics"] if m in {s for s, _ in chosen}]
        analyses_service.put(session, doc["slug"], AnalysisIn(**fields))
    runs_service.record(session, today, key=None, today=today)  # today's publication
    changes.bump(
        session,
        [
            "departments",
            "metrics",
            "values",
            "scores",
            "analyses",
            *(f"metric:{m}" for m in metric_ids),
        ],
    )
    return (
        f"loaded {len(DEPARTMENTS)} departments, {len(chosen)} metrics, {value_count} daily values "
        f"({start}..{end}) in {loaded:.1f}s; scored in {scored:.1f}s; {len(ANALYSES)} analyses; "
        f"1 published run"
    )
