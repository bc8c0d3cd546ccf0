"""The daily run: with ``PUBLISH_DAILY_AT=HH:MM`` every server process records a run for
today (city time) once a day at that time.

Each worker process runs its own timer; the store keeps it to one run a day
(``service.record_daily``: writers are serialised, and a computed run for today already
published today means there is nothing to do). A process that is down at the due time does
not catch up later: the admin's ``POST /v1/cityscore/runs`` remains the way to record one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from api.http.lifespan import extend_lifespan
from api.runs import service
from api.settings import Settings

log = logging.getLogger("cityscore.runs")

RECHECK_S = 60.0  # sleep in short steps: a wall clock that jumps is noticed within a minute


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def next_due(now: dt.datetime, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The first instant strictly after ``now`` (aware) at which city clocks read ``at``, as
    an aware UTC datetime. On the day clocks spring forward past ``at`` it is the instant an
    hour later by the new clock; on the day they fall back, the first of the two."""
    now_utc = now.astimezone(dt.UTC)
    day = now_utc.astimezone(tz).date()
    for offset in range(3):
        wall = dt.datetime.combine(day + dt.timedelta(days=offset), at, tzinfo=tz)
        due = wall.astimezone(dt.UTC)
        if due > now_utc:
            return due
    raise AssertionError("unreachable: a city time occurs every day")


def seconds_until(now: dt.datetime, due: dt.datetime) -> float:
    """Real seconds between two aware instants (whatever their zones)."""
    return (due.astimezone(dt.UTC) - now.astimezone(dt.UTC)).total_seconds()


def publish_today(session_factory: Callable[[], Any], settings: Settings) -> bool:
    """Record today's run unless one was already published today; True when recorded."""
    with session_factory() as session:
        recorded = service.record_daily(session, settings.today(), settings.today_began())
        if recorded:
            session.commit()
        return recorded


async def run_daily(
    session_factory: Callable[[], Any],
    settings: Settings,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> None:
    """Forever: wait for the next due time, then record today's run (off the event loop)."""
    at = settings.publish_daily_time()
    assert at is not None
    last = clock()
    while True:
        due = next_due(last, at, settings.tz)
        while (left := seconds_until(clock(), due)) > 0:
            await sleep(min(left, RECHECK_S))
        last = max(clock(), due)
        try:
            recorded = await asyncio.to_thread(publish_today, session_factory, settings)
        except Exception:
            log.exception("daily run failed")
            continue
        if recorded:
            log.info("daily run recorded for %s", settings.today())
        else:
            log.info("daily run for %s already recorded", settings.today())


def install_daily_runs(app: FastAPI, settings: Settings) -> None:
    """Start ``run_daily`` with the app (its lifespan) when ``PUBLISH_DAILY_AT`` is set."""
    if settings.publish_daily_time() is None:
        return

    @contextlib.asynccontextmanager
    async def daily_runs() -> AsyncIterator[None]:
        task = asyncio.create_task(run_daily(app.state.session_factory, settings))
        app.state.daily_runs = task
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    extend_lifespan(app, daily_runs)
