"""``cityscore import boston-full-metric-list``: Boston's published record as archived runs.

A Full Metric List export has one row per metric per scoring run (its 17 columns, see
``FULL_METRIC_LIST_COLUMNS``; others are ignored). Each distinct ``score_calculated_ts``
becomes one archived run:

- ``published_at`` is that timestamp read as city-local time (``CITY_TIMEZONE``), converted
  to UTC (a timestamp with an offset is taken as written; in the repeated hour when clocks
  fall back, the first of the two instants);
- ``as_of`` is the date of ``score_calculated_ts`` as written (Boston scores in the morning
  for the day before: the day window of ``as_of`` is the day before it, as ours is);
- the figures are kept verbatim as text (blanks as null) in ``run_figures``, in file order;
  ``latest_score_flag`` is not kept: ``runs.csv`` derives it from the runs it serves.

Metrics are matched by name; a name not found creates a metric in the ``imported``
department (created when missing), out of CityScore (so an archive never changes today's
CityScore), with direction, aggregation and reference read back from ``metric_logic`` (the
inverse of ``api.scoring.scores.metric_logic``; unknown logic: higher_is_better, mean,
target), and, for a target metric, each target value the file shows effective from the as-of
date of the first run showing it.

Idempotent: a run whose ``published_at`` an archived run already has is skipped whole, so
importing the same file twice (or an export that overlaps an earlier one) adds only the runs
not yet imported.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from api.audit import service as audit
from api.changes import service as changes
from api.http.params import MAX_DATE, MIN_DATE
from api.metrics import revisions
from api.metrics.schemas import Aggregation
from api.runs.schemas import FIGURE_COLUMNS, FULL_METRIC_LIST_COLUMNS
from api.scoring.scores import DIRECTIONS, REFERENCES, metric_logic
from db.models import CityScoreRun, Department, Metric, MetricTarget, RunFigure
from db.session import write_instant

R = CityScoreRun.__table__  # type: ignore[attr-defined]
F = RunFigure.__table__  # type: ignore[attr-defined]
M = Metric.__table__  # type: ignore[attr-defined]
D = Department.__table__  # type: ignore[attr-defined]
TG = MetricTarget.__table__  # type: ignore[attr-defined]

IMPORTED_DEPARTMENT = "imported"
NUMBER_COLUMNS = ("target", *FIGURE_COLUMNS)
FALLBACK_KIND = ("higher_is_better", "mean", "target")
MAX_NAME = 200


class ImportProblem(ValueError):
    """The file cannot be imported; the message is the one-line reason."""


@dataclass
class ParsedRun:
    score_calculated_ts: str
    published_at: dt.datetime  # naive UTC
    as_of: dt.date
    rows: list[dict[str, str | None]] = field(default_factory=list)


def _squash(logic: str) -> str:
    return "".join(logic.split()).lower()


def _logic_kinds() -> dict[str, tuple[str, str, str]]:
    kinds: dict[str, tuple[str, str, str]] = {}
    for aggregation in get_args(Aggregation):
        for reference in REFERENCES:
            for direction in DIRECTIONS:
                try:
                    logic = metric_logic(direction, aggregation, reference)
                except KeyError:
                    continue
                kinds.setdefault(_squash(logic), (direction, aggregation, reference))
    return kinds


LOGIC_KINDS = _logic_kinds()


def kind_of(logic: str | None) -> tuple[str, str, str]:
    """(direction, aggregation, reference) whose metric_logic is ``logic`` (spaces and case
    ignored); the fallback when it is blank or unknown."""
    return LOGIC_KINDS.get(_squash(logic or ""), FALLBACK_KIND)


def _published_at(text: str, tz: ZoneInfo) -> tuple[dt.datetime, dt.date]:
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"score_calculated_ts {text!r} is not a timestamp") from None
    if not MIN_DATE <= stamp.date() <= MAX_DATE:
        raise ValueError(f"score_calculated_ts {text!r} is out of range")
    local = stamp.replace(tzinfo=tz) if stamp.tzinfo is None else stamp
    return local.astimezone(dt.UTC).replace(tzinfo=None), stamp.date()


def _number(column: str, text: str) -> None:
    try:
        float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None


def read_full_metric_list(path: Path, tz: ZoneInfo) -> list[ParsedRun]:
    """Parse a Full Metric List export into runs, in order of first appearance."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    runs: dict[dt.datetime, ParsedRun] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise ImportProblem(f"{path} is empty")
            names = [h.strip() for h in header]
            missing = [c for c in FULL_METRIC_LIST_COLUMNS if c not in names]
            if missing:
                raise ImportProblem(
                    f"{path} is not a Full Metric List: no column {', '.join(missing)}"
                )
            where = {c: names.index(c) for c in FULL_METRIC_LIST_COLUMNS}
            for cells in reader:
                line = reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(names):
                    raise ImportProblem(
                        f"line {line}: {len(cells)} cells where the header has {len(names)}"
                    )
                row: dict[str, str | None] = {
                    c: (cells[i].strip() or None) for c, i in where.items()
                }
                try:
                    run = _run_of(row, runs, tz)
                    for column in NUMBER_COLUMNS:
                        text = row[column]
                        if text is not None:
                            _number(column, text)
                except ValueError as exc:
                    raise ImportProblem(f"line {line}: {exc}") from None
                run.rows.append(row)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportProblem(f"{path} is not a UTF-8 CSV file: {exc}") from None
    if not runs:
        raise ImportProblem(f"{path} has a header but no rows")
    return list(runs.values())


def _run_of(
    row: dict[str, str | None], runs: dict[dt.datetime, ParsedRun], tz: ZoneInfo
) -> ParsedRun:
    name, ts = row["metric_name"], row["score_calculated_ts"]
    if name is None:
        raise ValueError("metric_name is blank")
    if len(name) > MAX_NAME:
        raise ValueError(f"metric_name is longer than {MAX_NAME} characters")
    if ts is None:
        raise ValueError("score_calculated_ts is blank")
    published_at, as_of = _published_at(ts, tz)
    if published_at not in runs:  # two spellings of one instant are one run
        runs[published_at] = ParsedRun(ts, published_at, as_of)
    return runs[published_at]


@dataclass
class ImportSummary:
    runs: int = 0
    rows: int = 0
    skipped_runs: int = 0
    created_metrics: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        created = ", ".join(self.created_metrics) or "none"
        return (
            f"imported {self.runs} archived runs ({self.rows} rows); skipped "
            f"{self.skipped_runs} already imported; created metrics: {created}"
        )


def _slug_for(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:90].strip("-") or "metric"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def _imported_department(session: Session, now: dt.datetime) -> int:
    found = session.execute(select(D.c.id).where(D.c.slug == IMPORTED_DEPARTMENT)).scalar()
    if found is not None:
        return int(found)
    new_id = session.execute(
        D.insert()
        .values(
            slug=IMPORTED_DEPARTMENT,
            name="Imported",
            description="Metrics created by importing a published Full Metric List.",
            updated_at=now,
        )
        .returning(D.c.id)
    ).scalar_one()
    changes.bump(session, ["departments", f"department:{new_id}"])
    return int(new_id)


def _targets(name: str, runs: list[ParsedRun]) -> list[tuple[dt.date, float]]:
    """Each target value a metric's rows show, effective from the first run showing it."""
    out: dict[dt.date, float] = {}
    last: float | None = None
    for run in runs:
        for row in run.rows:
            text = row["target"]
            if row["metric_name"] != name or text is None:
                continue
            value = float(text)
            if math.isfinite(value) and value > 0 and value != last:
                out[run.as_of] = last = value
    return sorted(out.items())


def _create_metrics(
    session: Session, names: list[str], runs: list[ParsedRun], now: dt.datetime
) -> dict[str, int]:
    dept = _imported_department(session, now)
    taken = set(session.execute(select(M.c.slug)).scalars())
    created: dict[str, int] = {}
    for name in names:
        logic = next(
            (r["metric_logic"] for run in runs for r in run.rows if r["metric_name"] == name),
            None,
        )
        direction, aggregation, reference = kind_of(logic)
        metric_id = session.execute(
            M.insert()
            .values(
                slug=_slug_for(name, taken),
                name=name,
                description="Created by importing a published Full Metric List.",
                department_id=dept,
                direction=direction,
                aggregation=aggregation,
                reference=reference,
                baseline_years=10,
                in_cityscore=False,
                updated_at=now,
            )
            .returning(M.c.id)
        ).scalar_one()
        created[name] = int(metric_id)
        targets = _targets(name, runs) if reference == "target" else []
        if targets:
            session.execute(
                TG.insert(),
                [{"metric_id": metric_id, "effective_from": d, "value": v} for d, v in targets],
            )
    if created:
        revisions.record(session, created.values(), now)
        # "scores": scorecards count each department's metrics (as a metric PUT bumps it)
        changes.bump(session, ["metrics", "scores", *(f"metric:{i}" for i in created.values())])
    return created


def import_runs(session: Session, runs: list[ParsedRun], *, source: str) -> ImportSummary:
    """Write the runs not yet imported, in the session's transaction (the caller commits)."""
    now = write_instant(session)  # takes the writer lock first
    summary = ImportSummary()
    existing = set(session.execute(select(R.c.published_at).where(R.c.archived)).scalars())
    new = sorted((r for r in runs if r.published_at not in existing), key=lambda r: r.published_at)
    summary.skipped_runs = len(runs) - len(new)
    if not new:
        return summary
    ids = revisions.metric_ids_named(session)
    missing = sorted({str(r["metric_name"]) for run in new for r in run.rows} - set(ids))
    created = _create_metrics(session, missing, new, now)
    ids.update(created)
    summary.created_metrics = sorted(created)
    for run in new:
        run_id = session.execute(
            R.insert()
            .values(as_of=run.as_of, published_at=run.published_at, archived=True)
            .returning(R.c.id)
        ).scalar_one()
        session.execute(
            F.insert(),
            [
                {
                    "run_id": run_id,
                    "position": n,
                    "metric_id": ids.get(str(row["metric_name"])),
                    **{c: row[c] for c in ("metric_name", "target", "metric_logic")},
                    **{c: row[c] for c in FIGURE_COLUMNS},
                }
                for n, row in enumerate(run.rows)
            ],
        )
        summary.runs += 1
        summary.rows += len(run.rows)
    changes.bump(session, ["runs"])
    audit.record(
        session,
        key=None,
        action="runs.import",
        target=source[-200:],
        detail={
            "runs": summary.runs,
            "rows": summary.rows,
            "skipped_runs": summary.skipped_runs,
            "created_metrics": summary.created_metrics,
        },
    )
    return summary


def import_file(session: Session, path: Path, tz: ZoneInfo) -> ImportSummary:
    """Read and import a Full Metric List export (ImportProblem when it is not one)."""
    return import_runs(session, read_full_metric_list(path, tz), source=path.name)
