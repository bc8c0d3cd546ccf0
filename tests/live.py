"""Real servers for tests that need real sockets: uvicorn subprocesses on demo data.

``LiveServer`` runs ``cityscore serve`` on a free 127.0.0.1 port against its own database
(a fresh PostgreSQL database on the test server, or a SQLite file), loaded with
``cityscore demo`` and given a 311 department key and an admin key through the CLI, so
everything a stranger would run is what runs here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
# Counts the fuzz and fault runs report in the pytest summary: {what: {store: count}}.
REPORT: dict[str, dict[str, int]] = {}
CLI = str(BIN / "cityscore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(database_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``cityscore ARGS`` against ``database_url``; its stdout (raises on failure)."""
    run_env = {**os.environ, "DATABASE_URL": database_url, **(env or {})}
    done = subprocess.run(
        [CLI, *args], env=run_env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cityscore {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def new_database(backend: str, server_url: str, tmp: Path) -> str:
    """A fresh, empty database URL for ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'live-{uuid.uuid4().hex[:8]}.db'}"
    name = f"cityscore_live_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def load_demo(database_url: str, *, metrics: int = 23, years: int = 2) -> dict[str, str]:
    """Migrate, load the demo, and create keys; returns {"dept": token, "admin": token}."""
    cli(database_url, "db", "upgrade")
    cli(database_url, "demo", "--metrics", str(metrics), "--years", str(years))
    dept = cli(database_url, "keys", "create", "--department", "311", "--name", "live")
    admin = cli(database_url, "keys", "create", "--admin", "--name", "live-admin")
    return {"dept": dept.strip().splitlines()[-1], "admin": admin.strip().splitlines()[-1]}


@dataclass
class LiveServer:
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> LiveServer:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "RATE_LIMIT_ENABLED": "false",
            **self.env,
        }
        args = [CLI, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not come up")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", 10)
        return httpx.get(self.url + path, **kwargs)


def running(server: LiveServer) -> Iterator[LiveServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
