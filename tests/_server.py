"""A real server in a subprocess, on a free port of this project's test range (8300-8399)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

PORTS = range(8300, 8400)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8300-8399")


@contextmanager
def running_server(
    command: Sequence[str], env: dict[str, str], cwd: Path, port: int, timeout: float = 60
) -> Iterator[str]:
    """Start ``command`` (which must listen on ``port``), wait until /readyz answers 200,
    yield the base URL, then stop it."""
    log = cwd / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(command), cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout}s: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_log(cwd: Path, port: int) -> str:
    return (cwd / f"server-{port}.log").read_text()
