"""Change notifications between processes: PostgreSQL's NOTIFY, sent inside a write's
transaction (delivered when it commits, never if it rolls back), and a listening thread.

SQLite has no notifications (``conninfo`` is None there, and ``notify`` does nothing); a
reader asks the file instead, through ``DataVersion``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from urllib.parse import quote

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from db.dialect import connection_of, is_postgres

CHANNEL = "cityscore_changes"
POLL_SECONDS = 1.0  # how often the listener checks its connection between notifications
log = logging.getLogger("cityscore.notify")


def notify(bind: Session | Connection) -> None:
    """Tell every listener, once the transaction commits, that data changed."""
    if is_postgres(bind):
        connection_of(bind).exec_driver_sql(f"NOTIFY {CHANNEL}")


def conninfo(engine: Engine) -> str | None:
    """A libpq connection string for the engine's database (None on SQLite)."""
    if not is_postgres(engine.dialect.name):
        return None
    url = engine.url
    parts = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        **{k: v for k, v in url.query.items() if isinstance(v, str)},
    }
    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None})


class Listener:
    """A thread that keeps ``LISTEN cityscore_changes`` open on its own connection.

    ``on_listening`` runs once LISTEN is in place (each time, after a reconnect),
    ``on_alive`` then and after every probe that came back (about every ``POLL_SECONDS``),
    ``on_change`` on every notification, ``on_lost`` when the connection fails or the
    listener stops. A probe that never returns (a proxy that hangs) stops ``on_alive``; a
    peer that vanished is cut off by TCP (keepalives, ``tcp_user_timeout``).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        on_listening: Callable[[], None],
        on_alive: Callable[[], None],
        on_change: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.conninfo = conninfo
        self.on_listening, self.on_alive = on_listening, on_alive
        self.on_change, self.on_lost = on_change, on_lost
        self.stopping = threading.Event()
        self.listening = threading.Event()
        self.thread = threading.Thread(target=self._run, name="change-listener", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # any failure: lost until the connection is back
                log.warning("change listener lost its connection: %s", exc)
            self.listening.clear()
            self.on_lost()
            self.stopping.wait(POLL_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(
            self.conninfo,
            autocommit=True,
            application_name="cityscore-change-listener",
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=5000,
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.on_listening()
            self.on_alive()
            self.listening.set()
            while not self.stopping.is_set():
                for _ in conn.notifies(timeout=POLL_SECONDS):
                    self.on_change()
                conn.execute("SELECT 1")  # a dead connection raises here
                self.on_alive()


class DataVersion:
    """Whether any connection committed to a SQLite file since the last question.

    SQLite's ``PRAGMA data_version`` changes, on one connection, exactly when another
    connection has committed to the file; this one never writes, so every commit counts. It
    reads the WAL index in shared memory: microseconds, no query plan, no lock waited for
    (``busy_timeout`` 0). Any failure (the file gone, a lock) answers "changed", so a doubt
    empties the cache instead of keeping it; so does a file replaced under the same name (a
    restore), which the open connection would never see. Not thread-safe: one caller (the
    event loop).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._seen: object = None
        self._file: tuple[int, int] | None = None

    @classmethod
    def of(cls, engine: Engine) -> DataVersion | None:
        """The probe for a SQLite engine's file (None on PostgreSQL and in memory)."""
        if engine.dialect.name != "sqlite":
            return None
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return cls(database)

    def changed(self) -> bool:
        try:
            found = os.stat(self.path)
            if self._conn is not None and self._file != (found.st_dev, found.st_ino):
                self.close()  # another file under the name: its counter is not comparable
            if self._conn is None:
                # mode=rw: never create the file (a missing store stays missing).
                uri = f"file:{quote(self.path)}?mode=rw"
                self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
                self._conn.isolation_level = None
                self._conn.execute("PRAGMA busy_timeout=0")
                self._file = (found.st_dev, found.st_ino)
            # fetchall, not fetchone: the statement ends, so no read transaction stays open.
            version = self._conn.execute("PRAGMA data_version").fetchall()
        except (OSError, sqlite3.Error):
            self.close()
            return True
        if version == self._seen:
            return False
        self._seen = version
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._seen = self._file = None
