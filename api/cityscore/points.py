"""A metric's stored daily points, read straight into NumPy columns for the engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from sqlmodel import Session

from db.bulk import pg_select_arrays
from db.dialect import day_ordinal, fetch_all, is_postgres, mark, raw_param

Columns = tuple[Any, Any, Any, Any]  # NumPy: day ordinals, value, numerator, denominator
# Metric-days per value query: a query reads at most this many days of metrics (200 metrics
# of ten years), at least 25 and at most 900 metrics (SQLite's IN list; builds before 3.32
# take 999 parameters).
POINTS_PER_QUERY = 200 * 3653
METRICS_PER_QUERY = (25, 900)


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def metric_columns(
    session: Session,
    metric_ids: Sequence[int],
    ranges: Sequence[tuple[dt.date, dt.date]],
    per_query: int | None = None,
) -> Iterator[tuple[int, Columns]]:
    """Each metric's live points in the date ranges as NumPy columns, one metric at a time.

    One query per ``per_query`` metrics (by default as many as ``POINTS_PER_QUERY`` days of
    metrics hold: bounded memory; a few weeks' span takes hundreds), straight into arrays:
    on PostgreSQL one row per metric with its days and values aggregated into arrays (nulls
    as NaN, which no stored value can be), read from a binary COPY with ``np.frombuffer``; on
    SQLite the driver's rows as one float array. Metrics without live values in the range
    are left out.
    """
    connection = session.connection()
    postgres = is_postgres(connection)
    if per_query is None:
        days = sum((b - a).days + 1 for a, b in ranges)
        low, high = METRICS_PER_QUERY
        per_query = max(low, min(high, POINTS_PER_QUERY // max(days, 1)))
    for id_chunk in _chunks(sorted(metric_ids), per_query):
        if postgres:
            for metric_id, (days, *values) in _pg_points(connection, id_chunk, ranges):
                days = days.astype(np.int64)
                if len(days) > 1 and not (days[1:] > days[:-1]).all():
                    order = np.argsort(days, kind="stable")
                    days, values = days[order], [v[order] for v in values]
                yield metric_id, (days, *values)
            continue
        table = _sqlite_points(connection, id_chunk, ranges)
        if not len(table):
            continue
        ids = table[:, 0]
        cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
        for a, b in pairwise(cuts):
            block = table[a:b]
            yield (
                int(block[0, 0]),
                (block[:, 1].astype(np.int64), block[:, 2], block[:, 3], block[:, 4]),
            )


def _pg_points(
    connection: Any, ids: Sequence[int], ranges: Sequence[tuple[dt.date, dt.date]]
) -> Iterator[tuple[int, list[Any]]]:
    def agg(expr: str) -> str:  # unordered: an ORDER BY per aggregate sorts every group
        return f"array_agg({expr})"  # (2.5x the query); the caller sorts by day instead

    nan = "'NaN'::float8"
    day = day_ordinal(connection, "v.date")
    columns = ("value", "numerator", "denominator")
    values = ", ".join(agg(f"COALESCE(v.{c}, {nan})") for c in columns)
    sql = (
        f"SELECT v.metric_id, {agg(day)}, {values} FROM metric_values v "
        f"WHERE NOT v.deleted AND v.metric_id = ANY(%s) AND ({_between('v.date', ranges)}) "
        "GROUP BY v.metric_id ORDER BY v.metric_id"
    )
    kinds = ("int4", "float8", "float8", "float8")
    params = [list(ids), *(d for pair in ranges for d in pair)]
    return pg_select_arrays(connection, sql, params, kinds)


def _between(column: str, ranges: Sequence[tuple[dt.date, dt.date]], mark: str = "%s") -> str:
    return " OR ".join(f"{column} BETWEEN {mark} AND {mark}" for _ in ranges)


def _sqlite_points(
    connection: Any, ids: Sequence[int], ranges: Sequence[tuple[dt.date, dt.date]]
) -> Any:
    q = mark(connection)
    marks = ", ".join(q for _ in ids)
    sql = (
        f"SELECT v.metric_id, {day_ordinal(connection, 'v.date')}, v.value, "
        "v.numerator, v.denominator FROM metric_values v WHERE NOT v.deleted "
        f"AND v.metric_id IN ({marks}) AND ({_between('v.date', ranges, q)}) "
        "ORDER BY v.metric_id, v.date"
    )
    params = [*ids, *(raw_param(connection, d) for pair in ranges for d in pair)]
    rows = fetch_all(connection, sql, params)
    return np.array(rows, dtype=float).reshape(-1, 5)
