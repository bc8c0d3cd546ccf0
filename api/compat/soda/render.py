"""Socrata's cell formats, a column at a time.

Numbers are strings (the shortest text that reads back as the same double, no ``.0``),
floating timestamps ``2026-05-15T00:00:00.000``, checkboxes booleans (``true``/``false`` in CSV),
and nulls are left out of JSON objects. Formatting a whole column with C-level ``map``/``join``
keeps a 50,000-row page cheap; it is the hot path of ``get_all``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import is_not, methodcaller
from typing import Any

from api.compat.datasets import CHECKBOX, NUMBER, TIMESTAMP

SEP = "\x00"  # never inside a number's repr or an ISO date
_MILLIS = methodcaller("isoformat", timespec="milliseconds")
NONES = repeat(None)


def _numbers(column: Sequence[Any]) -> list[Any]:
    text = SEP.join(map(repr, column)) + SEP
    cells: list[Any] = text.replace(".0" + SEP, SEP).split(SEP)[:-1]
    if None in column:
        cells = [None if v is None else c for v, c in zip(column, cells, strict=True)]
    return cells


def _timestamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return str(_MILLIS(value))
    if isinstance(value, dt.date):
        return value.isoformat() + "T00:00:00.000"
    return _timestamp(dt.datetime.fromisoformat(str(value)))  # an aggregate as text (SQLite)


def _timestamps(column: Sequence[Any]) -> list[Any]:
    first = column[0] if column else None
    if None not in column and type(first) is dt.date:
        try:
            text = "T00:00:00.000\x00".join(map(dt.date.isoformat, column))
            return (text + "T00:00:00.000").split(SEP)
        except TypeError:
            pass  # mixed types: the general path
    if None not in column and type(first) is dt.datetime:
        try:
            texts = SEP.join(map(dt.datetime.isoformat, column)).split(SEP)
            return [t[:23] if len(t) > 19 else t + ".000" for t in texts]
        except TypeError:
            pass
    return [None if v is None else _timestamp(v) for v in column]


def _checkboxes(column: Sequence[Any], csv: bool) -> list[Any]:
    if csv:
        return [None if v is None else ("true" if v else "false") for v in column]
    return [None if v is None else bool(v) for v in column]


def _texts(column: Sequence[Any]) -> list[Any]:
    return list(column)  # text columns hold str or None


def column_formatter(kind: str, csv: bool) -> Callable[[Sequence[Any]], list[Any]]:
    if kind == NUMBER:
        return _numbers
    if kind == TIMESTAMP:
        return _timestamps
    if kind == CHECKBOX:
        return lambda column: _checkboxes(column, csv)
    return _texts


def cells(types: Sequence[str], rows: Sequence[Sequence[Any]], csv: bool) -> list[tuple[Any, ...]]:
    """Rows of formatted cells (None where the value is null)."""
    if not rows:
        return []
    columns = [
        column_formatter(k, csv)(col) for k, col in zip(types, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))


def json_records(
    names: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    """Socrata JSON objects: formatted cells, nulls omitted."""
    # keep the non-null cells of each row, all in C
    return [
        dict(compress(zip(names, row, strict=True), map(is_not, row, NONES)))
        for row in cells(types, rows, csv=False)
    ]
