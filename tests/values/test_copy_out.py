"""``db.dialect.copy_csv_out``: PostgreSQL's COPY read straight from libpq, to its end.

The rows are taken from libpq while they are received and the COPY's final result is
collected by hand, so these check what psycopg's own reader guaranteed: every row in order,
an error at the end raised (never a download silently cut short), the connection usable
afterwards, and a reader that stops early leaving no COPY running.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from db.dialect import copy_csv_out


@pytest.fixture
def backend() -> str:
    """PostgreSQL only: SQLite has no COPY."""
    return "postgresql"


ROWS = "SELECT x, x * 2 FROM generate_series(1, %s) AS x ORDER BY x"


def _expected(n: int) -> bytes:
    return b"".join(f"{x},{x * 2}\n".encode() for x in range(1, n + 1))


@pytest.mark.parametrize("n", [0, 1, 7, 50_000])
def test_every_row_arrives_in_order_in_chunks(connection: Any, n: int) -> None:
    chunks = list(copy_csv_out(connection, ROWS, [n], 4096))
    assert b"".join(chunks) == _expected(n)
    assert all(len(c) >= 4096 for c in chunks[:-1])  # the chunk size is kept
    # The COPY's result was collected: the connection takes the next statement.
    assert connection.execute(text("SELECT 41 + 1")).scalar_one() == 42


@pytest.mark.parametrize("n", [5, 30_000])
def test_an_error_after_rows_were_sent_is_raised(connection: Any, n: int) -> None:
    # Row n divides by zero: the server has sent rows before it fails.
    failing = f"SELECT 1 / ({n} - x) FROM generate_series(1, {2 * n}) AS x"
    received = bytearray()
    with pytest.raises(psycopg.errors.DivisionByZero, match="division by zero"):
        for chunk in copy_csv_out(connection, failing, [], 1024):
            received += chunk
    assert received.count(b"\n") < n


def test_a_reader_that_stops_early_ends_the_copy(engine: Engine) -> None:
    with engine.connect() as conn, engine.connect() as observer:
        transaction = conn.begin()
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        stream = copy_csv_out(conn, ROWS, [2_000_000], 64 * 1024)
        first = next(stream)
        assert first.startswith(b"1,2\n")
        stream.close()  # the client went away: the COPY is cancelled and drained
        # Seen from another connection, the server no longer runs it.
        state = observer.execute(
            text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar_one()
        assert state != "active"
        transaction.rollback()  # (the cancel aborted the transaction, as a session close ends it)
        assert conn.execute(text("SELECT 'still usable'")).scalar_one() == "still usable"
