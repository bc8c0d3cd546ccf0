"""The engine and the one Session factory.

SQLite gets WAL, foreign keys and a busy timeout so that a reader never blocks the nightly
writer; PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

WRITER_OPTION = "cityscore_writer"


WRITE_LOCK_ID = 0x43495459  # "CITY": the one advisory lock every writer takes on PostgreSQL


def begin_write(session: Session) -> None:
    """Start the session's write transaction so concurrent writers queue instead of failing.

    Writers are serialised: SQLite starts the transaction with BEGIN IMMEDIATE; PostgreSQL takes
    one transaction-scoped advisory lock. Scores and CityScore are recomputed from committed
    rows, so two batches must not recompute the same as-of dates at the same time. A read-only
    transaction already open (the API-key lookup) is ended first: SQLite cannot upgrade a read
    snapshot to a writer safely. Re-entrant: calling it again in the same transaction is a no-op.
    """
    if session.info.get(WRITER_OPTION):
        return
    if session.in_transaction():
        session.commit()
    bind = session.get_bind()
    if isinstance(bind, Engine):
        conn = session.connection(execution_options={WRITER_OPTION: True})
    else:  # bound to a connection (tests): its outer transaction is already open
        conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_ID})")
    session.info[WRITER_OPTION] = True


def write_instant(session: Session) -> dt.datetime:
    """The instant a write stamps its rows with (``updated_at``), from the store, not the app.

    Read from the database's clock after ``begin_write`` took the writer lock, and never
    earlier than the latest ``updated_at`` already stored (one index lookup), so stamps
    follow commit order whatever the app servers' clocks say, and an ``updated_since`` sync
    never misses a batch that committed after it. Naive UTC, microseconds.
    """
    begin_write(session)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        clock = "clock_timestamp() AT TIME ZONE 'UTC'"
    else:
        clock = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    clock_now, latest = conn.exec_driver_sql(
        f"SELECT {clock}, (SELECT max(updated_at) FROM metric_values)"
    ).one()
    now, last = _instant(clock_now), _instant(latest)
    if last is not None and now is not None and now <= last:
        now = last + dt.timedelta(microseconds=1)
    assert now is not None
    return now


def _instant(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the pragmas and pool settings this service relies on."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that
            # SAVEPOINTs work (the tests run every case inside a rolled-back transaction).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: two writers queue instead of deadlocking.
            immediate = conn.get_execution_options().get(WRITER_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    # As many pooled connections as the threadpool has threads (anyio's default is 40): a
    # smaller pool churns overflow connections, each a new PostgreSQL backend. No pre-ping
    # (a round trip per checkout): a connection lost to a server restart fails one request
    # with 503 and SQLAlchemy then replaces the whole pool.
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_recycle", 3600)
    return create_engine(url, **kwargs)


def session_factory(bind: Any) -> Any:
    """A Session factory bound to an engine or (in tests) to one connection."""

    def factory() -> Session:
        session = Session(
            bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        # The writer flag lasts one transaction.
        event.listen(session, "after_transaction_end", _clear_writer_flag)
        return session

    return factory


def _clear_writer_flag(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(WRITER_OPTION, None)
