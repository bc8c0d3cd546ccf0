"""SQLite rows are fetched by one thread of a process at a time.

``sqlite3`` releases the GIL for every row it steps and takes it back after. Two threads
fetching at once then hand the GIL to each other on every row, and each handoff is a pair of
futex calls: 16 threads reading 1000-row pages spent 8-11 ms of CPU a page against 3 ms for
one thread (`/v1/values` pages under load). ``db.dialect.stream`` and ``fetch_all`` take a
process-wide lock around each fetch, in slices of rows, so a worker's threads step rows in
turn, a slice each, instead of row by row.

The check: SQLite's progress handler runs in the stepping thread every few VM instructions;
the sequence of threads it saw switches only between slices when fetches are serialised, and
hundreds of times when they are not.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

from sqlalchemy import create_engine

from db import dialect


def test_threads_fetch_sqlite_rows_in_turn_not_row_by_row(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/rows.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (i INTEGER PRIMARY KEY, x REAL)")
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
            "INSERT INTO t SELECT i, i * 0.5 FROM n"
        )
    seen: list[int] = []
    threads, rows = 4, 20_000
    start = threading.Barrier(threads)

    def read(streamed: bool) -> None:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.set_progress_handler(lambda: seen.append(threading.get_ident()), 50)  # type: ignore[union-attr]
            start.wait()
            sql = "SELECT i, x, i * x FROM t ORDER BY i"
            if streamed:
                got = sum(len(chunk) for chunk in dialect.stream(conn, sql, [], 5000))
            else:
                got = len(dialect.fetch_all(conn, sql, []))
            assert got == rows

    for streamed in (True, False):
        seen.clear()
        workers = [threading.Thread(target=read, args=(streamed,)) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        switches = sum(1 for a, b in itertools.pairwise(seen) if a != b)
        slices = threads * (rows // dialect.SQLITE_SLICE + 2)
        assert switches <= slices, (streamed, switches, slices)
    engine.dispose()
