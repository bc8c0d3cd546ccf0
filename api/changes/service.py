"""Change counters per scope: the source of every ETag and Last-Modified.

Scopes: ``departments``, ``metrics`` (definitions), ``values`` (any daily value),
``metric:<id>`` (one metric's definition, values and scores), ``department:<id>`` (one
department's own row), ``scores`` (anything any score or CityScore depends on),
``analyses``. Each endpoint's ETag uses the scopes of exactly the data it shows: one
metric's values use ``metric:<id>``; a department's scorecard uses ``department:<id>`` and
the ``metric:<id>`` of each of its metrics (so a write elsewhere leaves it as it is, and a
metric moving in or out changes the set, hence the token).
A counter moves only when a write really changed something, so a replayed batch leaves every
ETag as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, text
from sqlmodel import Session

from api.changes.cache import BUMPED_KEY, cached
from api.http.caching import Version, not_before
from db.dialect import insert, is_postgres
from db.models import DataState, Metric, utcnow
from db.notify import notify

TABLE = DataState.__table__  # type: ignore[attr-defined]
M = Metric.__table__  # type: ignore[attr-defined]
EPOCH = dt.datetime(1970, 1, 1)


BUMP_CHUNK = 2000  # scopes per statement on SQLite (3 parameters each, well under its limit)
# PostgreSQL: the scopes as one array (a thousand-row VALUES list costs more to build and send
# than to run), upserted in array order.
PG_BUMP = text(
    "INSERT INTO data_state (scope, version, changed_at) "
    "SELECT s, 1, :now FROM unnest(CAST(:scopes AS text[])) WITH ORDINALITY AS t(s, n) "
    "ORDER BY n ON CONFLICT (scope) DO UPDATE "
    "SET version = data_state.version + 1, changed_at = EXCLUDED.changed_at"
)


def bump(session: Session, scopes: Iterable[str]) -> None:
    """Advance each scope's counter (inside the caller's transaction): one upsert (SQLite:
    one per 2,000 scopes), rows in a fixed order so that concurrent writers cannot deadlock."""
    now = utcnow()
    ordered = sorted(set(scopes))
    if ordered and is_postgres(session):
        session.execute(PG_BUMP, {"scopes": ordered, "now": now})
    elif ordered:
        for i in range(0, len(ordered), BUMP_CHUNK):
            chunk = ordered[i : i + BUMP_CHUNK]
            rows = [{"scope": s, "version": 1, "changed_at": now} for s in chunk]
            stmt = insert(session, TABLE).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=["scope"],
                set_={"version": TABLE.c.version + 1, "changed_at": now},
            )
            session.execute(stmt)
    if ordered:
        notify(session)  # every worker's cached versions go when this commits
        session.info[BUMPED_KEY] = True  # ... and this worker's, right after


def version(session: Session, *scopes: str) -> Version:
    """The combined version of ``scopes``: a token and the latest change time (from the
    worker's memory when a notified cache holds it, see ``api.changes.cache``)."""
    return cached(session, ("version", scopes), lambda: _read_version(session, scopes))


def _read_version(session: Session, scopes: tuple[str, ...]) -> Version:
    rows = session.execute(
        select(TABLE.c.scope, TABLE.c.version, TABLE.c.changed_at).where(TABLE.c.scope.in_(scopes))
    ).all()
    found = {r.scope: r for r in rows}
    # The change time is part of the token: a store rebuilt from scratch restarts its counters,
    # and an old ETag (or a cached body) must not match the new data.
    token = ",".join(
        f"{s}:{found[s].version}:{found[s].changed_at.isoformat()}" if s in found else f"{s}:0"
        for s in scopes
    )
    last = max((r.changed_at for r in rows), default=EPOCH)  # never written: the epoch
    return Version(token, last)


def department_scopes(session: Session, department_id: int | None) -> list[str]:
    """The scopes a department's own data depends on: its row and each of its metrics."""
    if department_id is None:
        return ["department:none"]
    ids = session.execute(
        select(M.c.id).where(M.c.department_id == department_id).order_by(M.c.id)
    ).scalars()
    return [f"department:{department_id}", *(f"metric:{m}" for m in ids)]


def dated_version(
    session: Session, today_began: dt.datetime, chosen: bool, *scopes: str
) -> Version:
    """The version of an answer about a date: ``scopes``' version and, when the date was not
    chosen by the client (it defaulted to today), at least the start of today, since the
    same URL answers for another day after midnight."""
    found = version(session, *scopes)
    return found if chosen else not_before(found, today_began)
