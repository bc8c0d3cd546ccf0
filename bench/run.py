"""CityScore API benchmarks against their physical limits and peers, in one run.

    .venv/bin/python bench/run.py [--quick] [--metrics M] [--years Y] [--reload] [--full-rss]

Loads ``cityscore demo`` into a fresh PostgreSQL database and a fresh SQLite file (reused when
a marker says they hold the same scale), starts ``cityscore serve`` on each and Datasette on
the SQLite file, measures CSV export, JSON reads, ingest, 304s, memory during export,
CityScore history and the recompute after a day's ingest, and writes ``bench/results.md``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import LoadResult, run_load

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"
BIN = Path(sys.executable).parent
CITYSCORE = str(BIN / "cityscore")
DATASETTE = str(BIN / "datasette")
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/bench_cityscore"
# Bumped when the stored layout changes (2: score rows only where a window has data), so a
# load made by an older build is reloaded instead of being measured.
LOAD_FORMAT = 2

PORTS = {"pg": 8811, "sqlite": 8812, "datasette": 8813, "rss": 8814}  # --port-base moves them


def log(message: str = "") -> None:
    print(message, flush=True)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    log(f"\n== {name}")
    began = time.perf_counter()
    try:
        yield
    finally:
        log(f"   [{name}: {time.perf_counter() - began:.1f} s]")


# --- results -------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    ours: str
    anchor: str
    ratio: str
    target: str
    met: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(Row(*cells))

    def note(self, line: str) -> None:
        log("   " + line)
        self.details.append(line)


def fmt(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def ratio(ours: float | None, anchor: float | None) -> float | None:
    if ours is None or anchor is None or anchor == 0:
        return None
    return ours / anchor


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


# --- processes -----------------------------------------------------------------------------


def pg_conninfo(url: str) -> str:
    """A libpq URL for psql and psycopg from the SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def server_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    env["RATE_LIMIT_ENABLED"] = "false"
    return env


class Server:
    """A child process in its own session, stopped by signalling its process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.db = ""  # Datasette's database name
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = WORK / f"{name}.log"
        handle = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited early:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + path, timeout=2.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def start_api(name: str, url: str, port: int, workers: int) -> Server:
    args = [CITYSCORE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server(name, [*args, "--workers", str(workers)], server_env(url), port)
    server.wait_ready("/readyz")
    return server


def start_datasette(db: Path, port: int) -> Server:
    settings = {
        "max_returned_rows": "10000",
        "sql_time_limit_ms": "600000",
        "allow_csv_stream": "on",
        "max_csv_mb": "0",
        "num_sql_threads": "2",
        "suggest_facets": "off",
    }
    args = [DATASETTE, "serve", str(db), "--host", "127.0.0.1", "--port", str(port)]
    for key, value in settings.items():
        args += ["--setting", key, value]
    server = Server("datasette", args, dict(os.environ), port)
    server.db = db.stem
    server.wait_ready("/-/versions.json")
    return server


# --- memory --------------------------------------------------------------------------------


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc (psutil is not a dependency)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


class CpuMeter:
    """CPU used by a server's process tree and by this client (and its children, e.g. psql)."""

    def __init__(self, server: Server | None) -> None:
        self.pids = descendants(server.proc.pid) if server is not None else []
        self.text = ""
        self.server_s = 0.0

    @staticmethod
    def _client() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def __enter__(self) -> CpuMeter:
        self._server0, self._client0 = cpu_ticks(self.pids), self._client()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        self.server_s = (cpu_ticks(self.pids) - self._server0) / os.sysconf("SC_CLK_TCK")
        client_s = self._client() - self._client0
        server = f"server CPU {self.server_s / wall * 100:.0f}% of a core, " if self.pids else ""
        self.text = f"{server}client CPU {client_s / wall * 100:.0f}%"


def measured_load(
    server: Server, label: str, url_of: Callable[[int], str], **kwargs: Any
) -> LoadResult:
    """run_load, noting the CPU the server tree and this client used meanwhile."""
    with CpuMeter(server) as meter:
        result = run_load(label, url_of, **kwargs)
    per_request = meter.server_s / result.requests * 1000 if result.requests else 0.0
    result.extra = f"{meter.text}; server {per_request:.1f} ms CPU/request"
    return result


class RssSampler:
    """Samples VmRSS of a process tree every 50 ms in a thread."""

    def __init__(self, root: int) -> None:
        self.pids = descendants(root)
        self.baseline = {pid: status_kb(pid, "VmRSS") for pid in self.pids}
        self.peak: dict[int, int] = dict(self.baseline)
        self.peak_total = sum(self.baseline.values())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.hwm: dict[int, int] = {}

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self.pids:
                kb = status_kb(pid, "VmRSS")
                total += kb
                self.peak[pid] = max(self.peak.get(pid, 0), kb)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm = {pid: status_kb(pid, "VmHWM") for pid in self.pids}

    def worker_peak(self) -> tuple[int, int, int]:
        """(pid, baseline kB, peak kB) of the process whose RSS grew most (the one serving)."""
        pid = max(self.pids, key=lambda p: self.peak.get(p, 0) - self.baseline.get(p, 0))
        return pid, self.baseline.get(pid, 0), max(self.peak.get(pid, 0), self.hwm.get(pid, 0))


# --- streaming -----------------------------------------------------------------------------


@dataclass
class Stream:
    rows: int
    bytes: int
    seconds: float
    status: int
    complete: bool
    first_line: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def count_chunks(chunks: Iterator[bytes], max_seconds: float | None) -> tuple[int, int, bool, str]:
    newlines = size = 0
    first = b""
    began = time.perf_counter()
    for chunk in chunks:
        if not first:
            first = chunk[:200]
        newlines += chunk.count(b"\n")
        size += len(chunk)
        if max_seconds is not None and time.perf_counter() - began > max_seconds:
            return newlines, size, False, first.decode(errors="replace").splitlines()[0]
    head = first.decode(errors="replace").splitlines()
    return newlines, size, True, head[0] if head else ""


def dechunk(source: Iterator[bytes]) -> Iterator[bytes]:
    """The payload of a chunked HTTP body (a lean decoder: some servers send a chunk a row)."""
    buf = b""
    remaining = skip = 0  # payload bytes left in this chunk; CRLF bytes left after it
    for data in source:
        buf = buf + data if buf else data
        pos, end, out = 0, len(buf), []
        while pos < end:
            if remaining:
                take = min(remaining, end - pos)
                out.append(buf[pos : pos + take])
                pos += take
                remaining -= take
                skip = 2 if remaining == 0 else 0
            elif skip:
                take = min(skip, end - pos)
                pos += take
                skip -= take
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    if out:
                        yield b"".join(out)
                    return
                remaining = size
        buf = buf[pos:]
        if out:
            yield b"".join(out)


def stream_http(url: str, max_seconds: float | None = None, header: bool = True) -> Stream:
    """GET url, counting rows (newlines, minus the header) without keeping the body.

    A plain socket and a lean chunked decoder rather than httpx, whose per-chunk cost made
    the client, not the server, the limit for Datasette's one-chunk-per-row stream.
    """
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    began = time.perf_counter()
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(1 << 16)
            if not data:
                break
            head += data
        raw, _, rest = head.partition(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        chunked = any(
            line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower()
            for line in lines[1:]
        )
        if status != 200:
            return Stream(0, 0, time.perf_counter() - began, status, False)

        def received() -> Iterator[bytes]:
            if rest:
                yield rest
            while data := sock.recv(1 << 20):
                yield data
                if len(data) < 16384:  # a trickle: let it pile up rather than spin on recv
                    time.sleep(0.001)

        body = dechunk(received()) if chunked else received()
        newlines, size, complete, first = count_chunks(body, max_seconds)
    seconds = time.perf_counter() - began
    rows = newlines - 1 if header and newlines else newlines
    return Stream(rows, size, seconds, status, complete, first)


def stream_psql(conninfo: str, query: str) -> Stream:
    began = time.perf_counter()
    proc = subprocess.Popen(["psql", "-X", "-q", conninfo, "-c", query], stdout=subprocess.PIPE)
    out = proc.stdout
    assert out is not None
    newlines, size, complete, first = count_chunks(iter(lambda: out.read(1 << 20), b""), None)
    code = proc.wait()
    seconds = time.perf_counter() - began
    return Stream(newlines, size, seconds, 200 if code == 0 else 500, complete and code == 0, first)


# --- loading -------------------------------------------------------------------------------


def pg_exec(url: str, sql: str, dbname: str | None = None) -> list[tuple[Any, ...]]:
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": True}
    if dbname is not None:
        kwargs["dbname"] = dbname
    with psycopg.connect(pg_conninfo(url), **kwargs) as conn, conn.cursor() as cur:
        cur.execute(sql.encode())
        return list(cur.fetchall()) if cur.description else []


def pg_dbname(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def marker_ok(marker: Path, scale: dict[str, int]) -> bool:
    try:
        found = json.loads(marker.read_text())
        return all(found.get(k) == v for k, v in scale.items())
    except (OSError, ValueError, AttributeError):
        return False


def marker_story(marker: Path) -> str:
    """How long the reused load took when it was made, from its marker."""
    try:
        found = json.loads(marker.read_text())
        return f" (loaded {found['loaded_at']} in {found['seconds']:.0f} s)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def write_marker(marker: Path, scale: dict[str, int], seconds: float, demo: float) -> None:
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    fields = {"seconds": round(seconds, 1), "demo_seconds": round(demo, 1), "loaded_at": stamp}
    marker.write_text(json.dumps({**scale, **fields}))


def demo_row(report: Report, store: str, seconds: float | None, story: str) -> None:
    """The demo load's own time (``cityscore demo``), measured now or from the marker."""
    report.add(
        f"7. `cityscore demo --metrics M --years Y`, {store} (s)",
        "n/a" if seconds is None else f"{seconds:.1f} s{story}",
        "-",
        "-",
        "<= 30 s",
        verdict(None if seconds is None else seconds <= 30),
    )


def marker_demo_seconds(marker: Path) -> float | None:
    try:
        return float(json.loads(marker.read_text())["demo_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def timed_demo(env: dict[str, str], metrics: int, years: int) -> tuple[str, float]:
    began = time.perf_counter()
    out = run_cli([CITYSCORE, "demo", "--metrics", str(metrics), "--years", str(years)], env)
    return out, time.perf_counter() - began


def load_pg(
    url: str, metrics: int, years: int, reload: bool, report: Report, row: bool = True
) -> None:
    name = pg_dbname(url)
    marker = WORK / f"{name}.loaded"
    scale = {"metrics": metrics, "years": years, "format": LOAD_FORMAT}
    if not reload and marker_ok(marker, scale):
        try:
            count = pg_exec(url, "SELECT count(*) FROM metrics")[0][0]
        except Exception:
            count = 0
        if count == metrics:
            report.note(
                f"PostgreSQL {name}: reusing the loaded {metrics} x {years}y database"
                + marker_story(marker)
            )
            if row:
                demo_row(report, "PostgreSQL", marker_demo_seconds(marker), " (earlier load)")
            return
    marker.unlink(missing_ok=True)
    pg_exec(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")
    pg_exec(url, f'CREATE DATABASE "{name}"', dbname="postgres")
    env = server_env(url)
    began = time.perf_counter()
    run_cli([CITYSCORE, "db", "upgrade"], env)
    out, demo_seconds = timed_demo(env, metrics, years)
    report.note(f"PostgreSQL {name}: {out.strip()} (demo {demo_seconds:.1f} s)")
    if row:
        demo_row(report, "PostgreSQL", demo_seconds, " (this run)")
    pg_exec(url, "VACUUM ANALYZE")
    write_marker(marker, scale, time.perf_counter() - began, demo_seconds)


def load_sqlite(path: Path, metrics: int, years: int, reload: bool, report: Report) -> None:
    marker = path.with_suffix(".loaded")
    scale = {"metrics": metrics, "years": years, "format": LOAD_FORMAT}
    if not reload and path.exists() and marker_ok(marker, scale):
        report.note(
            f"SQLite {path.name}: reusing the loaded {metrics} x {years}y file"
            + marker_story(marker)
        )
        demo_row(report, "SQLite", marker_demo_seconds(marker), " (earlier load)")
        return
    marker.unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    env = server_env(f"sqlite:///{path}")
    began = time.perf_counter()
    run_cli([CITYSCORE, "db", "upgrade"], env)
    out, demo_seconds = timed_demo(env, metrics, years)
    report.note(f"SQLite {path.name}: {out.strip()} (demo {demo_seconds:.1f} s)")
    demo_row(report, "SQLite", demo_seconds, " (this run)")
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")
    write_marker(marker, scale, time.perf_counter() - began, demo_seconds)


@dataclass
class Catalogue:
    """What the load tests need to know about the loaded data."""

    metrics: list[tuple[int, str, str, str]]  # id, slug, aggregation, department slug
    first: dt.date
    last: dt.date
    rows: int


def catalogue_pg(url: str) -> Catalogue:
    metrics = pg_exec(
        url,
        "SELECT m.id, m.slug, m.aggregation, d.slug FROM metrics m "
        "JOIN departments d ON d.id = m.department_id ORDER BY m.id",
    )
    first, last, rows = pg_exec(
        url, "SELECT min(date), max(date), count(*) FROM metric_values WHERE NOT deleted"
    )[0]
    return Catalogue([tuple(m) for m in metrics], first, last, rows)


def catalogue_sqlite(path: Path) -> Catalogue:
    with sqlite3.connect(path) as conn:
        metrics = conn.execute(
            "SELECT m.id, m.slug, m.aggregation, d.slug FROM metrics m "
            "JOIN departments d ON d.id = m.department_id ORDER BY m.id"
        ).fetchall()
        first, last, rows = conn.execute(
            "SELECT min(date), max(date), count(*) FROM metric_values WHERE NOT deleted"
        ).fetchone()
    return Catalogue(
        [tuple(m) for m in metrics],
        dt.date.fromisoformat(first),
        dt.date.fromisoformat(last),
        rows,
    )


def create_key(url: str, *args: str) -> str:
    out = run_cli([CITYSCORE, "keys", "create", *args, "--name", "bench"], server_env(url))
    return out.strip().splitlines()[-1]


# --- measurements --------------------------------------------------------------------------

COPY_QUERY = (
    "COPY (SELECT m.slug, v.date, v.value, v.numerator, v.denominator, v.updated_at "
    "FROM metric_values v JOIN metrics m ON m.id = v.metric_id WHERE NOT v.deleted "
    "ORDER BY v.metric_id, v.date) TO STDOUT WITH CSV"
)


def describe_stream(label: str, s: Stream) -> str:
    state = "complete" if s.complete else "stopped early (rate over the part read)"
    return (
        f"{label}: HTTP {s.status}, {s.rows:,} rows, {s.bytes / 1e6:,.1f} MB in {s.seconds:.2f} s "
        f"= {s.rows_per_s:,.0f} rows/s, {state}"
    )


def csv_export_pg(api: Server, url: str, cat: Catalogue, report: Report) -> RssSampler:
    with RssSampler(api.proc.pid) as sampler, CpuMeter(api) as meter:
        ours = stream_http(api.base + "/v1/values.csv")
    report.note(describe_stream("ours PG /v1/values.csv", ours) + "; " + meter.text)
    if ours.status == 200 and ours.rows != cat.rows:
        report.note(f"WARNING: ours returned {ours.rows:,} rows, the table has {cat.rows:,}")
    with CpuMeter(None) as meter:
        anchor = stream_psql(pg_conninfo(url), COPY_QUERY)
    report.note(describe_stream("psql COPY TO STDOUT", anchor) + "; psql + " + meter.text)
    ok = ours.status == 200 and ours.complete
    r = ratio(ours.rows_per_s, anchor.rows_per_s) if ok else None
    report.add(
        "1a. Full CSV export, PostgreSQL (rows/s)",
        fmt(ours.rows_per_s) if ok else f"failed (HTTP {ours.status})",
        f"{fmt(anchor.rows_per_s)} (psql COPY TO STDOUT)",
        fmt(r, "x", 2),
        ">= 0.5x COPY",
        verdict(None if r is None else r >= 0.5),
    )
    return sampler


def csv_export_sqlite(
    api: Server, ds: Server, cat: Catalogue, report: Report, ds_cap: float
) -> None:
    with CpuMeter(api) as meter:
        ours = stream_http(api.base + "/v1/values.csv")
    report.note(describe_stream("ours SQLite /v1/values.csv", ours) + "; " + meter.text)
    with CpuMeter(ds) as meter:
        anchor = stream_http(
            ds.base + f"/{ds.db}/metric_values.csv?_stream=on&_size=max", max_seconds=ds_cap
        )
    report.note(
        describe_stream("Datasette metric_values.csv?_stream=on", anchor) + "; " + meter.text
    )
    ok = ours.status == 200 and ours.complete
    r = ratio(ours.rows_per_s, anchor.rows_per_s) if ok and anchor.status == 200 else None
    report.add(
        "1b. Full CSV export, SQLite (rows/s)",
        fmt(ours.rows_per_s) if ok else f"failed (HTTP {ours.status})",
        f"{fmt(anchor.rows_per_s)} (Datasette `_stream=on`)",
        fmt(r, "x", 1),
        ">= 15x Datasette",
        verdict(None if r is None else r >= 15),
    )


def json_reads(
    apis: dict[str, tuple[Server, Catalogue]],
    ds: Server,
    ds_cat: Catalogue,
    report: Report,
    duration: float,
) -> None:
    """JSON req/s against Datasette. Every request asks for a different metric and window,
    so the server's response cache (keyed by ETag) cannot answer: this is the query path.
    A last case repeats 50 URLs to show the warm-cache path too."""
    conc = 16
    metrics = ds_cat.metrics
    span = (ds_cat.last - ds_cat.first).days + 1
    day = dt.timedelta(days=1)

    def metric(i: int) -> tuple[int, str, str, str]:
        return metrics[(i * 104_729) % len(metrics)]

    def start(i: int, room: int) -> dt.date:
        return ds_cat.first + day * ((i * 7_919) % max(1, span - min(room, span // 2)))

    def year_ours(base: str) -> Callable[[int], str]:
        def url(i: int) -> str:
            first = start(i, 365)
            return f"{base}/v1/metrics/{metric(i)[1]}/values?start={first}&end={first + 364 * day}"

        return url

    def year_ds(i: int) -> str:
        first = start(i, 365)
        return (
            f"{ds.base}/{ds.db}/metric_values.json?metric_id={metric(i)[0]}&date__gte={first}"
            f"&date__lte={first + 364 * day}&_shape=array&_size=max&_nocount=1"
        )

    def page_ours(base: str) -> Callable[[int], str]:
        return lambda i: f"{base}/v1/values?metric={metric(i)[1]}&start={start(i, 1500)}&limit=1000"

    def page_ds(i: int) -> str:
        return (
            f"{ds.base}/{ds.db}/metric_values.json?metric_id={metric(i)[0]}"
            f"&date__gte={start(i, 1500)}&_size=1000&_shape=array&_nocount=1"
        )

    def repeated(fn: Callable[[int], str]) -> Callable[[int], str]:
        return lambda i: fn(i % 50)

    cases: list[tuple[str, str, Callable[[str], Callable[[int], str]], Callable[[int], str]]] = [
        ("2a", "one metric's year (365 daily rows)", year_ours, year_ds),
        ("2b", "1000-row page of bulk values", page_ours, page_ds),
        (
            "2c",
            "one metric's year, 50 URLs repeated (response cache warm)",
            lambda base: repeated(year_ours(base)),
            repeated(year_ds),
        ),
    ]
    for key, label, ours_url, ds_url in cases:
        anchor = measured_load(
            ds, f"Datasette {label}", ds_url, concurrency=conc, duration=duration
        )
        report.note(anchor.summary())
        stores = list(apis.items()) if key != "2c" else list(apis.items())[-1:]
        for store, (api, _cat) in stores:
            ours = measured_load(
                api,
                f"ours {store} {label}",
                ours_url(api.base),
                concurrency=conc,
                duration=duration,
            )
            report.note(ours.summary())
            r = ratio(ours.rps, anchor.rps) if ours.ok and anchor.ok else None
            report.add(
                f"{key}. JSON {label}, {store}, c=16 (req/s)",
                fmt(ours.rps) if ours.ok else f"failed ({dict(ours.statuses)})",
                f"{fmt(anchor.rps)} (Datasette on SQLite)",
                fmt(r, "x", 2),
                ">= 3x Datasette" if key != "2c" else "info",
                verdict(None if r is None else r >= 3) if key != "2c" else "n/a",
            )


def ingest_rows(
    cat: Catalogue,
    metrics: list[tuple[int, str, str, str]],
    days: list[dt.date],
    rng: random.Random,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for day in days:
        for _id, slug, aggregation, _dept in metrics:
            if aggregation in ("pooled_ratio", "mean_of_ratios"):
                den = float(rng.randint(100, 1000))
                rows.append(
                    {
                        "metric": slug,
                        "date": day.isoformat(),
                        "numerator": float(rng.randint(0, int(den))),
                        "denominator": den,
                    }
                )
            else:
                rows.append(
                    {
                        "metric": slug,
                        "date": day.isoformat(),
                        "value": round(rng.uniform(1, 500), 3),
                    }
                )
    return rows


def ingest(api: Server, url: str, cat: Catalogue, report: Report, seconds: float) -> None:
    by_dept: dict[str, list[tuple[int, str, str, str]]] = {}
    for m in cat.metrics:
        by_dept.setdefault(m[3], []).append(m)
    dept, metrics = max(by_dept.items(), key=lambda kv: len(kv[1]))
    key = create_key(url, "--department", dept)
    per_day = len(metrics)
    days_per_batch = -(-10_000 // per_day)  # enough days for 10,000 rows
    rng = random.Random(time.time_ns())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    total_rows, total_time, batches = 0, 0.0, 0
    receipts: list[str] = []
    day = cat.last
    payloads: list[bytes] = []
    with httpx.Client(timeout=httpx.Timeout(600.0)) as client:
        while (
            total_time < seconds and batches < 20 and day - dt.timedelta(days_per_batch) > cat.first
        ):
            days = [day - dt.timedelta(days=k) for k in range(days_per_batch)]
            day -= dt.timedelta(days=days_per_batch)
            rows = ingest_rows(cat, metrics, days, rng)[:10_000]
            body = orjson.dumps(rows)
            payloads.append(body)
            began = time.perf_counter()
            response = client.post(api.base + "/v1/ingest/values", content=body, headers=headers)
            elapsed = time.perf_counter() - began
            if response.status_code in (404, 405):
                report.note(
                    f"ingest: POST /v1/ingest/values answered {response.status_code}: not available"
                )
                report.add(
                    "3. Ingest, PostgreSQL, 10,000-row batches (rows/s)",
                    f"not available (HTTP {response.status_code})",
                    "-",
                    "-",
                    ">= 0.5x COPY + upsert",
                    "n/a",
                )
                return
            if response.status_code != 200:
                report.note(f"ingest: HTTP {response.status_code}: {response.text[:300]}")
                report.add(
                    "3. Ingest, PostgreSQL, 10,000-row batches (rows/s)",
                    f"failed (HTTP {response.status_code})",
                    "-",
                    "-",
                    ">= 0.5x COPY + upsert",
                    "n/a",
                )
                return
            batches += 1
            total_rows += len(rows)
            total_time += elapsed
            receipts.append(response.text[:200])
    ours = total_rows / total_time if total_time else None
    report.note(
        f"ingest: {batches} batches of {total_rows // max(batches, 1):,} rows for department "
        f"{dept} ({per_day} metrics) in {total_time:.2f} s = {fmt(ours)} rows/s; "
        f"last receipt {receipts[-1] if receipts else '-'}"
    )
    copy_rate, upsert_rate = copy_anchor(url, cat, payloads)
    report.note(
        "COPY FROM STDIN into an empty scratch copy of metric_values (best of 3): "
        f"{fmt(copy_rate)} rows/s"
    )
    report.note(
        "COPY into a temp table + INSERT .. ON CONFLICT DO UPDATE (all rows existing): "
        f"{fmt(upsert_rate)} rows/s"
    )
    r = ratio(ours, upsert_rate)
    report.add(
        "3. Ingest, PostgreSQL, 10,000-row batches, scores recomputed (rows/s)",
        fmt(ours),
        f"{fmt(upsert_rate)} (COPY into staging + upsert); {fmt(copy_rate)} (plain COPY)",
        fmt(r, "x", 2),
        ">= 0.5x COPY + upsert",
        verdict(None if r is None else r >= 0.5),
    )


def copy_anchor(
    url: str, cat: Catalogue, payloads: list[bytes]
) -> tuple[float | None, float | None]:
    """The same rows through COPY FROM STDIN into a scratch table (and as a set-based upsert)."""
    import psycopg

    ids = {slug: id_ for id_, slug, _a, _d in cat.metrics}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()
    lines = []
    for body in payloads:
        for row in orjson.loads(body):
            value = row.get("value")
            num, den = row.get("numerator"), row.get("denominator")
            if value is None and den:
                value = num / den
            cells = [ids[row["metric"]], row["date"], value, num, den, "f", now]
            lines.append("\t".join("\\N" if c is None else str(c) for c in cells))
    data = ("\n".join(lines) + "\n").encode()
    n = len(lines)
    cols = "metric_id, date, value, numerator, denominator, deleted, updated_at"
    copy_s = upsert_s = float("inf")
    with psycopg.connect(pg_conninfo(url)) as conn:
        for _ in range(3):  # best of three: one COPY of 10,000 rows is short and noisy
            conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
            conn.execute("CREATE TABLE bench_copy_scratch (LIKE metric_values INCLUDING ALL)")
            conn.commit()
            began = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY bench_copy_scratch ({cols}) FROM STDIN") as cp,
            ):
                for i in range(0, len(data), 1 << 20):
                    cp.write(data[i : i + (1 << 20)])
            conn.commit()
            copy_s = min(copy_s, time.perf_counter() - began)
            began = time.perf_counter()
            conn.execute(
                "CREATE TEMP TABLE bench_stage (LIKE metric_values INCLUDING DEFAULTS) "
                "ON COMMIT DROP"
            )
            with conn.cursor() as cur, cur.copy(f"COPY bench_stage ({cols}) FROM STDIN") as cp:
                for i in range(0, len(data), 1 << 20):
                    cp.write(data[i : i + (1 << 20)])
            conn.execute(
                f"INSERT INTO bench_copy_scratch ({cols}) SELECT {cols} FROM bench_stage "
                "ON CONFLICT (metric_id, date) DO UPDATE SET value = excluded.value, "
                "numerator = excluded.numerator, denominator = excluded.denominator, "
                "updated_at = excluded.updated_at"
            )
            conn.commit()
            upsert_s = min(upsert_s, time.perf_counter() - began)
        conn.execute("DROP TABLE bench_copy_scratch")
        conn.commit()
    return (n / copy_s if copy_s else None), (n / upsert_s if upsert_s else None)


def not_modified(api: Server, cat: Catalogue, report: Report, duration: float) -> None:
    slug = cat.metrics[0][1]
    url = f"{api.base}/v1/metrics/{slug}"
    etag = httpx.get(url).headers.get("etag")
    if not etag:
        report.add("4. Cached GET answered 304, c=64 (req/s; p99)", "no ETag", "-", "-", "-", "n/a")
        return
    ours = measured_load(
        api,
        "ours PG 304 /v1/metrics/{slug}",
        lambda i: url,
        concurrency=64,
        duration=duration,
        headers={"If-None-Match": etag},
    )
    report.note(ours.summary())
    floor = measured_load(
        api,
        "ours PG /healthz (framework floor)",
        lambda i: api.base + "/healthz",
        concurrency=64,
        duration=duration,
    )
    report.note(floor.summary())
    all_304 = set(ours.statuses) == {304}
    r = ratio(ours.rps, floor.rps)
    report.add(
        "4. Cached GET answered 304, PostgreSQL, c=64 (req/s; p99)",
        f"{fmt(ours.rps)}; p99 {fmt(ours.percentile(99) * 1000, ' ms', 1)}"
        + ("" if all_304 else f" (statuses {dict(ours.statuses)})"),
        f"{fmt(floor.rps)}; p99 {fmt(floor.percentile(99) * 1000, ' ms', 1)} (GET /healthz)",
        fmt(r, "x", 2),
        "none set (report)",
        "n/a",
    )


def rss_row(report: Report, label: str, sampler: RssSampler) -> tuple[float, float]:
    pid, base, peak = sampler.worker_peak()
    report.note(
        f"RSS {label}: serving worker pid {pid} {base / 1024:.0f} MB before, "
        f"peak {peak / 1024:.0f} MB; "
        f"whole server tree ({len(sampler.pids)} processes) peak {sampler.peak_total / 1024:.0f} MB"
    )
    return peak / 1024, sampler.peak_total / 1024


def rss_compare(
    one_x: RssSampler, other_url: str, other_label: str, workers: int, report: Report
) -> None:
    """Export again from a database at another scale and compare the serving worker's peak."""
    api = start_api("api-rss", other_url, PORTS["rss"], workers)
    try:
        with RssSampler(api.proc.pid) as other:
            s = stream_http(api.base + "/v1/values.csv")
        report.note(describe_stream(f"ours PG /v1/values.csv at {other_label}", s))
    finally:
        api.stop()
    pairs = {"1x": rss_row(report, "1x", one_x), other_label: rss_row(report, other_label, other)}
    big_label, small_label = ("10x", "1x") if other_label == "10x" else ("1x", other_label)
    (big_peak, big_tree), (small_peak, small_tree) = pairs[big_label], pairs[small_label]
    growth = ratio(big_peak, small_peak)
    flat = growth is not None and growth <= 1.2
    report.add(
        f"5. Peak RSS of the serving worker during a full CSV export, PG "
        f"({big_label} vs {small_label} data)",
        f"{fmt(big_peak, ' MB')} at {big_label} (whole tree {fmt(big_tree, ' MB')})",
        f"{fmt(small_peak, ' MB')} at {small_label} (whole tree {fmt(small_tree, ' MB')})",
        fmt(growth, "x", 2),
        "< 150 MB and flat (<= 1.2x)",
        verdict(big_peak < 150 and flat),
    )


def history(api: Server, cat: Catalogue, report: Report, store: str, n: int = 40) -> None:
    """Ten years of CityScore history: n requests each for a different end date (so the
    response cache cannot answer), then n repeats of one URL (the warm path)."""
    last = cat.last + dt.timedelta(days=1)

    def url(k: int) -> str:
        end = last - dt.timedelta(days=k)
        start = end - dt.timedelta(days=3650)
        return f"{api.base}/v1/cityscore/history?start={start}&end={end}&limit=10000"

    distinct: list[float] = []
    repeated: list[float] = []
    status, rows = 0, 0
    with httpx.Client(timeout=httpx.Timeout(120.0)) as client:
        for i in range(2 * n):
            target = url(i + 1) if i < n else url(0)
            began = time.perf_counter()
            response = client.get(target)
            elapsed = time.perf_counter() - began
            status = response.status_code
            if status != 200:
                break
            if i == 0:
                rows = len(response.json().get("data", []))
            (distinct if i < n else repeated).append(elapsed)
    if status != 200 or not repeated:
        report.add(
            f"6a. /v1/cityscore/history 10 years, {store} (p50; p99)",
            f"failed (HTTP {status})",
            "-",
            "-",
            "< 100 ms",
            "n/a",
        )
        return
    cold = LoadResult("history", 1, sum(distinct), len(distinct), 0, latencies=distinct)
    warm = LoadResult("history", 1, sum(repeated), len(repeated), 0, latencies=repeated[1:])
    p50, p99 = cold.percentile(50) * 1000, cold.percentile(99) * 1000
    w50, w99 = warm.percentile(50) * 1000, warm.percentile(99) * 1000
    report.note(
        f"history {store} ({rows} rows): {n} sequential requests with distinct end dates "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; one URL repeated p50 {w50:.1f} ms, "
        f"p99 {w99:.1f} ms"
    )
    report.add(
        f"6a. /v1/cityscore/history 10 years ({rows:,} rows), {store}, distinct windows (p50; p99)",
        f"{p50:.1f} ms; {p99:.1f} ms",
        f"repeated URL: {w50:.1f} ms; {w99:.1f} ms",
        "-",
        "< 100 ms",
        f"p50 {verdict(p50 < 100)}; p99 {verdict(p99 < 100)}",
    )


def recompute(api: Server, url: str, cat: Catalogue, report: Report) -> None:
    key = create_key(url, "--admin")
    rows = ingest_rows(cat, cat.metrics, [cat.last], random.Random(time.time_ns()))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = orjson.dumps(rows)
    began = time.perf_counter()
    response = httpx.post(
        api.base + "/v1/ingest/values", content=body, headers=headers, timeout=600
    )
    elapsed = time.perf_counter() - began
    label = f"6b. Ingest one day for all {len(rows):,} metrics + score recompute, PG (s)"
    if response.status_code in (404, 405):
        report.note(
            f"recompute: POST /v1/ingest/values answered {response.status_code}: not available"
        )
        report.add(
            label, f"not available (HTTP {response.status_code})", "-", "-", "none set", "n/a"
        )
        return
    if response.status_code != 200:
        report.note(f"recompute: HTTP {response.status_code}: {response.text[:300]}")
        report.add(label, f"failed (HTTP {response.status_code})", "-", "-", "none set", "n/a")
        return
    report.note(
        f"recompute: {len(rows)} rows for {cat.last} in {elapsed:.2f} s; "
        f"receipt {response.text[:200]}"
    )
    report.add(label, f"{elapsed:.2f} s", "-", "-", "<= 0.5 s", verdict(elapsed <= 0.5))


# --- machine and output --------------------------------------------------------------------


def sh(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine(pg_url: str | None) -> list[str]:
    cpu = "n/a"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = "n/a"
    if pg_url:
        with contextlib.suppress(Exception):
            pg = str(pg_exec(pg_url, "SELECT version()", dbname="postgres")[0][0])
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    load = os.getloadavg()[0]
    return [
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {commit} + working tree",
        f"- CPU: {sh(['nproc'])} cores ({cpu}); load average before the run: {load:.2f}",
        "- Memory (`free -g`):\n\n```\n" + sh(["free", "-g"]) + "\n```\n",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"{sh([DATASETTE, '--version'])}; httpx {httpx.__version__}",
        f"- PostgreSQL: {pg}",
    ]


def write_results(
    report: Report, args: argparse.Namespace, machine_lines: list[str], total: float
) -> str:
    out = [
        "# CityScore API benchmark results",
        "",
        f"Written by `bench/run.py` ({' '.join(sys.argv[1:]) or 'default scale'}): "
        f"{args.metrics} metrics x {args.years} years, load tests {args.duration:g} s each, "
        f"run took {total / 60:.1f} min. See `bench/README.md` for what each line measures.",
        "",
        "## Machine",
        "",
        *machine_lines,
        "",
        "## Results",
        "",
        "| measure | ours | anchor | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        out.append(f"| {r.measure} | {r.ours} | {r.anchor} | {r.ratio} | {r.target} | {r.met} |")
    out += ["", "## Absolute numbers and notes", ""]
    out += [f"- {line}" for line in report.details]
    out += ["", "## Phase times", ""]
    out += [f"- {line}" for line in report.phases]
    return "\n".join(out) + "\n"


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="100 metrics x 3 years")
    parser.add_argument(
        "--reload", action="store_true", help="reload the data even if a marker matches"
    )
    parser.add_argument(
        "--full-rss", action="store_true", help="measure RSS at 10x data (loads it)"
    )
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per load test")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument("--sqlite-workers", type=int, default=2)
    parser.add_argument(
        "--datasette-cap",
        type=float,
        default=30.0,
        help="stop reading Datasette's CSV after this many seconds (rate is kept)",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    parser.add_argument(
        "--port-base", type=int, default=8811, help="first of the four ports the run listens on"
    )
    args = parser.parse_args()
    for i, name in enumerate(PORTS):
        PORTS[name] = args.port_base + i
    if args.quick:
        args.metrics, args.years = 100, 3
    WORK.mkdir(parents=True, exist_ok=True)
    report = Report()
    servers: list[Server] = []
    started = time.perf_counter()
    machine_lines = machine(args.pg_url)
    log("\n".join(machine_lines))

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        with phase(name):
            try:
                return fn()
            finally:
                report.phases.append(f"{name}: {time.perf_counter() - began:.1f} s")

    sqlite_path = WORK / f"cityscore-{args.metrics}x{args.years}.db"
    small_url = (
        args.pg_url.rsplit("/", 1)[0]
        + "/"
        + pg_dbname(args.pg_url)
        + ("_10x" if args.full_rss else "_small")
    )
    small_metrics = args.metrics * 10 if args.full_rss else max(1, args.metrics // 10)
    try:
        timed(
            "load PostgreSQL",
            lambda: load_pg(args.pg_url, args.metrics, args.years, args.reload, report),
        )
        timed(
            "load SQLite",
            lambda: load_sqlite(sqlite_path, args.metrics, args.years, args.reload, report),
        )
        timed(
            "load PostgreSQL (RSS comparison scale)",
            lambda: load_pg(small_url, small_metrics, args.years, args.reload, report, row=False),
        )
        pg_cat = catalogue_pg(args.pg_url)
        sq_cat = catalogue_sqlite(sqlite_path)
        report.note(
            f"data: {len(pg_cat.metrics)} metrics, {pg_cat.rows:,} daily values "
            f"{pg_cat.first}..{pg_cat.last} (PG); {sq_cat.rows:,} (SQLite)"
        )

        def start_all() -> tuple[Server, Server, Server]:
            pg = start_api("api-pg", args.pg_url, PORTS["pg"], args.pg_workers)
            servers.append(pg)
            sq = start_api(
                "api-sqlite", f"sqlite:///{sqlite_path}", PORTS["sqlite"], args.sqlite_workers
            )
            servers.append(sq)
            ds = start_datasette(sqlite_path, PORTS["datasette"])
            servers.append(ds)
            return pg, sq, ds

        pg, sq, ds = timed("start servers", start_all)
        report.note(
            f"servers: cityscore serve --workers {args.pg_workers} (PG), "
            f"--workers {args.sqlite_workers} (SQLite); datasette {ds.base}"
        )
        big = timed(
            "1a. CSV export on PostgreSQL vs COPY",
            lambda: csv_export_pg(pg, args.pg_url, pg_cat, report),
        )
        timed(
            "1b. CSV export on SQLite vs Datasette",
            lambda: csv_export_sqlite(sq, ds, sq_cat, report, args.datasette_cap),
        )
        timed(
            "2. JSON reads vs Datasette",
            lambda: json_reads(
                {"SQLite": (sq, sq_cat), "PostgreSQL": (pg, pg_cat)},
                ds,
                sq_cat,
                report,
                args.duration,
            ),
        )
        timed(
            "3. ingest vs COPY FROM", lambda: ingest(pg, args.pg_url, pg_cat, report, args.duration)
        )
        timed("4. 304 at 64 connections", lambda: not_modified(pg, pg_cat, report, args.duration))
        small_label = "10x" if args.full_rss else "0.1x"
        timed(
            "5. RSS during CSV export",
            lambda: rss_compare(big, small_url, small_label, args.pg_workers, report),
        )
        timed("6a. CityScore history", lambda: history(pg, pg_cat, report, "PostgreSQL"))
        timed("6a. CityScore history (SQLite)", lambda: history(sq, sq_cat, report, "SQLite"))
        timed(
            "6b. recompute after one day's ingest",
            lambda: recompute(pg, args.pg_url, pg_cat, report),
        )
    finally:
        for server in reversed(servers):
            server.stop()
    total = time.perf_counter() - started
    text = write_results(report, args, machine_lines, total)
    args.output.write_text(text)
    log("\n" + text)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
