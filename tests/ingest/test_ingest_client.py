"""`cityscore ingest`: splitting files with their line numbers, retries, and end to end
against a real server (uvicorn in a subprocess) on both stores, including a resumed run."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlmodel import select

from api.ingest import chunks
from api.ingest.chunks import CSV, FileProblem, csv_chunks, json_chunks
from api.ingest.client import Sender
from api.keys import service as keys_service
from db import migrate
from db.models import Department, Metric, utcnow
from db.session import make_engine, session_factory
from tests._server import free_port, running_server

CLI = Path(sys.executable).parent / "cityscore"
HEADER = "metric,date,value,numerator,denominator\n"


# --- splitting -------------------------------------------------------------------------------


def split_csv(text: str | bytes, rows: int = 100, size: int = 10_000) -> list[chunks.Chunk]:
    raw = text.encode() if isinstance(text, str) else text
    return list(csv_chunks(io.BytesIO(raw), rows, size))


def test_csv_chunks_keep_the_header_and_the_file_line_of_every_record() -> None:
    text = (
        "\ufeff" + HEADER + "\n"  # BOM, header on line 1, blank line 2
        "a,2026-01-01,1,,\n"  # line 3
        '"a","2026-01-02","multi\nline",,\n'  # lines 4-5: a quoted newline
        "\n\n"  # lines 6-7 blank
        "a,2026-01-03,3,,\n"  # line 8
        "a,2026-01-04,4,,"  # line 9, no final newline
    )
    got = split_csv(text, rows=2)
    assert [c.lines for c in got] == [[3, 4], [8, 9]]
    assert [c.first_record for c in got] == [0, 2]
    assert all(c.body.startswith(HEADER.encode()) for c in got)  # BOM dropped, header repeated
    assert got[0].body == (HEADER + 'a,2026-01-01,1,,\n"a","2026-01-02","multi\nline",,\n').encode()
    assert got[1].body.endswith(b"a,2026-01-04,4,,\n")
    assert got[0].line_of(1) == 4 and got[0].line_of(2) is None and got[0].line_of(None) is None


def test_csv_chunks_stay_under_the_byte_limit() -> None:
    text = HEADER + "".join(f"m,2026-01-{d:02d},{d},,\n" for d in range(1, 29))
    got = split_csv(text, rows=1000, size=200)
    assert len(got) > 1
    assert all(len(c.body) <= 200 for c in got)
    assert sum(c.rows for c in got) == 28
    assert [c.number for c in got] == list(range(1, len(got) + 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "empty"),
        (HEADER.encode() + b"a,2026-01-01,caf\xe9,,\n", "line 2 is not UTF-8 (byte 0xe9"),
        (b"metric;date;value\na;2026-01-01;1\n", "separated by semicolons"),
        (HEADER.encode() + b'a,"2026-01-01,1,,\n', "line 2 has an unclosed quote"),
        (HEADER.encode() + b"a," + b"9" * 300 + b",,\n", "line 2 alone is larger"),
    ],
)
def test_csv_files_that_cannot_be_split(text: bytes, message: str) -> None:
    with pytest.raises(FileProblem) as exc:
        split_csv(text, size=200)
    assert message in str(exc.value)


def test_json_chunks_stream_elements_as_written_across_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chunks, "READ_SIZE", 7)  # elements straddle every read
    text = (
        '[\n  {"metric": "a", "date": "2026-01-01", "value": 1.50},\n'
        '  {"metric": "a",\n   "date": "2026-01-02", "value": 12345},\n'
        '  {"metric": "é", "date": "2026-01-03", "deleted": true}\n]\n'
    )
    got = list(json_chunks(io.BytesIO(text.encode()), 2, 10_000))
    assert [c.lines for c in got] == [[2, 3], [5]]
    assert got[0].body.startswith(b'[{"metric": "a", "date": "2026-01-01", "value": 1.50},')
    records = [r for c in got for r in json.loads(c.body)]
    assert [r["date"] for r in records] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert records[1]["value"] == 12345 and records[2]["metric"] == "é"
    assert list(json_chunks(io.BytesIO(b" [ ] "), 2, 10_000)) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"metric": "a"}', "one array"),
        (b'[{"metric": "a"}', "not closed"),
        (b'[{"metric": "a"} {"metric": "b"}]', "line 1: expected ','"),
        (b'[\n{"metric": "a"},\n{"metric": }]', "invalid JSON at line 3"),
    ],
)
def test_json_files_that_cannot_be_split(text: bytes, message: str) -> None:
    with pytest.raises(FileProblem) as exc:
        list(json_chunks(io.BytesIO(text), 10, 10_000))
    assert message in str(exc.value)


def test_the_idempotency_key_follows_the_content() -> None:
    a, b = split_csv(HEADER + "a,2026-01-01,1,,\n"), split_csv(HEADER + "a,2026-01-01,2,,\n")
    assert a[0].idempotency_key == split_csv(HEADER + "a,2026-01-01,1,,\n")[0].idempotency_key
    assert a[0].idempotency_key != b[0].idempotency_key
    assert len(a[0].idempotency_key) <= 200


# --- retries ---------------------------------------------------------------------------------


def scripted(answers: list[Any]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(base_url="http://test", transport=httpx.MockTransport(handler)), seen


RECEIPT = {"batch": 7, "received": 1, "created": 1, "updated": 0, "unchanged": 0, "deleted": 0}


def test_429_503_and_network_errors_are_retried_with_the_same_key() -> None:
    client, seen = scripted(
        [
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.ConnectError("refused"),
            httpx.Response(200, json=RECEIPT, headers={"Idempotent-Replayed": "true"}),
        ]
    )
    waits: list[float] = []
    chunk = split_csv(HEADER + "a,2026-01-01,1,,\n")[0]
    result = Sender(client, dry_run=False, retries=5, sleep=waits.append).send(chunk)
    assert result.accepted and result.replayed and result.body["batch"] == 7
    assert len(seen) == 4 and waits[1] == 3.0 and len(waits) == 3
    assert {r.headers["idempotency-key"] for r in seen} == {chunk.idempotency_key}
    assert all(r.headers["content-type"] == CSV and r.content == chunk.body for r in seen)


def test_retries_give_up_and_other_errors_are_not_retried() -> None:
    chunk = split_csv(HEADER + "a,2026-01-01,1,,\n")[0]
    client, seen = scripted([httpx.Response(503)] * 3)
    result = Sender(client, dry_run=False, retries=2, sleep=lambda _s: None).send(chunk)
    assert result.status == 503 and len(seen) == 3
    client, seen = scripted([httpx.Response(422, json={"detail": "bad", "errors": []})])
    result = Sender(client, dry_run=True, retries=5, sleep=lambda _s: None).send(chunk)
    assert result.status == 422 and len(seen) == 1
    assert "idempotency-key" not in seen[0].headers and seen[0].url.params["dry_run"] == "true"


# --- end to end against a running server -----------------------------------------------------


@pytest.fixture
def live(scratch_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A migrated store with department 311 (metric `calls`, a sum) and fire (`ems`), its
    311 key, and a server on it: yields (base URL, key)."""
    engine = make_engine(scratch_url)
    migrate.upgrade(engine)
    with session_factory(engine)() as s:
        now = utcnow()
        for slug in ("311", "fire"):
            s.add(Department(slug=slug, name=slug, updated_at=now))
        s.flush()
        for slug, dept in (("calls", "311"), ("ems", "fire")):
            d = s.exec(select(Department).where(Department.slug == dept)).one()
            s.add(
                Metric(
                    slug=slug,
                    name=slug,
                    department_id=d.id,
                    direction="higher_is_better",
                    aggregation="sum",
                    reference="baseline",
                    baseline_years=10,
                    in_cityscore=True,
                    updated_at=now,
                )
            )
        _, token = keys_service.create(s, name="nightly", department="311")
        s.commit()
    engine.dispose()
    port = free_port()
    env = {"DATABASE_URL": scratch_url, "RATE_LIMIT_ENABLED": "false"}
    command = [str(CLI), "serve", "--port", str(port)]
    with running_server(command, env, tmp_path, port) as url:
        yield url, token


def ingest(url: str, key: str, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "ingest", str(path), "--url", url, "--key", key, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def receipts(url: str, key: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{url}/v1/ingest/batches?limit=10000", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def write_days(path: Path, days: int, metric: str = "calls") -> None:
    import datetime as dt

    first = dt.date(2010, 1, 1)
    lines = [f"{metric},{first + dt.timedelta(days=i)},{i},,\n" for i in range(days)]
    path.write_text(HEADER + "".join(lines))


def test_ingest_a_csv_file_in_batches_and_rerun_it(live: tuple[str, str], tmp_path: Path) -> None:
    url, key = live
    path = tmp_path / "values.csv"
    write_days(path, 2500)
    done = ingest(url, key, path, "--batch-rows", "1000")
    assert done.returncode == 0, done.stderr
    assert "rows/s" in done.stderr and "batch 3 ok" in done.stderr
    summary = done.stdout.splitlines()
    assert summary[-1].startswith("3 of 3 batch(es) accepted; received 2500, created 2500")
    assert "lines 2-1001" in summary[0] and "lines 2002-2501" in summary[2]
    assert len(receipts(url, key)) == 3

    again = ingest(url, key, path, "--batch-rows", "1000")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(already applied: replayed)") == 3
    assert len(receipts(url, key)) == 3  # no new batches
    piped = subprocess.run(
        [str(CLI), "ingest", "-", "--url", url, "--key", key, "--batch-rows", "1000"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count("(already applied: replayed)") == 3  # stdin: the same batches

    dry = ingest(url, key, path, "--batch-rows", "1000", "--dry-run")
    assert dry.returncode == 0 and "3 of 3 batch(es) validated (dry run)" in dry.stdout
    assert "unchanged 2500" in dry.stdout.splitlines()[-1]


def test_an_interrupted_run_resumes_without_duplicates(
    live: tuple[str, str], tmp_path: Path
) -> None:
    url, key = live
    path = tmp_path / "values.csv"
    write_days(path, 4000)
    proc = subprocess.Popen(
        [str(CLI), "ingest", str(path), "--url", url, "--key", key, "--batch-rows", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # kill it as soon as the first batch is acknowledged
        if line.startswith("batch 1 ok"):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    before = receipts(url, key)
    assert 1 <= len(before) < 4

    done = ingest(url, key, path, "--batch-rows", "1000")
    assert done.returncode == 0, done.stderr
    after = receipts(url, key)
    assert len(after) == 4  # one receipt per batch: nothing applied twice
    assert sum(r["created"] for r in after) == 4000
    assert all(r["updated"] == 0 and r["unchanged"] == 0 for r in after)
    # The batches acknowledged before the kill (and one in flight, if the server finished it)
    # come back as their first receipts.
    replayed = done.stdout.count("(already applied: replayed)")
    assert len(before) <= replayed <= len(before) + 1
    assert {r["batch"] for r in before} <= {r["batch"] for r in after}
    assert "received 4000, created " in done.stdout.splitlines()[-1]


def test_bad_rows_are_printed_with_their_file_line(live: tuple[str, str], tmp_path: Path) -> None:
    url, key = live
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "\ncalls,2026-01-01,1,,\ncalls,11/27/2026,2,,\n"
        '"calls","2026-01-03","not\na number",,\ncalls,2026-01-04,4,,\n'
    )
    done = ingest(url, key, path)
    assert done.returncode == 1
    errors = [x for x in done.stderr.splitlines() if x.startswith("bad.csv:")]
    assert [e.split(":")[1] for e in errors] == ["4", "5"]
    assert "date" in errors[0] and "value" in errors[1]
    assert "0 of 1 batch(es) accepted" in done.stdout
    assert receipts(url, key) == []

    path = tmp_path / "bad.json"
    path.write_bytes(
        orjson.dumps(
            [{"metric": "calls", "date": "2026-01-01", "value": 1}, {"metric": "calls"}],
            option=orjson.OPT_INDENT_2,
        )
    )
    done = ingest(url, key, path)
    assert done.returncode == 1
    assert any(x.startswith("bad.json:7: date") for x in done.stderr.splitlines()), done.stderr


def test_a_foreign_metric_or_a_bad_key_stops_the_run(live: tuple[str, str], tmp_path: Path) -> None:
    url, key = live
    path = tmp_path / "fire.csv"
    write_days(path, 30, metric="ems")
    done = ingest(url, key, path, "--batch-rows", "10")
    assert done.returncode == 1
    assert "stopped: This key may only write its own department's metrics" in done.stderr
    assert done.stdout.count("FAILED") == 1  # the later batches were not sent
    done = ingest(url, "cs_wrong", path)
    assert done.returncode == 1 and "invalid, expired or revoked" in done.stderr
    missing = ingest(url, key, tmp_path / "nope.csv")
    assert missing.returncode == 1 and "no such file" in missing.stderr
