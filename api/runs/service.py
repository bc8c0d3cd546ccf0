"""Published runs: record one, list them, and Boston's Full Metric List and Summary.

A computed run keeps no figures: its rows are ``known.document`` for its as-of date as known
at its ``published_at``. An archived (imported) run's rows are kept verbatim in
``run_figures``. Runs are ordered by ``published_at`` then id; the latest run is the last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import and_, or_, select
from sqlmodel import Session

from api.audit import service as audit
from api.changes import service as changes
from api.cityscore import known
from api.errors import Unprocessable
from api.http.params import MIN_DATE
from api.http.respond import Listing
from api.runs.schemas import FIGURE_COLUMNS, RUN_COLUMNS, SUMMARY_COLUMNS
from api.scoring.windows import WINDOW_NAMES, windows_as_of
from db.models import ApiKey, CityScoreRun, DataState, MetricValue, RunFigure
from db.session import begin_write, write_instant

R = CityScoreRun.__table__  # type: ignore[attr-defined]
F = RunFigure.__table__  # type: ignore[attr-defined]
V = MetricValue.__table__  # type: ignore[attr-defined]
DS = DataState.__table__  # type: ignore[attr-defined]

# What the answers depend on: the runs themselves, and (through known.document) values,
# scores and definitions. With a real as-known-at document a run's figures never change, but
# ``revised`` (figures as known now) does.
SCOPES = ("runs", "scores", "metrics")
TEXT_COLUMNS = frozenset({"metric_name", "metric_logic"})
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
BATCH = 500  # runs read per query while streaming the Full Metric List
SUMMARY_DIGITS = 6
FIGURE_PARTS = ("score", "numerator", "denominator")


class Keyed(tuple[Any, ...]):
    """A row whose keyset key travels beside its published columns (``key``)."""

    key: list[Any]

    def __new__(cls, cells: Sequence[Any], key: list[Any]) -> Keyed:
        row = super().__new__(cls, cells)
        row.key = key
        return row


def _key_of(row: Sequence[Any]) -> list[Any]:
    assert isinstance(row, Keyed)
    return list(row.key)


def local_ts(instant: dt.datetime, tz: ZoneInfo) -> str:
    """A naive-UTC instant as Boston writes ``score_calculated_ts``: city time, seconds."""
    return instant.replace(tzinfo=dt.UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def day_name(as_of: dt.date) -> str:
    """The weekday of the day window (the day before the as-of date), in English."""
    return DAY_NAMES[(as_of - dt.timedelta(days=1)).weekday()]


# --- writes ----------------------------------------------------------------------------------


def record(
    session: Session,
    as_of: dt.date,
    *,
    key: ApiKey | None,
    today: dt.date,
    scheduled: bool = False,
) -> dict[str, Any]:
    """Record a computed run for ``as_of`` published now (the caller commits)."""
    if as_of < MIN_DATE:
        raise Unprocessable(
            f"as_of must be on or after {MIN_DATE}.",
            errors=[{"row": None, "field": "as_of", "message": f"before {MIN_DATE}"}],
        )
    if as_of > today:
        raise Unprocessable(
            f"as_of {as_of} is in the future (today is {today} in the city).",
            errors=[{"row": None, "field": "as_of", "message": "must not be in the future"}],
        )
    published_at = write_instant(session)  # takes the writer lock; the store's clock
    # Under the writer lock nothing else commits: the figures as known now are the published
    # ones, read from the materialised scores.
    fingerprint = _fingerprint(known.document(session, as_of, None))
    session.execute(
        R.insert().values(
            as_of=as_of, published_at=published_at, archived=False, figures_sha256=fingerprint
        )
    )
    audit.record(
        session,
        key=key,
        action="run.publish",
        target=as_of.isoformat(),
        detail={"published_at": published_at.isoformat(), "scheduled": scheduled},
    )
    changes.bump(session, ["runs"])
    return {"as_of": as_of, "published_at": published_at, "archived": False}


def record_daily(session: Session, today: dt.date, today_began: dt.datetime) -> bool:
    """The scheduler's run for ``today``, unless a computed run for that date was already
    published today (by another worker, or by the admin): False then. The caller commits.

    ``begin_write`` serialises writers, so of several workers waking at the same minute the
    first inserts and the others, reading after it committed, find its run."""
    begin_write(session)
    found = session.execute(
        select(R.c.id)
        .where(R.c.as_of == today, ~R.c.archived, R.c.published_at >= today_began)
        .limit(1)
    ).first()
    if found is not None:
        return False
    record(session, today, key=None, today=today, scheduled=True)
    return True


# --- reads -----------------------------------------------------------------------------------


def _figures(doc: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        m["metric"]: (m["target"], *(m[w][p] for w in WINDOW_NAMES for p in FIGURE_PARTS))
        for m in doc["metrics"]
    }


def _fingerprint(doc: dict[str, Any]) -> str:
    """SHA-256 of a document's figures (targets, scores, numerators, denominators), exact:
    floats as their shortest round-trip text."""
    return hashlib.sha256(orjson.dumps(sorted(_figures(doc).items()))).hexdigest()


def _runs_query(start: dt.date | None, end: dt.date | None) -> Any:
    stmt = select(R.c.id, R.c.as_of, R.c.published_at, R.c.archived, R.c.figures_sha256).order_by(
        R.c.published_at, R.c.id
    )
    if start is not None:
        stmt = stmt.where(R.c.as_of >= start)
    if end is not None:
        stmt = stmt.where(R.c.as_of <= end)
    return stmt


def _after(stmt: Any, after: tuple[dt.datetime, int] | None) -> Any:
    if after is None:
        return stmt
    published_at, run_id = after
    same = and_(R.c.published_at == published_at, R.c.id > run_id)
    return stmt.where(or_(R.c.published_at > published_at, same))


def _parse_run_key(key: list[Any]) -> tuple[dt.datetime, int]:
    instant, run_id = key
    if not isinstance(instant, str) or not isinstance(run_id, int) or isinstance(run_id, bool):
        raise ValueError("run key")
    return dt.datetime.fromisoformat(instant), run_id


def _maybe_revised(
    session: Session,
    as_of: dt.date,
    published_at: dt.datetime,
    definitions_changed: dt.datetime | None,
) -> bool:
    """False when nothing a run's figures read was written after it was published, so the
    two documents need not be computed: no definition changed since (the ``metrics`` change
    scope) and no value on a day up to the last day its windows read was written since (a
    write leaves its (metric, date) row in ``metric_values`` stamped after it, tombstones
    included). True means "compare the documents", not "revised"."""
    if definitions_changed is not None and definitions_changed > published_at:
        return True
    last_day = max(w.end for w in windows_as_of(as_of).values())
    later = session.execute(
        select(V.c.metric_id).where(V.c.updated_at > published_at, V.c.date <= last_day).limit(1)
    ).first()
    return later is not None


def listing(session: Session, start: dt.date | None, end: dt.date | None) -> Listing:
    """Runs with as_of in [start, end], by published_at then id, each with ``revised``."""
    now_docs: dict[dt.date, dict[str, Any]] = {}

    definitions_changed = definitions_changed_at(session)

    def revised(run: Any) -> bool:
        if not _maybe_revised(session, run.as_of, run.published_at, definitions_changed):
            return False
        if run.as_of not in now_docs:
            now_docs[run.as_of] = known.document(session, run.as_of, None)
        now = now_docs[run.as_of]
        if run.figures_sha256 is not None:  # cheap: today's materialised figures vs the hash
            return bool(_fingerprint(now) != run.figures_sha256)
        then = known.document(session, run.as_of, run.published_at)
        return _figures(then) != _figures(now)

    def fetch(after: Any, limit: int | None) -> list[Keyed]:
        stmt = _after(_runs_query(start, end), after)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [
            Keyed(
                (
                    r.as_of,
                    r.published_at,
                    False if r.archived else revised(r),
                    bool(r.archived),
                ),
                [r.published_at.isoformat(), r.id],
            )
            for r in session.execute(stmt).all()
        ]

    return Listing(
        name="cityscore-runs",
        columns=RUN_COLUMNS,
        fetch=fetch,
        key_of=_key_of,
        key_width=2,
        parse_key=_parse_run_key,
    )


def latest_run(session: Session) -> Any:
    """The latest run (by published_at, then id), or None."""
    return session.execute(
        select(R.c.id, R.c.as_of, R.c.published_at, R.c.archived)
        .order_by(R.c.published_at.desc(), R.c.id.desc())
        .limit(1)
    ).first()


def _archived_rows(session: Session, run_id: int) -> list[Any]:
    return list(
        session.execute(
            select(F.c.metric_name, F.c.target, F.c.metric_logic, *(F.c[c] for c in FIGURE_COLUMNS))
            .where(F.c.run_id == run_id)
            .order_by(F.c.position)
        )
    )


def definitions_changed_at(session: Session) -> dt.datetime | None:
    """When a metric definition last changed (the ``metrics`` change scope), if ever."""
    found: dt.datetime | None = session.execute(
        select(DS.c.changed_at).where(DS.c.scope == "metrics")
    ).scalar()
    return found


def run_document(
    session: Session, run: Any, definitions_changed: dt.datetime | None
) -> dict[str, Any]:
    """A computed run's document as known at its ``published_at``. When nothing it reads was
    written since, that is the document as known now, which ``known.document`` answers from
    the materialised scores (the same engine's figures, bit for bit) instead of recomputing."""
    if _maybe_revised(session, run.as_of, run.published_at, definitions_changed):
        return known.document(session, run.as_of, run.published_at)
    return known.document(session, run.as_of, None)


def run_rows(
    session: Session,
    run: Any,
    tz: ZoneInfo,
    flag: int,
    definitions_changed: dt.datetime | None,
) -> list[tuple[Any, ...]]:
    """One run's Full Metric List rows (the metrics in CityScore as known at its instant)."""
    ts = local_ts(run.published_at, tz)
    if run.archived:
        return [(r[0], ts, *r[1:], flag) for r in _archived_rows(session, run.id)]
    doc = run_document(session, run, definitions_changed)
    return [
        (
            m["name"],
            ts,
            m["target"],
            m["metric_logic"],
            *(m[w][p] for w in WINDOW_NAMES for p in FIGURE_PARTS),
            flag,
        )
        for m in doc["metrics"]
    ]


def full_metric_list(
    session: Session, tz: ZoneInfo, start: dt.date | None, end: dt.date | None
) -> Iterator[tuple[Any, ...]]:
    """Every run's rows, oldest run first, computed one run at a time (constant memory).

    ``latest_score_flag`` is 1 on the rows of the latest run of all (not of the range)."""
    latest = latest_run(session)
    if latest is None:
        return
    # Runs recorded while this streams come after the latest: they are left out, so that
    # exactly one run (the last one written) carries the flag.
    upto = _runs_query(start, end).where(
        or_(
            R.c.published_at < latest.published_at,
            and_(R.c.published_at == latest.published_at, R.c.id <= latest.id),
        )
    )
    changed = definitions_changed_at(session)
    after: tuple[dt.datetime, int] | None = None
    while True:
        runs = session.execute(_after(upto, after).limit(BATCH)).all()
        for run in runs:
            yield from run_rows(session, run, tz, 1 if run.id == latest.id else 0, changed)
        if len(runs) < BATCH:
            return
        after = (runs[-1].published_at, runs[-1].id)


def _rounded(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return round(float(value), SUMMARY_DIGITS)
    except ValueError:  # an archived figure that is not a number (never from the importer)
        return None


def summary_rows(session: Session, run: Any, tz: ZoneInfo) -> list[tuple[Any, ...]]:
    """Boston's CityScore Summary for ``run``: each metric's four scores, 6 decimals.

    ``score_final_table_ts`` is the run's own instant too: a run is published at once, so the
    final table is complete at the instant the scores were calculated."""
    ts = local_ts(run.published_at, tz)
    name = day_name(run.as_of)
    out = []
    for row in run_rows(session, run, tz, 0, definitions_changed_at(session)):
        scores = (row[4], row[7], row[10], row[13])  # day/week/month/quarter _score
        out.append((row[0], ts, ts, *(_rounded(s) for s in scores), name))
    return out


def summary_listing(session: Session, run: Any, tz: ZoneInfo) -> Listing:
    cache: list[list[Keyed]] = []

    def fetch(after: Any, limit: int | None) -> list[Keyed]:
        if not cache:
            found = summary_rows(session, run, tz) if run is not None else []
            cache.append([Keyed(r, [n]) for n, r in enumerate(found)])
        picked = cache[0][0 if after is None else after + 1 :]
        return picked if limit is None else picked[:limit]

    def parse_key(key: list[Any]) -> int:
        (n,) = key
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError("summary key")
        return n

    return Listing(
        name="cityscore-summary",
        columns=SUMMARY_COLUMNS,
        fetch=fetch,
        key_of=_key_of,
        key_width=1,
        parse_key=parse_key,
        text_columns=frozenset({"metric_name"}),
    )
