"""Ingest bodies into records: the media type, JSON arrays and CSV files.

Pure: no store, no FastAPI. Every failure is an ``Unprocessable`` (422) that says what was
wrong and where, in words a clerk exporting from a spreadsheet can act on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import orjson

from api.errors import Unprocessable, UnsupportedMediaType
from api.ingest.schemas import CSV_REQUIRED, RECORD_FIELDS

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class BadRow:
    """A CSV row that could not become a record (wrong number of cells)."""

    message: str
    cells: str


@dataclass
class Parsed:
    """The body's records; for CSV, also each record's first physical line (1-based)."""

    records: list[Any]
    from_csv: bool
    lines: list[int] | None = None

    def line(self, row: int) -> int | None:
        return None if self.lines is None else self.lines[row]


def media_type(content_type: str | None) -> str:
    """``json`` or ``csv`` from a Content-Type header (absent means JSON); else 415."""
    if not content_type or not content_type.strip():
        return "json"
    mime, *params = (part.strip() for part in content_type.split(";"))
    mime = mime.lower()
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
            "us-ascii",
        ):
            raise UnsupportedMediaType("The body must be UTF-8.")
    if mime == "application/json":
        return "json"
    if mime == "text/csv":
        return "csv"
    raise UnsupportedMediaType(
        f"Content-Type '{mime[:100]}' is not accepted: send application/json or text/csv."
    )


def malformed(message: str, *, line: int | None = None) -> Unprocessable:
    return Unprocessable(
        message,
        errors=[{"row": None, "line": line, "field": "body", "message": message, "value": None}],
    )


def decode_utf8(raw: bytes) -> str:
    """The body as text (a BOM stripped); a 422 naming the first bad byte and its line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start]
        raise malformed(
            f"The body is not valid UTF-8: byte 0x{byte:02X} on line {line}. Save the file as "
            "UTF-8 (in Excel: 'CSV UTF-8'); Windows-1252 and Latin-1 exports are not accepted.",
            line=line,
        ) from None


def parse_json(raw: bytes) -> list[Any]:
    if raw.startswith(UTF8_BOM):
        raw = raw[3:]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():
            raise malformed("The body nests JSON arrays or objects too deeply.") from None
        # The standard parser reads NaN, Infinity and 1e999, which orjson refuses: let those
        # through so that the row-level check names the offending record and field.
        text = decode_utf8(raw)
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise malformed(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, list):
        raise malformed("The body must be a JSON array of records.")
    return data


def _header_problems(names: list[str]) -> list[dict[str, Any]]:
    problems = []

    def add(name: str, message: str) -> None:
        problems.append(
            {"row": None, "line": 1, "field": name[:100], "message": message, "value": name[:100]}
        )

    for name in sorted(set(CSV_REQUIRED) - set(names)):
        add(name, "missing column")
    for name in names:
        if name not in RECORD_FIELDS:
            add(name, "unknown column")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            add(name, "repeated column")
        seen.add(name)
    return problems


def _delimiter_hint(header: list[str]) -> str:
    if len(header) == 1:
        for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in header[0]:
                return f" The header looks separated by {word}: separate columns with commas."
    return ""


def parse_csv(raw: bytes) -> Parsed:
    """CSV rows as records (dicts of non-empty, stripped cells); a bad row becomes a BadRow."""
    body = decode_utf8(raw)
    reader = csv.reader(io.StringIO(body, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise malformed("The CSV body needs a header row.")
        names = [h.strip() for h in header]
        problems = _header_problems(names)
        if problems:
            raise Unprocessable(
                "The CSV header must be metric,date,value,numerator,denominator "
                "(any order; optional deleted)." + _delimiter_hint(header),
                errors=problems,
            )
        records: list[Any] = []
        lines: list[int] = []
        line = reader.line_num + 1
        for cells in reader:
            first, line = line, reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue  # blank line
            lines.append(first)
            if len(cells) != len(names):
                records.append(
                    BadRow(
                        f"has {len(cells)} cells; the header has {len(names)}",
                        ",".join(cells)[:200],
                    )
                )
                continue
            records.append({n: c.strip() for n, c in zip(names, cells, strict=True) if c.strip()})
    except csv.Error as exc:
        raise malformed(
            f"The CSV body is malformed on line {reader.line_num}: {exc}.", line=reader.line_num
        ) from None
    return Parsed(records, True, lines)


def parse(raw: bytes, content_type: str | None) -> Parsed:
    """The body's records, from CSV (cells are then strings) or a JSON array."""
    if media_type(content_type) == "csv":
        return parse_csv(raw)
    return Parsed(parse_json(raw), False)
