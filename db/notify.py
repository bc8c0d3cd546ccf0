"""Change notifications between processes: PostgreSQL's NOTIFY, sent inside a write's
transaction (delivered when it commits, never if it rolls back), and a listening thread.

SQLite has no notifications: ``conninfo`` is None there, and ``notify`` does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from db.dialect import is_postgres

CHANNEL = "cityscore_changes"
POLL_SECONDS = 1.0  # how often the listener checks its connection between notifications
log = logging.getLogger("cityscore.notify")


def notify(session: Session) -> None:
    """Tell every listener, once the session's transaction commits, that data changed."""
    if is_postgres(session):
        session.execute(text(f"NOTIFY {CHANNEL}"))


def conninfo(engine: Engine) -> str | None:
    """A libpq connection string for the engine's database (None on SQLite)."""
    if not is_postgres(engine.dialect.name):
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """A thread that keeps ``LISTEN cityscore_changes`` open on its own connection.

    ``on_listening`` runs once LISTEN is in place (each time, after a reconnect),
    ``on_change`` on every notification, ``on_lost`` when the connection fails or the
    listener stops. A dead connection is noticed within ``POLL_SECONDS`` (a probe between
    waits; TCP keepalives for a peer that vanished).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        on_listening: Callable[[], None],
        on_change: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.conninfo = conninfo
        self.on_listening, self.on_change, self.on_lost = on_listening, on_change, on_lost
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
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.on_listening()
            self.listening.set()
            while not self.stopping.is_set():
                for _ in conn.notifies(timeout=POLL_SECONDS):
                    self.on_change()
                conn.execute("SELECT 1")  # a dead connection raises here
