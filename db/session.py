"""The engine and the one Session factory.

SQLite gets WAL, foreign keys and a busy timeout so that a reader never blocks the nightly
writer; PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

WRITER_OPTION = "cityscore_writer"
# session.info flag: a streamed download owns the session and closes it when its export ends.
DETACHED = "cityscore_detached"


# Per-process pool defaults: 4 workers x (15 + 5) = 80 connections fit PostgreSQL's default
# max_connections=100 (minus 3 reserved for superusers), with room for migrations and psql.
DEFAULT_POOL_SIZE = 15
DEFAULT_MAX_OVERFLOW = 5
DEFAULT_POOL_TIMEOUT = 5.0

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


def make_engine(url: str, *, bulk: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the pragmas and pool settings this service relies on.

    ``bulk``: for a one-shot load of millions of rows into empty tables (``cityscore demo``):
    SQLite gets a rollback journal instead of WAL, a 256 MB page cache and no fsync at commit
    (``synchronous=OFF``: a crash of the process can lose the load, never the file's
    integrity). Never for the server."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:  # an in-memory database has one connection per thread: no pool to size
            for option in ("pool_size", "max_overflow", "pool_timeout"):
                kwargs.pop(option, None)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that
            # SAVEPOINTs work (the tests run every case inside a rolled-back transaction).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not (bulk and _rollback_journal(cur)):
                _wal(cur)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=OFF" if bulk else "PRAGMA synchronous=NORMAL")
            if bulk:
                cur.execute("PRAGMA cache_size=-262144")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: two writers queue instead of deadlocking.
            immediate = conn.get_execution_options().get(WRITER_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    # The pool is per process: workers x (pool_size + max_overflow) must fit the server's
    # max_connections (see connection_budget). Threads beyond the pool wait up to pool_timeout
    # seconds for a connection (then the request is a 503). No pre-ping (a round trip per
    # checkout): a connection lost to a server restart fails one request with 503 and
    # SQLAlchemy then replaces the whole pool.
    kwargs.setdefault("pool_size", DEFAULT_POOL_SIZE)
    kwargs.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)
    kwargs.setdefault("pool_timeout", DEFAULT_POOL_TIMEOUT)
    kwargs.setdefault("pool_recycle", 3600)
    return create_engine(url, **kwargs)


def _rollback_journal(cur: Any) -> bool:
    """For a bulk load, a rollback journal instead of WAL: WAL writes every page of the load
    twice (to the WAL, then into the file) and looks every page read up in its index, while a
    rollback journal holds only the pages that existed before the load. False when another
    connection has the file open (SQLite then refuses to leave WAL). The next normal engine's
    connection sets WAL again."""
    try:
        mode = cur.execute("PRAGMA journal_mode=DELETE").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    return bool(mode and mode[0] == "delete")


def _wal(cur: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried for up to 30 s: while another connection is
    switching a new file to WAL, SQLite answers "database is locked" at once, without waiting
    out the busy timeout (processes starting together on a new file hit it)."""
    deadline, delay = time.monotonic() + 30, 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def connection_budget(
    url: str, workers: int, pool_size: int, max_overflow: int, *, listeners: int = 0
) -> list[str]:
    """Warnings when ``workers`` processes could open more connections than PostgreSQL allows
    (each: its pool, its overflow and ``listeners`` more, the change listener's).

    Empty on SQLite, and when the server cannot be asked (``db upgrade`` and /readyz say why).
    """
    if is_sqlite(url):
        return []
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            limit = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
            reserved = int(conn.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
    except Exception:
        return []
    finally:
        engine.dispose()
    need = workers * (pool_size + max_overflow + listeners)
    usable = limit - reserved
    if need <= usable:
        return []
    extra = f" + {listeners} listener" if listeners else ""
    return [
        f"{workers} worker(s) x (DB_POOL_SIZE {pool_size} + DB_MAX_OVERFLOW {max_overflow}"
        f"{extra}) = {need} connections, more than the {usable} this PostgreSQL server allows "
        f"(max_connections {limit} - superuser_reserved_connections {reserved}); lower "
        "DB_POOL_SIZE/DB_MAX_OVERFLOW or the workers, or raise max_connections"
    ]


class StoreSession(Session):
    """The app's session: its writer flag (``begin_write``) lasts one transaction."""


@event.listens_for(StoreSession, "after_transaction_end")
def _clear_writer_flag(session: Session, transaction: Any) -> None:
    # Class-level: registered on each session (one per request), making and closing one
    # took 16.6 us instead of 5.9.
    if transaction.parent is None:
        session.info.pop(WRITER_OPTION, None)


def session_factory(bind: Any) -> Any:
    """A Session factory bound to an engine or (in tests) to one connection."""

    def factory() -> Session:
        return StoreSession(
            bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    return factory
