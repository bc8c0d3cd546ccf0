"""Check every record of a batch: pure, linear in the batch, bounded in what it reports.

Every problem is ``{row, line, field, message, value}``: ``row`` the 0-based record index,
``line`` the CSV line (null for JSON), ``value`` what was sent. At most ``MAX_ERRORS`` are
listed (the first by row); ``ErrorList.count`` says how many there were, so a 422 stays far
under 1 MB whatever the body.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from api.ingest.parse import BadRow, Parsed
from api.ingest.schemas import RECORD_FIELDS
from api.scoring.aggregates import RATIO_AGGREGATIONS

DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # used with fullmatch
NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no", ""})
NUMBER_FIELDS = ("value", "numerator", "denominator")
# The largest number accepted (a quadrillion): sums over a century of daily values stay far
# from overflow, so every window aggregate and score of stored data can be computed.
MAX_NUMBER = 1e15
# No city has daily performance figures from before this; older dates are typos.
EARLIEST_DATE = dt.date(1970, 1, 1)
MAX_ERRORS = 1000
MAX_SHOWN = 100  # characters of a sent value repeated in an error
DUPLICATES_SHOWN = 5


@dataclass(frozen=True)
class MetricRef:
    id: int
    slug: str
    department_id: int
    aggregation: str

    @property
    def ratio(self) -> bool:
        return self.aggregation in RATIO_AGGREGATIONS


class Record(NamedTuple):
    metric_id: int
    date: dt.date
    value: float | None
    numerator: float | None
    denominator: float | None
    deleted: bool


def shown(value: Any) -> Any:
    """A sent value as an error repeats it: scalars as they are, long text cut."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def quoted(value: Any) -> str:
    text = shown(value)
    return f"'{text}'" if isinstance(text, str) else str(text)


@dataclass
class ErrorList:
    """The first ``MAX_ERRORS`` problems by row, and how many there were in all."""

    parsed: Parsed
    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    rows: set[int] = field(default_factory=set)

    @property
    def bad_rows(self) -> int:
        return len(self.rows)

    def add(self, row: int, field_name: str, message: str, value: Any = None) -> None:
        self.count += 1
        self.rows.add(row)
        if len(self.items) < MAX_ERRORS:
            self.items.append(self._item(row, field_name, message, value))

    def _item(self, row: int, field_name: str, message: str, value: Any) -> dict[str, Any]:
        return {
            "row": row,
            "line": self.parsed.line(row),
            "field": field_name[:MAX_SHOWN],
            "message": message,
            "value": shown(value),
        }

    def add_duplicates(self, groups: Sequence[list[int]], values: dict[int, Any]) -> None:
        """Both (all) records of each duplicate pair, in linear time: one message per group."""
        extra: list[tuple[int, str]] = []
        for rows in groups:
            listed = ", ".join(str(r) for r in rows[:DUPLICATES_SHOWN])
            if len(rows) > DUPLICATES_SHOWN:
                listed += f" and {len(rows) - DUPLICATES_SHOWN} more"
            message = f"duplicate (metric, date) in the batch: rows {listed}"
            self.count += len(rows)
            self.rows.update(rows)
            extra.extend((r, message) for r in rows)
        if not extra:
            return
        extra.sort()
        kept = [self._item(r, "date", m, values.get(r)) for r, m in extra[:MAX_ERRORS]]
        self.items = sorted([*self.items, *kept], key=lambda e: e["row"])[:MAX_ERRORS]

    @property
    def truncated(self) -> bool:
        return self.count > len(self.items)


def number(raw: Any, from_csv: bool) -> tuple[float | None, str | None]:
    """The value as a finite float in [0, MAX_NUMBER], or an error message."""
    kind = type(raw)  # the common case first: a plain, valid JSON number
    if (kind is float or kind is int) and 0 <= raw <= MAX_NUMBER:
        return float(raw) + 0.0, None
    if from_csv:
        if not isinstance(raw, str) or not NUMBER_RE.fullmatch(raw):
            return None, f"must be a number, not {quoted(raw)}"
        value = float(raw)
    else:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None, f"must be a number, not {quoted(raw)}"
        try:
            value = float(raw)
        except OverflowError:
            return None, f"must be at most {MAX_NUMBER:g}"
    if math.isnan(value):
        return None, "must be a finite number, not NaN"
    if value < 0:
        return None, f"must not be negative ({quoted(raw)})"
    if value > MAX_NUMBER:
        return None, f"must be at most {MAX_NUMBER:g}, not {quoted(raw)}"
    return value + 0.0, None  # -0.0 becomes 0.0


def deleted_flag(raw: Any, from_csv: bool) -> tuple[bool, str | None]:
    if from_csv:
        word = str(raw).lower()
        if word in TRUE_WORDS:
            return True, None
        if word in FALSE_WORDS:
            return False, None
        return False, f"must be true or false, not {quoted(raw)}"
    if isinstance(raw, bool):
        return raw, None
    return False, f"must be true or false, not {quoted(raw)}"


def parse_date(raw: str, today: dt.date) -> dt.date | str:
    """A real YYYY-MM-DD date from EARLIEST_DATE to ``today``, or the error message."""
    if not DATE_RE.fullmatch(raw):
        return f"must be a date YYYY-MM-DD, not {quoted(raw)}"
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return f"{quoted(raw)} is not a real calendar date"
    if day > today:
        return f"{raw} is in the future (today is {today} in the city)"
    if day < EARLIEST_DATE:
        return f"{raw} is before {EARLIEST_DATE}, the earliest date accepted"
    return day


Add = Callable[..., None]


def check_shape(ref: MetricRef, fields: dict[str, Any], row: int, add: Add) -> None:
    """The right value fields for the metric's aggregation."""
    kind = f"metric '{ref.slug}' ({ref.aggregation})"
    if ref.ratio:
        if "numerator" in fields and "denominator" in fields and "value" not in fields:
            return
        if "value" in fields:
            add(row, "value", f"{kind} takes numerator and denominator, not value", fields["value"])
        for name in ("numerator", "denominator"):
            if name not in fields:
                add(row, name, f"is required: {kind} takes numerator/denominator")
        return
    if "value" in fields and "numerator" not in fields and "denominator" not in fields:
        return
    if "value" not in fields:
        add(row, "value", f"is required: {kind} takes a value")
    for name in ("numerator", "denominator"):
        if name in fields:
            add(row, name, f"{kind} takes value, not numerator/denominator", fields[name])


@dataclass
class _Context:
    from_csv: bool
    metrics: dict[str, MetricRef]
    today: dt.date
    errors: ErrorList
    dates: dict[str, dt.date | str] = field(default_factory=dict)


def _metric(ctx: _Context, row: int, slug: Any) -> MetricRef | None:
    add = ctx.errors.add
    if slug is None:
        add(row, "metric", "is required")
    elif not isinstance(slug, str):
        add(row, "metric", f"must be a metric slug, not {quoted(slug)}", slug)
    elif (ref := ctx.metrics.get(slug)) is None:
        add(row, "metric", f"unknown metric {quoted(slug)}", slug)
    else:
        return ref
    return None


def _date(ctx: _Context, row: int, raw: Any) -> dt.date | None:
    if raw is None:
        ctx.errors.add(row, "date", "is required")
        return None
    if not isinstance(raw, str):
        ctx.errors.add(row, "date", f"must be a date YYYY-MM-DD, not {quoted(raw)}", raw)
        return None
    parsed = ctx.dates.get(raw)
    if parsed is None:
        parsed = ctx.dates[raw] = parse_date(raw, ctx.today)
    if isinstance(parsed, str):
        ctx.errors.add(row, "date", parsed, raw)
        return None
    return parsed


def _numbers(ctx: _Context, row: int, fields: dict[str, Any]) -> list[float | None]:
    out: list[float | None] = []
    for name in NUMBER_FIELDS:
        value = None
        if name in fields:
            value, problem = number(fields[name], ctx.from_csv)
            if problem:
                ctx.errors.add(row, name, problem, fields[name])
            elif name == "denominator" and value == 0:
                ctx.errors.add(row, name, "must be greater than 0", fields[name])
        out.append(value)
    return out


def _record(ctx: _Context, row: int, rec: Any) -> tuple[MetricRef | None, dt.date | None, Any]:
    """Check one record; returns its metric, date and (when it had no problem) the Record."""
    add = ctx.errors.add
    if isinstance(rec, BadRow):
        add(row, "record", rec.message, rec.cells)
        return None, None, None
    if not isinstance(rec, dict):
        add(row, "record", "must be an object {metric, date, ...}", rec)
        return None, None, None
    before = ctx.errors.count
    for key in rec:
        if key not in RECORD_FIELDS:
            add(row, str(key), "unknown field", rec[key])
    fields = {k: v for k, v in rec.items() if v is not None}
    ref = _metric(ctx, row, fields.get("metric"))
    day = _date(ctx, row, fields.get("date"))
    deleted, flag_ok = False, True
    if "deleted" in fields:
        deleted, problem = deleted_flag(fields["deleted"], ctx.from_csv)
        if problem:
            add(row, "deleted", problem, fields["deleted"])
            flag_ok = False
    value, numerator, denominator = _numbers(ctx, row, fields)
    if deleted:
        for name in NUMBER_FIELDS:
            if name in fields:
                add(row, name, "a deletion carries no value fields", fields[name])
    elif ref is not None and flag_ok:
        check_shape(ref, fields, row, add)
    if ref is None or day is None or ctx.errors.count != before:
        return ref, day, None
    if not deleted and ref.ratio and numerator is not None and denominator:
        value = numerator / denominator
        if value > MAX_NUMBER:
            add(row, "denominator", f"numerator/denominator must be at most {MAX_NUMBER:g}")
            return ref, day, None
    return ref, day, Record(ref.id, day, value, numerator, denominator, deleted)


def validate(
    parsed: Parsed, metrics: dict[str, MetricRef], today: dt.date
) -> tuple[list[Record], ErrorList]:
    """Check every record; return the good ones and the problems found."""
    ctx = _Context(parsed.from_csv, metrics, today, ErrorList(parsed))
    good: list[Record] = []
    first_row: dict[tuple[int, dt.date], int] = {}
    duplicates: dict[tuple[int, dt.date], list[int]] = {}
    sent_dates: dict[int, Any] = {}
    for row, rec in enumerate(parsed.records):
        ref, day, record = _record(ctx, row, rec)
        if ref is None or day is None:
            continue
        key = (ref.id, day)
        first = first_row.setdefault(key, row)
        if first != row:
            group = duplicates.setdefault(key, [first])
            group.append(row)
            sent_dates[row] = sent_dates[first] = rec.get("date")
        if record is not None:
            good.append(record)
    ctx.errors.add_duplicates(list(duplicates.values()), sent_dates)
    ctx.errors.items.sort(key=lambda e: e["row"])
    return good, ctx.errors
