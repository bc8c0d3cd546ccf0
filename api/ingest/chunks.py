"""Split a CSV or JSON file of values into ingest batches, streamed, keeping file line numbers.

Records are passed through byte for byte (never re-serialised), so what the server reports is
exactly what the file says. Each chunk remembers the physical line where each of its records
starts: the server's 422 ``errors[].row`` (0-based within the batch) maps back to a file line.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

BOM = b"\xef\xbb\xbf"
CSV = "text/csv"
JSON = "application/json"
READ_SIZE = 1 << 20


class FileProblem(Exception):
    """The file cannot be split (not UTF-8, not a JSON array, a record above the byte limit)."""


@dataclass
class Chunk:
    number: int  # 1-based
    content_type: str
    body: bytes
    lines: list[int] = field(default_factory=list)  # file line where each record starts
    first_record: int = 0  # 0-based index of its first record in the whole file

    @property
    def rows(self) -> int:
        return len(self.lines)

    @property
    def idempotency_key(self) -> str:
        """Derived from the content: a rerun sends the same key, and the server answers the
        first receipt again instead of applying the batch twice."""
        digest = hashlib.sha256(self.content_type.encode() + b"\n" + self.body).hexdigest()
        return f"cityscore-ingest-{digest}"

    def line_of(self, row: int | None) -> int | None:
        if row is None or not 0 <= row < len(self.lines):
            return None
        return self.lines[row]


def detect_format(name: str, head: bytes) -> str:
    """CSV or JSON from the file name, else from the first non-blank character."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return CSV
    if lower.endswith(".json"):
        return JSON
    return JSON if head.removeprefix(BOM).lstrip()[:1] == b"[" else CSV


def _utf8(line: bytes, number: int) -> None:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(
            f"line {number} is not UTF-8 (byte 0x{line[exc.start]:02x} at column "
            f"{exc.start + 1}); save the file as UTF-8 (e.g. 'CSV UTF-8' in Excel)"
        ) from None


class _Packer:
    """Fills chunks up to ``max_rows`` records and ``max_bytes`` of body."""

    def __init__(self, content_type: str, max_rows: int, max_bytes: int, frame: int) -> None:
        self.content_type, self.max_rows, self.max_bytes = content_type, max_rows, max_bytes
        self.frame = frame  # header (CSV) or brackets (JSON) in every body
        self.number = 0
        self.records = 0
        self._reset()

    def _reset(self) -> None:
        self.parts: list[bytes] = []
        self.lines: list[int] = []
        self.body_size = self.frame

    def add(self, line: int, record: bytes) -> Chunk | None:
        """Add a record; the full chunk it pushed out, if any."""
        if self.frame + len(record) + 1 > self.max_bytes:
            raise FileProblem(
                f"the record at line {line} alone is larger than the {self.max_bytes}-byte limit"
            )
        out = None
        full = len(self.lines) >= self.max_rows
        if self.lines and (full or self.body_size + len(record) + 1 > self.max_bytes):
            out = self.flush()
        self.parts.append(record)
        self.lines.append(line)
        self.body_size += len(record) + 1
        return out

    def flush(self) -> Chunk | None:
        if not self.lines:
            return None
        self.number += 1
        chunk = Chunk(self.number, self.content_type, b"", self.lines, self.records)
        chunk.body = self.render(self.parts)
        self.records += len(self.lines)
        self._reset()
        return chunk

    def render(self, parts: list[bytes]) -> bytes:
        raise NotImplementedError


class _CsvPacker(_Packer):
    def __init__(self, header: bytes, max_rows: int, max_bytes: int) -> None:
        self.header = header
        super().__init__(CSV, max_rows, max_bytes, len(header))

    def render(self, parts: list[bytes]) -> bytes:
        return self.header + b"".join(parts)


class _JsonPacker(_Packer):
    def __init__(self, max_rows: int, max_bytes: int) -> None:
        super().__init__(JSON, max_rows, max_bytes, 2)

    def render(self, parts: list[bytes]) -> bytes:
        return b"[" + b",".join(parts) + b"]"


def csv_chunks(fp: BinaryIO, max_rows: int, max_bytes: int) -> Iterator[Chunk]:
    """Chunks of a CSV file, each with the file's header row. Blank lines are skipped (the
    server skips them too); a quoted field may span lines (quotes are balanced by parity)."""
    lines = enumerate(fp, start=1)
    header = b""
    for number, line in lines:
        line = line.removeprefix(BOM) if number == 1 else line
        _utf8(line, number)
        if line.strip():
            header = line if line.endswith(b"\n") else line + b"\n"
            break
    if not header:
        raise FileProblem("the file is empty: no header row")
    text = header.decode()
    if "," not in text and (";" in text or "\t" in text):
        sep = "semicolons" if ";" in text else "tabs"
        raise FileProblem(
            f"the header row is separated by {sep}; the API reads comma-separated files "
            "(header metric,date,value,numerator,denominator)"
        )
    packer = _CsvPacker(header, max_rows, max_bytes)
    record: list[bytes] = []
    start = 0
    quotes = 0
    for number, line in lines:
        _utf8(line, number)
        if not record:
            if not line.strip():
                continue
            start = number
        record.append(line)
        quotes += line.count(b'"')
        if quotes % 2 == 0:
            raw = b"".join(record)
            if not raw.endswith(b"\n"):
                raw += b"\n"
            if (chunk := packer.add(start, raw)) is not None:
                yield chunk
            record, quotes = [], 0
    if record:
        raise FileProblem(f"the record at line {start} has an unclosed quote")
    if (chunk := packer.flush()) is not None:
        yield chunk


def json_chunks(fp: BinaryIO, max_rows: int, max_bytes: int) -> Iterator[Chunk]:
    """Chunks of a JSON array, read incrementally: each element is kept as written."""
    packer = _JsonPacker(max_rows, max_bytes)
    for line, element in _json_elements(fp):
        raw = element.encode()
        if (chunk := packer.add(line, raw)) is not None:
            yield chunk
    if (chunk := packer.flush()) is not None:
        yield chunk


class _Text:
    """A window on the decoded file that grows by reads and drops what was consumed, counting
    lines incrementally (elements are visited in order, so each newline is counted once)."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._mark = 0  # self.buf[:_mark] is counted: line _mark_line starts at or before it
        self._mark_line = 1

    def more(self) -> bool:
        """Read on; the window then starts at the current position."""
        if self.eof:
            return False
        raw = self.fp.read(READ_SIZE)
        try:
            text = self.decoder.decode(raw, final=not raw)
        except UnicodeDecodeError:
            where = self.line_at(len(self.buf))
            raise FileProblem(f"the file is not UTF-8 (near line {where})") from None
        self.eof = not raw
        line = self.line_at(self.pos)
        self.buf = self.buf[self.pos :] + text
        self.pos, self._mark, self._mark_line = 0, 0, line
        return True

    def line_at(self, index: int) -> int:
        if index < self._mark:  # only on error paths
            return self._mark_line - self.buf.count("\n", index, self._mark)
        self._mark_line += self.buf.count("\n", self._mark, index)
        self._mark = index
        return self._mark_line

    def skip_space(self) -> str:
        """The next non-blank character ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""


def _json_elements(fp: BinaryIO) -> Iterator[tuple[int, str]]:
    text = _Text(fp)
    decoder = json.JSONDecoder()
    if text.skip_space() != "[":
        raise FileProblem("a JSON file must hold one array of records: [{...}, ...]")
    text.pos += 1
    if text.skip_space() == "]":
        return
    while True:
        if text.skip_space() == "":
            raise FileProblem("the JSON array is not closed (the file ends early)")
        start = text.pos
        try:
            _, end = decoder.raw_decode(text.buf, start)
            complete = end < len(text.buf) or text.eof
        except json.JSONDecodeError as exc:
            if text.more():  # the element may go on in the next read
                continue
            raise FileProblem(f"invalid JSON at line {text.line_at(exc.pos)}: {exc.msg}") from None
        if not complete:  # a number or literal may go on in the next read
            text.more()
            continue
        yield text.line_at(start), text.buf[start:end]
        text.pos = end
        sep = text.skip_space()
        if sep == "]":
            return
        if sep == "":
            raise FileProblem("the JSON array is not closed (the file ends early)")
        if sep != ",":
            where = text.line_at(text.pos)
            raise FileProblem(f"invalid JSON at line {where}: expected ',' or ']'")
        text.pos += 1
