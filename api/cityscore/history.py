"""CityScore history from memory: the whole table read once per data version, every row's
JSON encoded once, any range answered by slicing.

Ten years are 3,651 rows; read from the store, made into dicts and encoded on every request
they cost a worker ~10 ms, and dashboards ask for many ranges. The ``scores`` version (the
one the history's ETag is made of) moves whenever CityScore changes, so every request that
read one version can share one table: a request costs the version read and a slice.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence

import orjson
from sqlmodel import Session

from api.cityscore import reads
from api.cityscore.schemas import HISTORY_COLUMNS
from api.http.respond import JSON_OPTIONS, Row

EMPTY = (None, None, None, None)
# Null rows held ready before the first stored date and after the last: dashboards ask for
# ten years ending on any day, often reaching back before the data begins.
PAD_BEFORE = 20 * 366
PAD_AFTER = 366


def _encode(row: Row) -> bytes:
    return orjson.dumps(dict(zip(HISTORY_COLUMNS, row, strict=True)), option=JSON_OPTIONS)


def _empty(ordinal: int) -> Row:
    return (dt.date.fromordinal(ordinal), *EMPTY)


class HistoryTable:
    """Every stored as-of date from the first to the last (gaps as null rows), encoded."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = list(rows)
        self.first = rows[0][0].toordinal() if rows else 0
        self.last = self.first + len(rows) - 1  # first - 1 when empty
        self.encoded = [_encode(r) for r in rows]

    @classmethod
    def read(cls, session: Session) -> HistoryTable:
        """The stored rows (one statement: one state of the table), gaps as null rows, with
        null rows ``PAD_BEFORE`` days before the first and ``PAD_AFTER`` after the last."""
        rows = reads.cityscore_history(session, dt.date.min, dt.date.max, fill=False)
        if not rows:
            return cls([])
        first, last = rows[0][0].toordinal(), rows[-1][0].toordinal()
        lo = max(first - PAD_BEFORE, 1)
        hi = min(last + PAD_AFTER, dt.date.max.toordinal())
        dense: list[Row | None] = [None] * (hi - lo + 1)
        for row in rows:
            dense[row[0].toordinal() - lo] = row
        return cls([r or _empty(lo + i) for i, r in enumerate(dense)])

    def between(self, start: dt.date, end: dt.date) -> list[Row]:
        """The rows of every as-of date in [start, end], as ``reads.cityscore_history``."""
        lo, hi = start.toordinal(), end.toordinal()
        head = [_empty(o) for o in range(lo, min(hi, self.first - 1) + 1)]
        a, b = max(lo, self.first), min(hi, self.last)
        middle = self.rows[a - self.first : b - self.first + 1] if a <= b else []
        tail = [_empty(o) for o in range(max(lo, self.last + 1), hi + 1)]
        return head + middle + tail if head or tail else middle

    def json_rows(self, rows: Sequence[Row]) -> bytes:
        """The JSON array of ``rows`` (consecutive as-of dates, as ``between`` gives them)."""
        if not rows:
            return b"[]"
        o = rows[0][0].toordinal()
        assert rows[-1][0].toordinal() - o == len(rows) - 1, "rows are consecutive dates"
        a, b = max(o, self.first), min(o + len(rows) - 1, self.last)
        if a > b:
            parts = [_encode(r) for r in rows]
        else:
            parts = [_encode(r) for r in rows[: a - o]]
            parts += self.encoded[a - self.first : b - self.first + 1]
            parts += [_encode(r) for r in rows[b - o + 1 :]]
        return b"[" + b",".join(parts) + b"]"


class HistoryCache:
    """The history tables of the latest data versions (two: requests straddling a write)."""

    def __init__(self, versions: int = 2) -> None:
        self.versions = versions
        self._tables: OrderedDict[str, HistoryTable] = OrderedDict()
        self._lock = threading.Lock()

    def table(self, session: Session, token: str) -> HistoryTable:
        """The table of data version ``token`` (read by the caller just before: the rows read
        now are at least as new as it)."""
        with self._lock:
            table = self._tables.get(token)
        if table is None:
            table = HistoryTable.read(session)
            with self._lock:
                self._tables[token] = table
                while len(self._tables) > self.versions:
                    self._tables.popitem(last=False)
        return table
