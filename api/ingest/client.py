"""``cityscore ingest``: push a file of values to a server in batches, resumably.

Each batch's ``Idempotency-Key`` is derived from its content (see ``chunks.Chunk``), so a rerun
after a crash or a network error sends the batches already applied with the same key, and the
server answers their first receipt again (``Idempotent-Replayed``) instead of a new batch.
429, 502-504 and connection errors are retried with exponential backoff (``Retry-After`` is
honoured); a 422 prints every bad record with its file line and goes on with the next batch;
401, 403, 409 and 413 stop the run (every later batch would fail the same way).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import httpx

from api.ingest.chunks import CSV, Chunk, FileProblem, csv_chunks, detect_format, json_chunks

RETRY_STATUSES = frozenset({429, 502, 503, 504})
FATAL_STATUSES = frozenset({400, 401, 403, 404, 409, 413, 415})
COUNTS = ("received", "created", "updated", "unchanged", "deleted")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a .csv or .json file of values ('-': stdin)")
    parser.add_argument(
        "--url",
        default=os.environ.get("CITYSCORE_URL"),
        required="CITYSCORE_URL" not in os.environ,
        help="the API's base URL, e.g. https://data.city.gov (env CITYSCORE_URL)",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("CITYSCORE_KEY"),
        required="CITYSCORE_KEY" not in os.environ,
        help="the department's API key (env CITYSCORE_KEY keeps it out of `ps`)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=100_000,
        help="records per batch (server: INGEST_MAX_ROWS)",
    )
    parser.add_argument(
        "--batch-bytes",
        type=int,
        default=10 * 1024 * 1024,
        help="bytes per batch body (server: INGEST_MAX_BYTES)",
    )
    parser.add_argument(
        "--format", choices=("auto", "csv", "json"), default="auto", help="file format"
    )
    parser.add_argument(
        "--retries", type=int, default=6, help="retries per batch (429/503/network)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")


@dataclass
class Result:
    chunk: Chunk
    status: int | None  # None: no answer (network)
    body: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 200


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


class Sender:
    """Posts chunks with retries; ``sleep`` is injectable for tests."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        dry_run: bool,
        retries: int,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.client, self.dry_run, self.retries = client, dry_run, retries
        self.sleep, self.warn = sleep, warn

    def backoff(self, attempt: int) -> float:
        return min(30.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)

    def send(self, chunk: Chunk) -> Result:
        headers = {"Content-Type": chunk.content_type}
        if not self.dry_run:
            headers["Idempotency-Key"] = chunk.idempotency_key
        params = {"dry_run": "true"} if self.dry_run else {}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.client.post(
                    "/v1/ingest/values", content=chunk.body, headers=headers, params=params
                )
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if last:
                    return Result(chunk, None, reason=reason)
                wait = self.backoff(attempt)
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return _result(chunk, response)
                reason = f"HTTP {response.status_code}"
                wait = _retry_after(response) or self.backoff(attempt)
            self.warn(f"batch {chunk.number}: {reason}; retrying in {wait:.1f}s")
            self.sleep(wait)
        raise AssertionError("unreachable")


def _result(chunk: Chunk, response: httpx.Response) -> Result:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = "" if response.status_code == 200 else str(body.get("detail") or response.text[:200])
    replayed = response.headers.get("idempotent-replayed") == "true"
    return Result(chunk, response.status_code, body, replayed, reason)


class Progress:
    """A progress bar with rows/s on a terminal; one line per batch otherwise (logs)."""

    def __init__(self, stream: TextIO, total_bytes: int | None) -> None:
        self.stream, self.total = stream, total_bytes
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.rows = 0
        self.bytes = 0

    def update(self, result: Result, position: int) -> None:
        """After a batch; ``position`` is how far into the file the reader is."""
        self.rows += result.chunk.rows
        self.bytes = position
        rate = self.rows / max(time.monotonic() - self.started, 1e-6)
        state = "ok" if result.accepted else f"FAILED ({result.status or 'no answer'})"
        if result.replayed:
            state = "ok (already applied)"
        text = f"{self.rows:,} rows  {rate:,.0f} rows/s"
        if self.total:
            share = min(1.0, self.bytes / self.total)
            bar = "#" * int(share * 30)
            text = f"[{bar:<30}] {share:4.0%}  {text}"
        if self.tty:
            print(f"\r{text}  batch {result.chunk.number} {state}", end="", file=self.stream)
        else:
            print(f"batch {result.chunk.number} {state}: {text}", file=self.stream)
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            print(file=self.stream)


def _source(path: str) -> tuple[BinaryIO, str, int | None]:
    if path == "-":
        return sys.stdin.buffer, "-", None
    file = Path(path)
    if not file.is_file():
        raise FileProblem(f"no such file: {path}")
    return file.open("rb"), file.name, file.stat().st_size


def chunks_of(fp: BinaryIO, name: str, fmt: str, rows: int, size: int) -> Iterator[Chunk]:
    if fmt == "auto":
        head = fp.peek(64) if hasattr(fp, "peek") else b""
        media = detect_format(name, head)
    else:
        media = CSV if fmt == "csv" else "application/json"
    split = csv_chunks if media == CSV else json_chunks
    return split(fp, rows, size)


def report_errors(result: Result, file: str, out: TextIO) -> None:
    """Every bad record of a 422, with the line of the file it came from."""
    errors = result.body.get("errors") or []
    for err in errors:
        row = err.get("row")
        line = result.chunk.line_of(row)
        where = f"{file}:{line}" if line is not None else f"{file} (batch {result.chunk.number})"
        value = f" (got {err['value']!r})" if err.get("value") is not None else ""
        print(f"{where}: {err.get('field')}: {err.get('message')}{value}", file=out)
    if result.body.get("errors_truncated"):
        total = result.body.get("error_count")
        print(f"{file}: ... the server listed the first {len(errors)} of {total}", file=out)
    if not errors:
        print(f"{file} (batch {result.chunk.number}): {result.reason}", file=out)


def summary_line(result: Result) -> str:
    chunk = result.chunk
    span = f"lines {chunk.lines[0]}-{chunk.lines[-1]}"
    if not result.accepted:
        return f"batch {chunk.number:>4}  {span}  FAILED: {result.reason}"
    body = result.body
    batch = "dry run" if body.get("batch") is None else f"receipt {body['batch']}"
    counts = "  ".join(f"{k} {body.get(k, 0)}" for k in COUNTS)
    note = "  (already applied: replayed)" if result.replayed else ""
    return f"batch {chunk.number:>4}  {span}  {batch}  {counts}{note}"


def run(args: argparse.Namespace) -> int:
    """The command: 0 when every batch was accepted, 1 otherwise."""
    if args.batch_rows < 1 or args.batch_bytes < 1024:
        raise FileProblem("--batch-rows must be >= 1 and --batch-bytes >= 1024")
    fp, name, total = _source(args.file)
    progress = Progress(sys.stderr, total)
    headers = {"Authorization": f"Bearer {args.key}", "User-Agent": "cityscore-ingest"}
    results: list[Result] = []
    stopped = ""
    with httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=args.timeout) as c:
        sender = Sender(
            c,
            dry_run=args.dry_run,
            retries=args.retries,
            warn=lambda m: print(f"\ncityscore ingest: {m}", file=sys.stderr),
        )
        try:
            for chunk in chunks_of(fp, name, args.format, args.batch_rows, args.batch_bytes):
                result = sender.send(chunk)
                results.append(result)
                progress.update(result, fp.tell() if total else 0)
                if result.status == 422:
                    report_errors(result, name, sys.stderr)
                elif not result.accepted and (result.status in FATAL_STATUSES or not result.status):
                    stopped = result.reason
                    break
        except FileProblem as exc:
            stopped = f"{name}: {exc}"
        finally:
            progress.done()
            if fp is not sys.stdin.buffer:
                fp.close()
    return _summary(results, stopped, args.dry_run)


def _summary(results: list[Result], stopped: str, dry_run: bool) -> int:
    for result in results:
        print(summary_line(result))
    accepted = [r for r in results if r.accepted]
    totals = {k: sum(int(r.body.get(k, 0)) for r in accepted) for k in COUNTS}
    what = "validated (dry run)" if dry_run else "accepted"
    print(
        f"{len(accepted)} of {len(results)} batch(es) {what}; "
        + ", ".join(f"{k} {v}" for k, v in totals.items())
    )
    if stopped:
        print(f"cityscore ingest: stopped: {stopped}", file=sys.stderr)
        print("stopped before the end of the file; fix the problem and rerun the same command")
    ok = not stopped and len(accepted) == len(results) and bool(results)
    if not results and not stopped:
        print("cityscore ingest: the file has no records", file=sys.stderr)
    return 0 if ok else 1
