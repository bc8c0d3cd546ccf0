"""Bulk inserts of NumPy columns: no Python object per cell on PostgreSQL.

``insert_columns(connection, table, columns)`` writes whole columns (one NumPy array each) in
the connection's transaction. PostgreSQL: the binary ``COPY`` payload is built with NumPy
(big-endian fields, NULL where a float is NaN) and sent in one stream, millions of rows a
second. SQLite: ``executemany`` over rows built from the columns (NaN -> NULL), 10,000 at
a time.

Column arrays by the table column's type: Integer/BigInteger -> ints; Float -> floats (NaN
is NULL); Date -> day ordinals (``date.toordinal()``); Boolean -> bools; DateTime ->
``datetime64[us]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Boolean, Connection, Date, DateTime, Float, Integer, Table

PG_EPOCH_ORDINAL = dt.date(2000, 1, 1).toordinal()
PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us")
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
CHUNK_ROWS = 200_000


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


def _pg_payload(kinds: Sequence[str], arrays: Sequence[Any]) -> bytes:
    """Binary COPY tuples for these columns (no header or trailer)."""
    n = len(arrays[0])
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (f"v{i}", _WIRE.get(kind, "u1"))]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["count"] = len(kinds)
    keep = None
    offset = 2
    width = rec.dtype.itemsize
    for i, (kind, arr) in enumerate(zip(kinds, arrays, strict=True)):
        size = _WIRE_SIZE[kind]
        rec[f"l{i}"] = size
        if kind == "date":
            rec[f"v{i}"] = np.asarray(arr, dtype=np.int64) - PG_EPOCH_ORDINAL
        elif kind == "timestamp":
            rec[f"v{i}"] = (np.asarray(arr, dtype="datetime64[us]") - PG_EPOCH_US).astype(np.int64)
        elif kind == "bool":
            rec[f"v{i}"] = np.asarray(arr, dtype=bool)
        elif kind == "float8":
            values = np.asarray(arr, dtype=float)
            null = np.isnan(values)
            rec[f"v{i}"] = values
            if null.any():
                rec[f"l{i}"][null] = -1
                if keep is None:
                    keep = np.ones((n, width), dtype=bool)
                keep[null, offset + 4 : offset + 4 + size] = False
        else:
            rec[f"v{i}"] = arr
        offset += 4 + size
    raw = rec.view(np.uint8).reshape(n, width)
    return (raw[keep] if keep is not None else raw).tobytes()


def _sqlite_rows(kinds: Sequence[str], arrays: Sequence[Any]) -> list[list[Any]]:
    n = len(arrays[0])
    table = np.empty((n, len(kinds)), dtype=object)
    for i, (kind, arr) in enumerate(zip(kinds, arrays, strict=True)):
        if kind == "date":
            ordinals = np.asarray(arr, dtype=np.int64)
            unique, index = np.unique(ordinals, return_inverse=True)
            names = np.array([dt.date.fromordinal(o).isoformat() for o in unique.tolist()])
            table[:, i] = names[index.reshape(-1)] if n else []
        elif kind == "timestamp":
            stamps = np.asarray(arr, dtype="datetime64[us]")
            table[:, i] = np.datetime_as_string(stamps, unit="us").astype(object)
            table[:, i] = [s.replace("T", " ") for s in table[:, i]]
        elif kind == "float8":
            values = np.asarray(arr, dtype=float)
            column = values.astype(object)
            column[np.isnan(values)] = None
            table[:, i] = column
        elif kind == "bool":
            table[:, i] = np.asarray(arr, dtype=bool).astype(int)
        else:
            table[:, i] = np.asarray(arr).tolist()
    rows: list[list[Any]] = table.tolist()
    return rows


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
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
    cur = raw.cursor()
    try:
        for i in range(0, n, 10_000):
            cur.executemany(sql, _sqlite_rows(kinds, [arr[i : i + 10_000] for _, arr in columns]))
    finally:
        cur.close()
    return n
