"""Bulk inserts of NumPy columns: no Python object per cell on PostgreSQL.

``insert_columns(connection, table, columns)`` writes whole columns (one NumPy array each) in
the connection's transaction. PostgreSQL: the binary ``COPY`` payload is built with NumPy
(big-endian fields, NULL where a float is NaN) and sent in one stream, millions of rows a
second. SQLite: multi-row ``INSERT`` statements over cells built from the columns (NaN ->
NULL), 100 rows a statement.

Column arrays by the table column's type: Integer/BigInteger -> ints; Float -> floats (NaN
is NULL); Date -> day ordinals (``date.toordinal()``); Boolean -> bools; DateTime ->
``datetime64[us]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Boolean, Connection, Date, DateTime, Float, Integer, Table

from db.dialect import analyze

PG_EPOCH_ORDINAL = dt.date(2000, 1, 1).toordinal()
PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us")
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
CHUNK_ROWS = 200_000
SQLITE_CHUNK = 20_000  # rows converted to Python cells at a time
SQLITE_ROWS = 100  # rows per INSERT statement
SQLITE_MAX_PARAMS = 999  # SQLITE_MAX_VARIABLE_NUMBER of builds before 3.32


def _kind(type_: Any) -> str:
    for cls, kind in (
        (BigInteger, "int8"),
        (Integer, "int4"),
        (Float, "float8"),
        (DateTime, "timestamp"),
        (Date, "date"),
        (Boolean, "bool"),
    ):
        if isinstance(type_, cls):
            return kind
    raise TypeError(f"no bulk encoding for {type_!r}")


_WIRE = {"int4": ">i4", "int8": ">i8", "float8": ">f8", "date": ">i4", "timestamp": ">i8"}
_WIRE_SIZE = {"int4": 4, "int8": 8, "float8": 8, "date": 4, "timestamp": 8, "bool": 1}


def _wire_values(kind: str, arr: Any) -> Any:
    if kind == "date":
        return np.asarray(arr, dtype=np.int64) - PG_EPOCH_ORDINAL
    if kind == "timestamp":
        return (np.asarray(arr, dtype="datetime64[us]") - PG_EPOCH_US).astype(np.int64)
    if kind == "bool":
        return np.asarray(arr, dtype=bool)
    return np.asarray(arr)


def _pg_payload(kinds: Sequence[str], arrays: Sequence[Any]) -> bytes:
    """Binary COPY tuples for these columns, built in cache-sized blocks of rows."""
    n = len(arrays[0])
    step = 8192
    return b"".join(
        _pg_block(kinds, [arr[i : i + step] for arr in arrays]) for i in range(0, n, step)
    )


def _pg_block(kinds: Sequence[str], arrays: Sequence[Any]) -> bytes:
    """Binary COPY tuples for these columns (no header or trailer).

    A NULL field has no data bytes, so rows differ in length by which floats are NaN: rows are
    grouped by that pattern (a handful of groups) and each group is one fixed-width NumPy
    record array. The groups go out one after another (a table has no row order).
    """
    n = len(arrays[0])
    values = [_wire_values(kind, arr) for kind, arr in zip(kinds, arrays, strict=True)]
    floats = [i for i, kind in enumerate(kinds) if kind == "float8"]
    code = np.zeros(n, dtype=np.int64)
    for j, i in enumerate(floats):
        code |= np.isnan(values[i]).astype(np.int64) << j
    patterns, group = np.unique(code, return_inverse=True)
    group = group.reshape(-1)
    out = []
    for g, pattern in enumerate(patterns.tolist()):
        rows = np.flatnonzero(group == g) if len(patterns) > 1 else slice(None)
        null = {i for j, i in enumerate(floats) if pattern >> j & 1}
        fields: list[tuple[str, str]] = [("count", ">i2")]
        for i, kind in enumerate(kinds):
            fields.append((f"l{i}", ">i4"))
            if i not in null:
                fields.append((f"v{i}", _WIRE.get(kind, "u1")))
        rec = np.empty(n if isinstance(rows, slice) else len(rows), dtype=np.dtype(fields))
        rec["count"] = len(kinds)
        for i, kind in enumerate(kinds):
            rec[f"l{i}"] = -1 if i in null else _WIRE_SIZE[kind]
            if i not in null:
                rec[f"v{i}"] = values[i][rows]
        out.append(rec.tobytes())
    return b"".join(out)


@lru_cache(maxsize=1 << 17)
def _iso_day(ordinal: int) -> str:
    """A day ordinal's ISO text, remembered: a load writes the same few thousand days in every
    block of rows (the demo's blocks asked for 1.3M of them)."""
    return dt.date.fromordinal(ordinal).isoformat()


def _sqlite_columns(kinds: Sequence[str], arrays: Sequence[Any]) -> list[list[Any]]:
    """Driver cells, one Python list per column: ISO text for dates and instants, ints for
    booleans, floats as they are (SQLite stores a bound NaN as NULL)."""
    columns: list[list[Any]] = []
    for kind, arr in zip(kinds, arrays, strict=True):
        if kind == "date":
            ordinals = np.asarray(arr, dtype=np.int64)
            unique, index = np.unique(ordinals, return_inverse=True)
            names = np.array([_iso_day(o) for o in unique.tolist()], dtype=object)
            columns.append(names[index.reshape(-1)].tolist())
        elif kind == "timestamp":  # a batch has one or a few distinct instants
            stamps: Any = np.asarray(arr, dtype="datetime64[us]")
            instants, index = np.unique(stamps, return_inverse=True)
            as_text: Any = np.datetime_as_string
            texts = as_text(instants, unit="us").tolist()
            names = np.array([t.replace("T", " ") for t in texts], dtype=object)
            columns.append(names[index.reshape(-1)].tolist())
        elif kind == "float8":
            columns.append(np.asarray(arr, dtype=float).tolist())
        elif kind == "bool":
            columns.append(np.asarray(arr, dtype=bool).astype(int).tolist())
        else:
            columns.append(np.asarray(arr).tolist())
    return columns


def _sqlite_insert(cur: Any, table: str, names: Sequence[str], columns: list[list[Any]]) -> None:
    """Insert the rows of these cell lists, ``SQLITE_ROWS`` rows per statement.

    One ``executemany`` step per row costs ~2.2 us for a nine-cell row, where SQLite's own
    insert is ~0.5 us: the rest is the driver's per-statement work (reset, step, the GIL).
    Many rows per statement halve it (~1.1 us a row). The parameters are the cells in row
    order, one flat list sliced per statement, so no tuple is built per row.
    """
    width = len(names)
    per = max(1, min(SQLITE_ROWS, SQLITE_MAX_PARAMS // width))
    n = len(columns[0])
    grid = np.empty((n, width), dtype=object)
    for i, cells in enumerate(columns):
        grid[:, i] = cells
    flat = grid.ravel().tolist()
    row = "(" + ", ".join("?" for _ in names) + ")"
    head = f"INSERT INTO {table} ({', '.join(names)}) VALUES "
    whole = n - n % per
    step = per * width
    if whole:
        params = (flat[i : i + step] for i in range(0, whole * width, step))
        cur.executemany(head + ", ".join([row] * per), params)
    if n > whole:
        cur.execute(head + ", ".join([row] * (n - whole)), flat[whole * width :])


def insert_columns(connection: Connection, table: Table, columns: Sequence[tuple[str, Any]]) -> int:
    """Insert the rows made of these columns (name, array); returns the row count."""
    if not columns or not len(columns[0][1]):
        return 0
    names = [name for name, _ in columns]
    kinds = [_kind(table.c[name].type) for name in names]
    n = len(columns[0][1])
    raw: Any = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.write(HEADER)
            for i in range(0, n, CHUNK_ROWS):
                copy.write(_pg_payload(kinds, [arr[i : i + CHUNK_ROWS] for _, arr in columns]))
            copy.write(TRAILER)
        return n
    cur = raw.cursor()
    try:
        for i in range(0, n, SQLITE_CHUNK):
            block = [arr[i : i + SQLITE_CHUNK] for _, arr in columns]
            _sqlite_insert(cur, table.name, names, _sqlite_columns(kinds, block))
    finally:
        cur.close()
    return n


@contextmanager
def indexes_rebuilt_after(connection: Connection, tables: Sequence[Table]) -> Iterator[None]:
    """Bulk-load into empty tables without index and foreign-key upkeep per row.

    Drops the tables' indexes and constraints (PostgreSQL: primary key, unique, foreign keys,
    read from the catalog so later migrations are covered; SQLite: secondary indexes), runs
    the block, and recreates them from their saved definitions: one sort per index and one
    join per foreign key instead of a b-tree insert and a lookup for every row (about 5x
    faster for millions of rows), then refreshes the tables' planner statistics. Inside the
    caller's transaction; the DDL locks the tables until it commits, so use it for loads into
    empty tables only.
    """
    saved = _save_and_drop(connection, [t.name for t in tables])
    yield
    if connection.dialect.name == "postgresql":  # index builds sort in memory, not on disk
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    for statement in saved:
        connection.exec_driver_sql(statement)
    analyze(connection, [t.name for t in tables])


def _save_and_drop(connection: Connection, names: Sequence[str]) -> list[str]:
    """Drop the tables' indexes/constraints; return the statements that recreate them."""
    run = connection.exec_driver_sql
    if connection.dialect.name != "postgresql":
        marks = ", ".join("?" for _ in names)
        rows = run(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            tuple(names),
        ).all()
        for name, _ in rows:
            run(f'DROP INDEX "{name}"')
        return [sql for _, sql in rows]
    keep: list[tuple[str, str, str]] = []
    foreign: list[tuple[str, str, str]] = []
    indexes: list[tuple[str, str]] = []
    for name in names:
        referenced = run(
            "SELECT count(*) FROM pg_constraint WHERE confrelid = %(t)s::regclass", {"t": name}
        ).scalar()
        constraints = run(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %(t)s::regclass AND contype IN ('p', 'u', 'f')",
            {"t": name},
        ).all()
        backing = {c for c, kind, _ in constraints if kind in ("p", "u")}
        for conname, kind, definition in constraints:
            if kind != "f" and referenced:
                continue  # another table's foreign key needs this key
            statement = f'ALTER TABLE {name} ADD CONSTRAINT "{conname}" {definition}'
            (foreign if kind == "f" else keep).append((name, conname, statement))
        for index, definition in run(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %(t)s", {"t": name}
        ).all():
            if index not in backing:
                indexes.append((index, definition))
    for name, conname, _ in foreign + keep:
        run(f'ALTER TABLE {name} DROP CONSTRAINT "{conname}"')
    for index, _ in indexes:
        run(f'DROP INDEX "{index}"')
    return [s for _, _, s in keep] + [d for _, d in indexes] + [s for _, _, s in foreign]


def pg_select_arrays(
    connection: Connection, select_sql: str, params: Sequence[Any], kinds: Sequence[str]
) -> Iterator[tuple[int, list[Any]]]:
    """Rows of (int4 key, array, array, ...) from PostgreSQL as NumPy arrays, via binary COPY.

    The SELECT groups many values into one row per key (``array_agg``), so the driver hands
    over a few large rows and each array is one ``np.frombuffer`` (its elements are
    fixed-width: no NULL elements, send them as NaN). ``kinds`` gives each array's element
    type ("int4" or "float8").
    """
    elements = [np.dtype([("length", ">i4"), ("value", _WIRE[kind])]) for kind in kinds]
    raw: Any = connection.connection.driver_connection
    sql = f"COPY ({select_sql}) TO STDOUT (FORMAT BINARY)"
    with raw.cursor() as cur, cur.copy(sql, params) as copy:
        blocks = [bytes(block) for block in copy]  # read it all: the caller may write next
    first = True
    for block in blocks:
        data = memoryview(block)
        if first:  # the header arrives with the first row
            data, first = data[len(HEADER) :], False
        if len(data) <= len(TRAILER):
            continue
        key = int.from_bytes(data[6:10], "big", signed=True)
        at, arrays = 10, []
        for element in elements:
            length = int.from_bytes(data[at : at + 4], "big", signed=True)
            body = data[at + 4 : at + 4 + length]
            at += 4 + length
            ndim = int.from_bytes(body[0:4], "big")
            start = 12 + 8 * ndim  # ndim, has-null flag, element type, then dims/bounds
            values: Any = np.frombuffer(body[start:], dtype=element)["value"] if ndim else []
            arrays.append(np.asarray(values).astype(np.float64))
        yield key, arrays
