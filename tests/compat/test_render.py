"""Socrata cell formats, column at a time (the get_all hot path): the fast paths and the
general path agree, nulls are dropped, a false checkbox is kept."""

from __future__ import annotations

import datetime as dt

from api.compat.soda import render

TYPES = ["text", "floating_timestamp", "number", "floating_timestamp", "checkbox"]
NAMES = ["metric", "date", "value", "updated_at", "flag"]


def test_json_records_formats_like_socrata() -> None:
    rows = [
        ("a", dt.date(2026, 5, 15), 0.5, dt.datetime(2026, 5, 16, 7, 0, 3, 123456), True),
        ("b", dt.date(2026, 5, 16), 741.0, dt.datetime(2026, 5, 16, 7, 0, 3), False),
        ("c", None, None, None, None),
        ("d", dt.date(2026, 5, 17), 1e22, dt.datetime(2026, 5, 16), True),
        ("e", dt.date(2026, 5, 18), -0.0, dt.datetime(2026, 5, 16, 0, 0, 0, 999), False),
    ]
    assert render.json_records(NAMES, TYPES, rows) == [
        {
            "metric": "a",
            "date": "2026-05-15T00:00:00.000",
            "value": "0.5",
            "updated_at": "2026-05-16T07:00:03.123",
            "flag": True,
        },
        {
            "metric": "b",
            "date": "2026-05-16T00:00:00.000",
            "value": "741",
            "updated_at": "2026-05-16T07:00:03.000",
            "flag": False,
        },
        {"metric": "c"},
        {
            "metric": "d",
            "date": "2026-05-17T00:00:00.000",
            "value": "1e+22",
            "updated_at": "2026-05-16T00:00:00.000",
            "flag": True,
        },
        {
            "metric": "e",
            "date": "2026-05-18T00:00:00.000",
            "value": "-0",
            "updated_at": "2026-05-16T00:00:00.000",
            "flag": False,
        },
    ]
    # a column without nulls takes the joined fast path; the result is the same cells
    full = [r for r in rows if r[1] is not None]
    with_null = render.cells(TYPES, rows, csv=False)
    assert render.cells(TYPES, full, csv=False) == [c for c in with_null if c[1] is not None]
    assert render.cells(TYPES, rows[:2], csv=True)[1][4] == "false"
    assert render.cells(["floating_timestamp"], [("2026-05-15",)], csv=False) == [
        ("2026-05-15T00:00:00.000",)
    ]
    assert render.json_records(NAMES, TYPES, []) == []
