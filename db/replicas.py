"""Read replicas: which engine a public read uses, and when to fall back to the primary.

``DATABASE_READ_URL`` names one or more PostgreSQL streaming replicas (comma-separated).
Public GETs read from a healthy replica, round-robin; a replica that is unreachable, or that
lags more than ``READ_MAX_LAG_S`` behind, is passed over until a later check finds it well,
and reads go to the primary meanwhile (logged once per change). Health is checked in the
request's own thread at most every ``check_every`` seconds per replica, so a request never
waits on more than one small query for it.

A response's rows and its ETag come from the same session, so from the same store: a client
never caches a replica's older answer under a newer ETag.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

log = logging.getLogger("cityscore.replicas")

LAG_SQL = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


@dataclass
class Replica:
    engine: Engine
    healthy: bool = True
    lag: float = 0.0
    checked: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        url = self.engine.url
        return f"{url.host}:{url.port}/{url.database}"


class ReadRouter:
    """Picks the engine for a public read: a healthy replica, else the primary."""

    def __init__(
        self,
        primary: Engine,
        replicas: Sequence[Engine],
        *,
        max_lag: float = 30.0,
        check_every: float = 2.0,
    ):
        self.primary = primary
        self.replicas = [Replica(e) for e in replicas]
        self.max_lag = max_lag
        self.check_every = check_every
        self._turn = itertools.count()

    def _check(self, replica: Replica) -> None:
        now = time.monotonic()
        if now - replica.checked < self.check_every or not replica.lock.acquire(blocking=False):
            return
        try:
            replica.checked = now
            try:
                with replica.engine.connect() as conn:
                    replica.lag = float(conn.execute(LAG_SQL).scalar_one())
                healthy = replica.lag <= self.max_lag
                reason = f"lags {replica.lag:.1f} s" if not healthy else ""
            except Exception as exc:  # unreachable, refusing, or not PostgreSQL
                healthy, reason = False, f"unreachable ({type(exc).__name__})"
            if healthy != replica.healthy:
                if healthy:
                    log.warning("read replica %s is back; reads use it again", replica.name)
                else:
                    log.warning("read replica %s %s: reads go to the primary", replica.name, reason)
            replica.healthy = healthy
        finally:
            replica.lock.release()

    def engine_for_read(self) -> Engine:
        """The engine this read should use (blocking: call it from a worker thread)."""
        if not self.replicas:
            return self.primary
        start = next(self._turn)
        for i in range(len(self.replicas)):
            replica = self.replicas[(start + i) % len(self.replicas)]
            self._check(replica)
            if replica.healthy:
                return replica.engine
        return self.primary

    def mark_failed(self, engine: Engine) -> None:
        """A read on ``engine`` failed to connect: stop using it until the next check."""
        for replica in self.replicas:
            if replica.engine is engine and replica.healthy:
                replica.healthy = False
                replica.checked = time.monotonic()
                log.warning("read replica %s failed a read: reads go to the primary", replica.name)


def read_urls(raw: str) -> list[str]:
    """The replica URLs of ``DATABASE_READ_URL`` (comma-separated; empty: none)."""
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    for url in urls:
        if make_url(url).get_backend_name() != "postgresql":
            raise ValueError("DATABASE_READ_URL must name PostgreSQL replicas")
    return urls


def connectable(router: ReadRouter) -> Engine:
    """A read engine that answers now: a replica that fails its pre-ping is passed over."""
    engine = router.engine_for_read()
    if engine is router.primary:
        return engine
    try:
        with engine.connect():  # pool_pre_ping: a dead replica fails here, not mid-query
            pass
    except Exception:
        router.mark_failed(engine)
        return router.primary
    return engine


class ReadSession(Session):
    """A session for one public read, bound on first use to a replica or the primary."""

    def __init__(self, router: ReadRouter, **kwargs: Any):
        super().__init__(**kwargs)
        self._router = router
        self._chosen: Engine | None = None

    def get_bind(self, *args: Any, **kwargs: Any) -> Engine:
        if self._chosen is None:
            self._chosen = connectable(self._router)
        return self._chosen
