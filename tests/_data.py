"""Test data through the public API (departments, metrics) plus direct daily-value inserts.

The ingest endpoint is not used here: values go straight into ``metric_values`` and the scores
and change counters are brought up to date the way a write would.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session

from api.changes import service as changes
from api.cityscore import materialise
from api.keys import service as keys
from db.models import Metric, MetricValue, ValueRevision, utcnow

V = MetricValue.__table__  # type: ignore[attr-defined]
M = Metric.__table__  # type: ignore[attr-defined]
R = ValueRevision.__table__  # type: ignore[attr-defined]

TARGET_FROM = "2000-01-01"


# The bulk values' columns as the contract names them (CSV header, JSON keys).
VALUE_HEADER = [
    "metric",
    "department",
    "date",
    "value",
    "numerator",
    "denominator",
    "deleted",
    "updated_at",
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_headers(session: Session) -> dict[str, str]:
    """Headers of a new admin key (flushed into the session's transaction)."""
    _, token = keys.create(session, name="t", admin=True)
    session.flush()
    return bearer(token)


def department_headers(session: Session, department: str) -> dict[str, str]:
    """Headers of a new key of one department."""
    _, token = keys.create(session, name="d", department=department)
    session.flush()
    return bearer(token)


def put_department(
    client: TestClient,
    headers: Mapping[str, str],
    slug: str,
    name: str | None = None,
    *,
    cabinet: str | None = "Operations",
    description: str | None = None,
    url: str | None = None,
    expect: int | None = None,
) -> dict[str, Any]:
    body = {
        "name": name if name is not None else slug.title(),
        "cabinet": cabinet,
        "description": description,
        "url": url,
    }
    r = client.put(f"/v1/departments/{slug}", json=body, headers=dict(headers))
    assert r.status_code in ((expect,) if expect else (200, 201)), r.text
    out: dict[str, Any] = r.json()
    return out


def metric_body(
    department: str,
    *,
    name: str = "A metric",
    aggregation: str = "pooled_ratio",
    direction: str = "higher_is_better",
    reference: str = "target",
    targets: list[dict[str, Any]] | None = None,
    target: float | None = None,
    target_from: str = TARGET_FROM,
    **extra: Any,
) -> dict[str, Any]:
    """A PUT body; ``target`` is shorthand for one target in force since ``target_from``."""
    if targets is None:
        value = 0.9 if target is None else target
        one = [{"effective_from": target_from, "value": value}]
        targets = one if reference == "target" else []
    return {
        "name": name,
        "description": extra.pop("description", None),
        "department": department,
        "direction": direction,
        "aggregation": aggregation,
        "reference": reference,
        "targets": targets,
        **extra,
    }


def put_metric(
    client: TestClient,
    headers: Mapping[str, str],
    slug: str,
    department: str,
    **kwargs: Any,
) -> dict[str, Any]:
    r = client.put(
        f"/v1/metrics/{slug}", json=metric_body(department, **kwargs), headers=dict(headers)
    )
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


def metric_id(session: Session, slug: str) -> int:
    found = session.execute(select(M.c.id).where(M.c.slug == slug)).scalar()
    assert found is not None, slug
    return int(found)


def _after_write(session: Session, ids: Iterable[int]) -> None:
    ids = sorted(set(ids))
    materialise.rescore_metrics(session, ids)
    changes.bump(session, ["values", "scores", *(f"metric:{i}" for i in ids)])
    session.flush()


def insert_values(session: Session, slug: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert daily values of one metric. Each row: date and value and/or numerator/denominator.

    A ratio row given only numerator/denominator gets value = numerator / denominator.
    """
    mid = metric_id(session, slug)
    now = utcnow()
    records = []
    for row in rows:
        num, den = row.get("numerator"), row.get("denominator")
        value = row.get("value")
        if value is None and num is not None and den:
            value = num / den
        day = row["date"]
        records.append(
            {
                "metric_id": mid,
                "date": dt.date.fromisoformat(day) if isinstance(day, str) else day,
                "value": value,
                "numerator": num,
                "denominator": den,
                "deleted": bool(row.get("deleted", False)),
                "updated_at": row.get("updated_at", now),
            }
        )
    if records:
        session.execute(V.insert(), records)
    _after_write(session, [mid])
    return mid


def tombstone(session: Session, slug: str, day: dt.date, at: dt.datetime) -> None:
    """Mark one value deleted (value fields cleared) at instant ``at``."""
    mid = metric_id(session, slug)
    session.execute(
        update(V)
        .where(V.c.metric_id == mid, V.c.date == day)
        .values(deleted=True, value=None, numerator=None, denominator=None, updated_at=at)
    )
    _after_write(session, [mid])


def add_revision(
    session: Session,
    slug: str,
    day: dt.date,
    recorded_at: dt.datetime,
    *,
    value: float | None = None,
    numerator: float | None = None,
    denominator: float | None = None,
    deleted: bool = False,
) -> None:
    session.execute(
        R.insert(),
        [
            {
                "metric_id": metric_id(session, slug),
                "date": day,
                "value": value,
                "numerator": numerator,
                "denominator": denominator,
                "deleted": deleted,
                "batch_id": None,
                "key_id": None,
                "recorded_at": recorded_at,
            }
        ],
    )
    session.flush()


def days(start: str | dt.date, count: int) -> list[dt.date]:
    first = dt.date.fromisoformat(start) if isinstance(start, str) else start
    return [first + dt.timedelta(days=i) for i in range(count)]


def parse_csv(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def instant(text: str) -> dt.datetime:
    """An RFC 3339 ``...Z`` instant as naive UTC."""
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1])


def csv_instant(ts: dt.datetime) -> str:
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += f".{ts.microsecond:06d}".rstrip("0")
    return text + "Z"


def collect_pages(client: TestClient, url: str) -> tuple[list[dict[str, Any]], int]:
    """Follow ``next`` links; check each Link header equals ``next``; return rows and pages."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        rows.extend(body["data"])
        next_url = body["next"]
        if next_url:
            assert r.headers["link"] == f'<{next_url}>; rel="next"'
        else:
            assert "link" not in r.headers
        assert pages < 10_000
    return rows, pages
