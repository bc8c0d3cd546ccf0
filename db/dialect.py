"""The one place that knows SQLite and PostgreSQL spell upserts differently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert(dialect_name: str, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_update``/``do_nothing`` for this dialect."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _sqlite_cell(value: Any) -> Any:
    # The text forms SQLAlchemy's SQLite Date and DateTime types read back.
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def bulk_insert(
    connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert many rows in one set-based operation: COPY on PostgreSQL, one executemany on
    SQLite. Runs inside the connection's current transaction. Returns the row count."""
    names = ", ".join(columns)
    count = 0
    raw: Any = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    marks = ", ".join("?" for _ in columns)
    cur = raw.cursor()
    try:
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append([_sqlite_cell(v) for v in row])
            if len(batch) >= 10_000:
                cur.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", batch)
                count += len(batch)
                batch = []
        if batch:
            cur.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", batch)
            count += len(batch)
    finally:
        cur.close()
    return count
