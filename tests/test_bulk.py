"""``db.bulk.insert_columns``: whole NumPy columns in, the same cells back, on both stores.

SQLite writes many rows per statement; the sizes straddle a statement's row count (and the
20,000-row conversion block) so the whole statements, the short last one and a lone row are
all covered. A NaN float is NULL; dates and instants come back as written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from db import bulk
from db.models import Department, Metric, MetricValue

V = MetricValue.__table__  # type: ignore[attr-defined]


def _metric(connection: Any) -> int:
    now = dt.datetime(2026, 5, 1, 12)
    dept = connection.execute(
        Department.__table__.insert()  # type: ignore[attr-defined]
        .values(slug="bulk-dept", name="Bulk", cabinet="Ops", updated_at=now)
        .returning(Department.__table__.c.id)  # type: ignore[attr-defined]
    ).scalar_one()
    return int(
        connection.execute(
            Metric.__table__.insert()  # type: ignore[attr-defined]
            .values(
                slug="bulk-metric",
                name="Bulk",
                department_id=dept,
                direction="up",
                aggregation="sum",
                reference="target",
                baseline_years=1,
                in_cityscore=False,
                updated_at=now,
            )
            .returning(Metric.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()
    )


@pytest.mark.parametrize("n", [1, 99, 100, 101, 250, 20_001])
def test_insert_columns_round_trips_every_cell(connection: Any, n: int) -> None:
    metric_id = _metric(connection)
    first = dt.date(2001, 1, 1).toordinal()
    rng = np.random.default_rng(n)
    value = rng.normal(size=n) * 1e6
    value[::7] = np.nan
    numerator = rng.integers(0, 1000, size=n).astype(float)
    stamp = np.datetime64("2026-05-01T12:00:00.250000", "us")
    columns = [
        ("metric_id", np.full(n, metric_id, dtype=np.int64)),
        ("date", np.arange(first, first + n, dtype=np.int64)),
        ("value", value),
        ("numerator", numerator),
        ("denominator", np.full(n, np.nan)),
        ("deleted", np.arange(n) % 3 == 0),
        ("updated_at", np.full(n, stamp)),
    ]
    assert bulk.insert_columns(connection, V, columns) == n
    rows = connection.execute(
        text(
            "SELECT date, value, numerator, denominator, deleted, updated_at FROM metric_values "
            "WHERE metric_id = :m ORDER BY date"
        ),
        {"m": metric_id},
    ).all()
    assert len(rows) == n
    for i, (day, v, num, den, deleted, updated) in enumerate(rows):
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        assert day == dt.date.fromordinal(first + i)
        assert (v is None) if np.isnan(value[i]) else v == value[i]
        assert num == numerator[i] and den is None
        assert bool(deleted) == (i % 3 == 0)
        if isinstance(updated, str):
            updated = dt.datetime.fromisoformat(updated)
        assert updated == dt.datetime(2026, 5, 1, 12, 0, 0, 250000)
