"""RFC 4180 CSV, streamed: header row, CRLF, UTF-8, constant memory, never truncated.

Text cells that a spreadsheet would run as a formula are prefixed with ``'`` (OWASP's advice
for CSV injection); numbers are written as the shortest text that reads back as the same double.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
LEADING_SPACE = " \t\r\n"
BOM = "\ufeff".encode()
CHUNK_BYTES = 64 * 1024


def format_number(x: float) -> str:
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def format_instant(ts: dt.datetime) -> str:
    """RFC 3339 UTC with the fraction's trailing zeros dropped (PostgreSQL's own form, so that
    a CSV row reads the same whichever store wrote it)."""
    text = ts.isoformat("T", "seconds")
    if ts.microsecond:
        text += f".{ts.microsecond:06d}".rstrip("0")
    return text + "Z"


def neutralise(text: str) -> str:
    """Spreadsheets skip leading whitespace before a formula (" =cmd", "\\n=1+1")."""
    if text.startswith(FORMULA_PREFIXES) or text.lstrip(LEADING_SPACE).startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def cell(value: Any, text: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dt.datetime):
        return format_instant(value)
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    out = str(value)
    return neutralise(out) if text else out


def csv_lines(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: Iterable[str] = ()
) -> Iterator[bytes]:
    """Encode rows as CSV, yielding chunks of about 64 KB."""
    texts = [c in set(text_columns) for c in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(v, t) for v, t in zip(row, texts, strict=True)])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def with_bom(chunks: Iterable[bytes], bom: bool) -> Iterator[bytes]:
    if bom:
        yield BOM
    yield from chunks


def lf_to_crlf(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """PostgreSQL's COPY ends rows with LF; RFC 4180 wants CRLF (cells never contain LF here)."""
    for chunk in chunks:
        yield chunk.replace(b"\n", b"\r\n")
