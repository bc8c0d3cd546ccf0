"""A real server in a subprocess (uvicorn, several workers if asked), for tests that need
whole processes: multiprocess metrics, the logs of a whole run. Only 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


PORTS = range(8500, 8600)  # this project's share of the machine; the OS picks if all are busy


def free_port() -> int:
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def live_server(
    tmp: Path, env: Mapping[str, str], *, workers: int = 1, command: str = "uvicorn"
) -> Iterator[Live]:
    """Serve ``api.asgi:app`` on a free 127.0.0.1 port; stderr and stdout go to one log file."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    if command == "cityscore":
        argv = [str(BIN / "cityscore"), "serve", "--port", str(port), "--workers", str(workers)]
    else:
        argv = [str(BIN / "uvicorn"), "api.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(workers), "--no-access-log"]
    full_env = {**os.environ, "RATE_LIMIT_ENABLED": "false", **env}
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + log.read_text())
            time.sleep(0.2)
        yield Live(url, log, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
