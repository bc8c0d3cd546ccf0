"""Tables only. Every timestamp is naive UTC; every date is the city's local calendar day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

import db.base  # noqa: F401  (installs the naming convention before any table is declared)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Department(SQLModel, table=True):
    __tablename__ = "departments"
    # Ids are never reused (SQLite reuses the largest rowid without AUTOINCREMENT).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    cabinet: str | None = Field(default=None, sa_column=Column(String(200)))
    description: str | None = Field(default=None, sa_column=Column(Text))
    url: str | None = Field(default=None, sa_column=Column(String(500)))
    updated_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))


class Metric(SQLModel, table=True):
    __tablename__ = "metrics"
    # Ids are never reused (SQLite reuses the largest rowid without AUTOINCREMENT).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    department_id: int = Field(
        sa_column=Column(Integer, ForeignKey("departments.id"), nullable=False, index=True)
    )
    unit: str | None = Field(default=None, sa_column=Column(String(100)))
    direction: str = Field(sa_column=Column(String(20), nullable=False))
    aggregation: str = Field(sa_column=Column(String(20), nullable=False))
    reference: str = Field(sa_column=Column(String(20), nullable=False))
    baseline_years: int = Field(sa_column=Column(Integer, nullable=False))
    in_cityscore: bool = Field(nullable=False)
    source_url: str | None = Field(default=None, sa_column=Column(String(500)))
    updated_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))


class MetricTarget(SQLModel, table=True):
    """A target value in force from ``effective_from`` until the next one starts."""

    __tablename__ = "metric_targets"
    __table_args__ = (UniqueConstraint("metric_id", "effective_from"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(
        sa_column=Column(Integer, ForeignKey("metrics.id", ondelete="CASCADE"), nullable=False)
    )
    effective_from: dt.date = Field(sa_column=Column(Date, nullable=False))
    value: float = Field(sa_column=Column(Float, nullable=False))


class MetricValue(SQLModel, table=True):
    """The current version of one metric's value on one day; deletions stay as tombstones."""

    __tablename__ = "metric_values"
    __table_args__ = (Index("ix_metric_values_updated_at", "updated_at"),)

    metric_id: int = Field(sa_column=Column(Integer, ForeignKey("metrics.id"), primary_key=True))
    date: dt.date = Field(sa_column=Column(Date, primary_key=True))
    value: float | None = Field(default=None, sa_column=Column(Float))
    numerator: float | None = Field(default=None, sa_column=Column(Float))
    denominator: float | None = Field(default=None, sa_column=Column(Float))
    deleted: bool = Field(default=False, nullable=False)
    updated_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))
    batch_id: int | None = Field(default=None, sa_column=Column(BigInteger))


class ValueRevision(SQLModel, table=True):
    """Every version a value has had, including the current one and deletions."""

    __tablename__ = "value_revisions"
    __table_args__ = (Index("ix_value_revisions_metric_id_date", "metric_id", "date"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    metric_id: int = Field(sa_column=Column(Integer, ForeignKey("metrics.id"), nullable=False))
    date: dt.date = Field(sa_column=Column(Date, nullable=False))
    value: float | None = Field(default=None, sa_column=Column(Float))
    numerator: float | None = Field(default=None, sa_column=Column(Float))
    denominator: float | None = Field(default=None, sa_column=Column(Float))
    deleted: bool = Field(default=False, nullable=False)
    batch_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    key_id: int | None = Field(default=None, sa_column=Column(Integer))
    recorded_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))


class IngestBatch(SQLModel, table=True):
    __tablename__ = "ingest_batches"
    __table_args__ = (UniqueConstraint("key_id", "idempotency_key"), {"sqlite_autoincrement": True})

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    key_id: int = Field(sa_column=Column(Integer, ForeignKey("api_keys.id"), nullable=False))
    department_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("departments.id"))
    )
    received: int = Field(nullable=False)
    created: int = Field(nullable=False)
    updated: int = Field(nullable=False)
    unchanged: int = Field(nullable=False)
    deleted: int = Field(nullable=False)
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(200)))
    request_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    # Ids are never reused (SQLite reuses the largest rowid without AUTOINCREMENT).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(200), nullable=False))
    department_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("departments.id"))
    )
    admin: bool = Field(default=False, nullable=False)
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    prefix: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime))
    # Null: never expires. A key stops working at this instant (rotation: create the new key
    # with an expiry on the old one, or revoke the old one once the new one is in use).
    expires_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime))


class Analysis(SQLModel, table=True):
    __tablename__ = "analyses"
    # Ids are never reused (SQLite reuses the largest rowid without AUTOINCREMENT).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    title: str = Field(sa_column=Column(String(300), nullable=False))
    summary: str | None = Field(default=None, sa_column=Column(Text))
    body_markdown: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    published_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    departments: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    metrics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))


class MetricScoreRun(SQLModel, table=True):
    """One window's published figures, constant over a run of as-of dates (materialised on
    write).

    ``kind`` indexes ``WINDOW_NAMES`` (0 day, 1 week, 2 month, 3 quarter). A run covers the
    as-of dates ``valid_from``..``valid_to`` whose window of that kind is one and the same
    window period (so a week run never spans two weeks of as-of dates, a month or quarter run
    never two months, a day run is one date) with the same (score, numerator, denominator):
    a week, month or quarter changes once per period, not every day, so a changed day rewrites
    a handful of runs instead of every as-of date that can see it. A run therefore starts at
    most ``RUN_LOOKBACK[kind]`` days before any date it covers, which bounds every lookup.
    Every as-of date a metric has runs for has all four kinds.
    """

    __tablename__ = "metric_score_runs"
    __table_args__ = (
        Index("ix_metric_score_runs_kind_valid_from", "kind", "valid_from"),
        # SQLite: the primary key is the table (one b-tree per row written, not two)
        {"sqlite_with_rowid": False},
    )

    # No foreign key to metrics: its check is a trigger per inserted run, half the cost of a
    # rescore's insert on PostgreSQL. Runs are written only for metrics the materialiser has
    # just read, and metrics are never deleted (their ids are never reused).
    metric_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    kind: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    valid_from: dt.date = Field(sa_column=Column(Date, primary_key=True))
    valid_to: dt.date = Field(sa_column=Column(Date, nullable=False))
    score: float | None = Field(default=None, sa_column=Column(Float))
    numerator: float | None = Field(default=None, sa_column=Column(Float))
    denominator: float | None = Field(default=None, sa_column=Column(Float))
    # Whether the window holds a point: the view lists an as-of date where one window does,
    # as the first build stored rows (every date of the span has runs, gaps included).
    points: bool = Field(sa_column=Column(Boolean, nullable=False))
    # A baseline metric's baseline the figures were scored against (unscaled; a day's is its
    # week's), null for a target metric or without one. Not published: a rescore whose
    # changed days no baseline window sees reuses it instead of re-reading years of values.
    reference: float | None = Field(default=None, sa_column=Column(Float))


WINDOW_KINDS = ("day", "week", "month", "quarter")
# Per kind, the most days a run starts before an as-of date it covers: a day run is one date,
# a week's as-of dates are one Monday-Sunday week, a month's or quarter's one calendar month.
RUN_LOOKBACK = (0, 6, 30, 30)


def _score_view_table() -> Table:
    """The ``metric_scores`` view: one row per metric per as-of date, four windows wide, as
    the first build stored it (the SODA ``scores`` dataset reads it). Not in the ORM's
    metadata: a migration creates it (``score_view_sql``)."""
    columns: list[Column[Any]] = [Column("metric_id", Integer), Column("as_of", Date)]
    columns += [
        Column(f"{w}_{part}", Float)
        for w in WINDOW_KINDS
        for part in ("score", "numerator", "denominator")
    ]
    return Table("metric_scores", MetaData(), *columns)


metric_scores_view = _score_view_table()


def score_view_sql(dialect: str) -> str:
    """The SELECT behind the ``metric_scores`` view: each day run (one as-of date) joined to
    the week, month and quarter runs that cover its date, where one of the windows holds a
    point (the rows the first build stored)."""

    def back(expr: str, days: int) -> str:
        if dialect == "postgresql":
            return f"{expr} - {days}"
        return f"date({expr}, '-{days} days')"

    parts = ["d.metric_id AS metric_id", "d.valid_from AS as_of"]
    joins = []
    for i, w in enumerate(WINDOW_KINDS):
        alias = "d" if i == 0 else w[0]
        parts += [f"{alias}.{c} AS {w}_{c}" for c in ("score", "numerator", "denominator")]
        if i:
            joins.append(
                f"LEFT JOIN metric_score_runs {alias} ON {alias}.metric_id = d.metric_id "
                f"AND {alias}.kind = {i} "
                f"AND {alias}.valid_from BETWEEN {back('d.valid_from', RUN_LOOKBACK[i])} "
                "AND d.valid_from "
                f"AND {alias}.valid_to >= d.valid_from"
            )
    held = " OR ".join(f"{a}.points" for a in ("d", "w", "m", "q"))
    return (
        f"SELECT {', '.join(parts)} FROM metric_score_runs d {' '.join(joins)} "
        f"WHERE d.kind = 0 AND ({held})"
    )


class CityScoreDaily(SQLModel, table=True):
    """CityScore per window as of one date: the mean of in_cityscore metrics' scores."""

    __tablename__ = "cityscore_daily"

    as_of: dt.date = Field(sa_column=Column(Date, primary_key=True))
    day: float | None = Field(default=None, sa_column=Column(Float))
    week: float | None = Field(default=None, sa_column=Column(Float))
    month: float | None = Field(default=None, sa_column=Column(Float))
    quarter: float | None = Field(default=None, sa_column=Column(Float))


class DataState(SQLModel, table=True):
    """A change counter per scope; ETags and Last-Modified come from here."""

    __tablename__ = "data_state"

    scope: str = Field(sa_column=Column(String(120), primary_key=True))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
    changed_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))


class AuditEntry(SQLModel, table=True):
    """One row per write (ingest batch, definition PUT/DELETE, key create/revoke), inserted in
    the same transaction as the write itself. Slugs, not ids: the log outlives what it names."""

    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))
    key_id: int | None = Field(default=None, sa_column=Column(Integer))
    department: str | None = Field(default=None, sa_column=Column(String(100)))
    action: str = Field(sa_column=Column(String(40), nullable=False))
    target: str = Field(sa_column=Column(String(200), nullable=False))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class MetricRevision(SQLModel, table=True):
    """Every version a metric definition has had, the current one included (the latest).

    Written by every PUT that changes a definition; ``valid_from`` is when it was written.
    ``targets`` is ``[[effective_from, value], ...]`` as the version had them."""

    __tablename__ = "metric_revisions"
    __table_args__ = (
        Index("ix_metric_revisions_metric_id_valid_from", "metric_id", "valid_from"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    metric_id: int = Field(
        sa_column=Column(Integer, ForeignKey("metrics.id", ondelete="CASCADE"), nullable=False)
    )
    valid_from: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))
    slug: str = Field(sa_column=Column(String(100), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    department_id: int = Field(sa_column=Column(Integer, nullable=False))
    unit: str | None = Field(default=None, sa_column=Column(String(100)))
    direction: str = Field(sa_column=Column(String(20), nullable=False))
    aggregation: str = Field(sa_column=Column(String(20), nullable=False))
    reference: str = Field(sa_column=Column(String(20), nullable=False))
    baseline_years: int = Field(sa_column=Column(Integer, nullable=False))
    in_cityscore: bool = Field(nullable=False)
    source_url: str | None = Field(default=None, sa_column=Column(String(500)))
    targets: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CityScoreRun(SQLModel, table=True):
    """A published run: an as-of date and the instant it was published. A computed run keeps
    no figures (they are the answer as known at ``published_at``); an archived (imported) run
    keeps Boston's published rows verbatim in ``run_figures``."""

    __tablename__ = "cityscore_runs"
    __table_args__ = (
        Index("ix_cityscore_runs_published_at", "published_at"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    as_of: dt.date = Field(sa_column=Column(Date, nullable=False, index=True))
    published_at: dt.datetime = Field(sa_column=Column(DateTime, nullable=False))
    archived: bool = Field(default=False, nullable=False)
    # SHA-256 of the figures as published (a computed run): ``revised`` compares today's
    # figures with it instead of recomputing the past.
    figures_sha256: str | None = Field(default=None, sa_column=Column(String(64)))


class RunFigure(SQLModel, table=True):
    """One metric's row of an archived run, as published (text, blanks as null)."""

    __tablename__ = "run_figures"

    run_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("cityscore_runs.id", ondelete="CASCADE"), primary_key=True
        )
    )
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    metric_id: int | None = Field(default=None, sa_column=Column(Integer))
    metric_name: str = Field(sa_column=Column(String(200), nullable=False))
    target: str | None = Field(default=None, sa_column=Column(Text))
    metric_logic: str | None = Field(default=None, sa_column=Column(Text))
    day_score: str | None = Field(default=None, sa_column=Column(Text))
    day_numerator: str | None = Field(default=None, sa_column=Column(Text))
    day_denominator: str | None = Field(default=None, sa_column=Column(Text))
    week_score: str | None = Field(default=None, sa_column=Column(Text))
    week_numerator: str | None = Field(default=None, sa_column=Column(Text))
    week_denominator: str | None = Field(default=None, sa_column=Column(Text))
    month_score: str | None = Field(default=None, sa_column=Column(Text))
    month_numerator: str | None = Field(default=None, sa_column=Column(Text))
    month_denominator: str | None = Field(default=None, sa_column=Column(Text))
    quarter_score: str | None = Field(default=None, sa_column=Column(Text))
    quarter_numerator: str | None = Field(default=None, sa_column=Column(Text))
    quarter_denominator: str | None = Field(default=None, sa_column=Column(Text))
