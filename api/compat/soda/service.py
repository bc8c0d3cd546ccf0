"""SODA reads: compile the request, run it (seeking under offsets), format rows as Socrata does.

Socrata's JSON is an array of objects with numbers as strings, nulls omitted and dates as
floating timestamps (``2026-05-15T00:00:00.000``); its CSV has the same cells with a header.
Rows come from Core selects (tuples, never ORM objects).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlmodel import Session

from api.changes import service as changes
from api.compat.datasets import Dataset, dataset
from api.compat.seek import SeekCache
from api.compat.soda.query import CLAUSES, Query, build, statement
from api.compat.soda.soql import SoQLError
from api.http.caching import Version
from db.dialect import name as store_name


class SodaError(Exception):
    """An error in Socrata's shape: ``{code, error: true, message, data}``."""

    def __init__(self, status: int, code: str, message: str, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data or {}


def find(name: str, today: dt.date) -> Dataset:
    found = dataset(name, today)
    if found is None:
        raise SodaError(
            404,
            "dataset.missing",
            f"Cannot find dataset {name!r}: the datasets are values, metrics, cityscore, scores.",
            {"dataset": name},
        )
    return found


def split_params(items: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """SoQL clauses and ``column=value`` filters; ``$$`` options (app tokens...) are ignored."""
    params: dict[str, str] = {}
    filters: list[tuple[str, str]] = []
    for name, value in items:
        if name.startswith("$$"):
            continue
        if name.startswith("$"):
            if name == "$query":
                raise SoQLError("$query is not supported; use $select, $where, $order, $group.")
            if name not in CLAUSES:
                raise SoQLError(
                    f"Unknown parameter {name}. Supported: {', '.join(CLAUSES)}.",
                    {"parameter": name},
                )
            if name in params:
                raise SoQLError(f"{name} is given twice.", {"parameter": name})
            params[name] = value
        else:
            filters.append((name, value))
    return params, filters


class Result:
    """A compiled query bound to its session: iterate ``rows()`` once."""

    def __init__(self, session: Session, ds: Dataset, query: Query, fingerprint: str):
        self.session, self.dataset, self.query = session, ds, query
        self.fingerprint = fingerprint
        self.version: Version = changes.version(session, *ds.scopes)

    def rows(self, seeks: SeekCache) -> Iterator[tuple[Any, ...]]:
        """The page's rows (output columns only), remembering the key at its end."""
        q = self.query
        after = None
        if q.seekable and q.offset:
            after = seeks.get(self.fingerprint, self.version.token, q.offset)
        width = len(q.columns)
        result = self.session.execute(statement(self.dataset, q, after))
        count, last = 0, None
        for row in result:
            count += 1
            last = row
            yield tuple(row[:width])
        if q.seekable and last is not None:
            key = tuple(last[width:])
            seeks.put(self.fingerprint, self.version.token, q.offset + count, key)


def prepare(
    session: Session, name: str, items: Sequence[tuple[str, str]], today: dt.date
) -> Result:
    """Validate and compile a SODA request (raises SodaError with a 400 or 404)."""
    ds = find(name, today)
    try:
        params, filters = split_params(items)
        query = build(ds, store_name(session), params, filters)
    except SoQLError as exc:
        raise SodaError(400, "query.soql.invalid", exc.message, exc.data) from None
    stable = sorted((k, v) for k, v in items if k not in ("$offset", "$limit", "$$app_token"))
    fingerprint = f"{name}|{today.isoformat()}|{stable!r}"
    return Result(session, ds, query, fingerprint)


def metadata(session: Session, name: str, today: dt.date) -> tuple[dict[str, Any], Version]:
    """``/api/views/{dataset}.json``: Socrata's view metadata, the parts clients read, and
    the version of the data behind it."""
    ds = find(name, today)
    version = changes.version(session, *ds.scopes)
    updated = version.last_modified or dt.datetime(1970, 1, 1)
    epoch = int(updated.replace(tzinfo=dt.UTC).timestamp())
    return {
        "id": ds.id,
        "name": ds.name,
        "description": ds.description,
        "assetType": "dataset",
        "columns": [
            {
                "id": i,
                "fieldName": c.name,
                "name": c.name,
                "dataTypeName": c.type,
                "description": c.description,
                "position": i,
            }
            for i, c in enumerate(ds.columns, start=1)
        ],
        "rowsUpdatedAt": epoch,
        "viewLastModified": epoch,
    }, version
