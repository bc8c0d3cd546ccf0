"""The processes a benchmark run drives: paths, the CLI, servers, /proc and PostgreSQL.

``Server`` starts a child in its own session (``cityscore serve`` or Datasette) and stops its
process group; ``descendants``, ``status_kb`` and ``cpu_ticks`` read a process tree from /proc
(psutil is not a dependency); ``pg_exec`` runs one statement.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

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


def create_key(url: str, *args: str) -> str:
    out = run_cli([CITYSCORE, "keys", "create", *args, "--name", "bench"], server_env(url))
    return out.strip().splitlines()[-1]
