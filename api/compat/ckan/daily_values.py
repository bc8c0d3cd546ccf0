"""``datastore_search`` over the daily values, in SQL on the same tables as ``/v1/values``.

``_id`` is stable across queries (metric id x 10,000,000 + the day's ordinal), so sorting by
``_id`` is the key order the primary key index serves, and offset pages seek past the last key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, String, and_, cast, false, func, literal, or_, select, tuple_
from sqlmodel import Session

from api.compat.ckan.search import Search, invalid
from api.compat.datasets import Dataset, dataset
from api.compat.seek import SeekCache
from api.compat.soda.query import q_filter
from api.compat.soda.soql import SoQLError, coerce

ID_FACTOR = 10_000_000


def _id_of(metric_id: int, day: dt.date) -> int:
    return metric_id * ID_FACTOR + day.toordinal()


def _key_of(raw: Any) -> tuple[int, dt.date]:
    try:
        value = int(raw)
        return value // ID_FACTOR, dt.date.fromordinal(value % ID_FACTOR)
    except (TypeError, ValueError, OverflowError):
        raise invalid("filters", f"_id {raw!r} is not a row id") from None


def _value(ds: Dataset, field: str, raw: Any) -> Any:
    column = ds.column(field)
    assert column is not None
    try:
        value = coerce(raw if isinstance(raw, str) else str(raw), column.type, field)
    except SoQLError as exc:
        raise invalid("filters", exc.message) from None
    if isinstance(value, dt.datetime) and not isinstance(column.expr.type, DateTime):
        value = value.date()
    return literal(value, type_=column.expr.type)


def _where(ds: Dataset, search: Search) -> list[Any]:
    where: list[Any] = [ds.base_where]
    for field, wanted in search.filters.items():
        if field == "_id":
            keys = [_key_of(w) for w in wanted]
            where.append(
                or_(*(tuple_(*ds.key) == tuple_(m, d) for m, d in keys)) if keys else false()
            )
            continue
        column = ds.column(field)
        assert column is not None
        where.append(or_(*(column.expr == _value(ds, field, w) for w in wanted)))
    if isinstance(search.q, str):
        where.append(q_filter(ds, search.q))
    elif isinstance(search.q, dict):
        for field, text in search.q.items():
            if field == "_id":
                raise invalid("q", "cannot search _id")
            column = ds.column(field)
            assert column is not None
            pattern = "%" + str(text).lower().replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(func.lower(cast(column.expr, String)).like(pattern, escape="\\"))
    return where


def _seekable(search: Search) -> bool:
    return not search.sort or search.sort == [("_id", False)]


def _order(ds: Dataset, search: Search) -> list[Any]:
    out: list[Any] = []
    for field, desc in search.sort:
        exprs = list(ds.key) if field == "_id" else [ds.by_name[field].expr]
        out += [e.desc().nulls_first() if desc else e.asc().nulls_last() for e in exprs]
    return out + [k.asc() for k in ds.key]


def search_rows(
    session: Session,
    search: Search,
    seeks: SeekCache,
    version: str,
    fingerprint: str,
    today: dt.date,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of records (every field, with ``_id``) and the total when asked for."""
    ds = dataset(search.resource.dataset or "values", today)
    assert ds is not None
    where = _where(ds, search)
    names = [c.name for c in ds.columns]
    stmt = select(*[c.expr for c in ds.columns], *ds.key).select_from(ds.from_).where(and_(*where))
    after = (
        seeks.get(fingerprint, version, search.offset)
        if _seekable(search) and search.offset
        else None
    )
    if after is not None:
        stmt = stmt.where(tuple_(*ds.key) > tuple_(*after))
    elif search.offset:
        stmt = stmt.offset(search.offset)
    stmt = stmt.order_by(*_order(ds, search)).limit(search.limit)
    records = []
    last = None
    for row in session.execute(stmt):
        last = row
        record = {"_id": _id_of(row[-2], row[-1])}
        record.update(zip(names, row[: len(names)], strict=True))
        records.append(record)
    if last is not None and _seekable(search):
        seeks.put(fingerprint, version, search.offset + len(records), (last[-2], last[-1]))
    total = None
    if search.include_total:
        cached = seeks.get(fingerprint, version, -1)
        if cached is None:
            count = select(func.count()).select_from(ds.from_).where(and_(*where))
            cached = (int(session.execute(count).scalar_one()),)
            seeks.put(fingerprint, version, -1, cached)
        total = int(cached[0])
    return records, total
