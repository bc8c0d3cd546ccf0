"""``cityscore demo``: Boston's real CityScore catalogue with synthetic daily values.

The 23 metrics, their targets, directions and logic come from Boston's published catalogue;
the daily values are synthetic (a fixed seed, so every load is identical) at realistic
magnitudes, and every metric's description says so. ``--metrics N`` repeats the catalogue to
reach any size; values go in with set-based bulk inserts.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from api.analyses import service as analyses_service
from api.analyses.schemas import AnalysisIn
from api.changes import service as changes
from api.cityscore import service as scores_service
from api.demo.analyses import ANALYSES
from db.dialect import bulk_insert
from db.models import Department, Metric, MetricTarget, MetricValue, utcnow
from db.session import begin_write

SEED = 20160101
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


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _daily(template: Template, rng: random.Random, day: dt.date) -> tuple[Any, ...] | None:
    """(value, numerator, denominator) for one synthetic day, or None (no report that day)."""
    season = 1 + 0.1 * math.sin(2 * math.pi * day.timetuple().tm_yday / 365.25)
    weekend = day.weekday() >= 5
    name = template.name
    if template.aggregation == "mean_of_ratios":  # school attendance: school days only
        if weekend or day.month in (7, 8):
            return None
        den = float(round(rng.gauss(49_000, 400)))
        num = float(round(den * min(0.99, rng.gauss(0.925, 0.015))))
        return num / den, num, den
    if template.aggregation == "pooled_ratio":
        if "SURVEY" in name:
            den = float(max(1, _poisson(rng, 8 if weekend else 45)))
            num = float(round(den * min(5.0, rng.gauss(4.1, 0.25)), 0))
        elif "311 CALL" in name:
            den = float(_poisson(rng, 350 if weekend else 800 * season))
            num = float(round(den * min(1.0, rng.gauss(0.93, 0.03))))
        elif "PERMIT" in name:
            if weekend:
                return None
            den = float(_poisson(rng, 110))
            num = float(round(den * min(1.0, rng.gauss(0.97, 0.03))))
        else:
            base = 25 if weekend else 90
            den = float(_poisson(rng, base * season))
            num = float(round(den * min(1.0, rng.gauss(0.84 if "BFD" not in name else 0.89, 0.06))))
        if den <= 0:
            return None
        return num / den, num, den
    if template.aggregation == "median":  # EMS: the day's median response time, minutes
        return round(rng.gauss(6.3, 0.45), 1), None, None
    lam = {
        "BFD INCIDENTS": 190.0 * season,
        "PART 1 CRIMES": 55.0 * season,
        "HOMICIDES (TREND)": 0.1,
        "SHOOTINGS (TREND)": 0.55 * season,
        "STABBINGS (TREND)": 0.6,
        "LIBRARY USERS": 4_000.0 if weekend else 9_000.0,
    }.get(name, 50.0)
    return float(_poisson(rng, lam)), None, None


def is_empty(session: Session) -> bool:
    count = session.execute(select(func.count()).select_from(Metric)).scalar()
    return not count


def _values(
    metric_id: int, template: Template, seed: int, start: dt.date, end: dt.date, now: dt.datetime
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    day = start
    one = dt.timedelta(days=1)
    while day <= end:
        point = _daily(template, rng, day)
        if point is not None:
            yield (metric_id, day, *point, False, now)
        day += one


def load(session: Session, *, years: int, metrics: int, today: dt.date) -> str:
    """Load the catalogue, ``years`` of values for ``metrics`` metrics, scores and analyses."""
    begin_write(session)
    if not is_empty(session):
        raise RuntimeError("the database already has metrics; load the demo into an empty one")
    if years < 1 or metrics < 1:
        raise ValueError("--years and --metrics must be at least 1")
    started = time.monotonic()
    now = utcnow()
    depts: dict[str, int] = {}
    for slug, name, cabinet, url in DEPARTMENTS.values():
        dept = Department(
            slug=slug,
            name=name,
            cabinet=cabinet,
            url=url,
            updated_at=now,
            description=f"{name}, in the {cabinet} cabinet.",
        )
        session.add(dept)
        session.flush()
        assert dept.id is not None
        depts[slug] = dept.id
    base = templates()
    chosen: list[tuple[str, Template]] = []
    for i in range(metrics):
        t = base[i % len(base)]
        copy = i // len(base)
        chosen.append((t.slug if copy == 0 else f"{t.slug}-{copy + 1}", t))
    start = today - dt.timedelta(days=round(365.25 * years))
    end = today - dt.timedelta(days=1)
    metric_ids = []
    value_count = 0
    for index, (slug, t) in enumerate(chosen):
        metric = Metric(
            slug=slug,
            name=t.name if slug == t.slug else f"{t.name} ({slug})",
            description=f"{t.standard.capitalize()}. Demo data: the values are synthetic.",
            department_id=depts[t.department],
            unit=None,
            direction=t.direction,
            aggregation=t.aggregation,
            reference=t.reference,
            baseline_years=10,
            in_cityscore=True,
            source_url="https://www.boston.gov/departments/analytics-team/cityscore",
            updated_at=now,
        )
        session.add(metric)
        session.flush()
        assert metric.id is not None
        metric_ids.append(metric.id)
        if t.target is not None:
            session.add(
                MetricTarget(metric_id=metric.id, effective_from=TARGETS_FROM, value=t.target)
            )
        value_count += bulk_insert(
            session.connection(),
            MetricValue.__table__,  # type: ignore[attr-defined]
            ("metric_id", "date", "value", "numerator", "denominator", "deleted", "updated_at"),
            _values(metric.id, t, SEED + index, start, end, now),
        )
    session.flush()
    loaded = time.monotonic() - started
    scores_service.rescore_metrics(session, metric_ids)
    scored = time.monotonic() - started - loaded
    for doc in ANALYSES:
        fields = {k: v for k, v in doc.items() if k != "slug"}
        fields["metrics"] = [m for m in fields["metrics"] if m in {s for s, _ in chosen}]
        analyses_service.put(session, doc["slug"], AnalysisIn(**fields))
    changes.bump(
        session,
        ["catalogue", "values", "scores", "analyses", *(f"metric:{m}" for m in metric_ids)],
    )
    return (
        f"loaded {len(depts)} departments, {len(chosen)} metrics, {value_count} daily values "
        f"({start}..{end}) in {loaded:.1f}s; scored in {scored:.1f}s; {len(ANALYSES)} analyses"
    )
