"""Disconnects, stalled readers and slow senders against a real server (issue 9 items 1, 3, 4).

Each case first does what a hostile or broken client does, then checks that the server still
answers everyone else promptly, with no 500 and no store connection left behind.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.live import LiveServer

ROUNDS = 20


def raw_socket(server: LiveServer, rcvbuf: int = 4096) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", server.port))
    return s


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_responsive(server: LiveServer, within: float = 5.0) -> None:
    """/healthz and a store-backed read both answer 200 within ``within`` seconds."""
    for path in ("/healthz", "/v1/metrics?limit=5"):
        started = time.monotonic()
        r = server.get(path, timeout=within)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert time.monotonic() - started < within, path


def copy_backends_waiting(server: LiveServer) -> int:
    """PostgreSQL backends of this server's database still writing a result to a client."""
    url = make_url(server.database_url)
    if url.get_backend_name() != "postgresql":
        return 0
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                "AND wait_event = 'ClientWrite'"
            ),
            {"db": url.database},
        ).scalar_one()
    engine.dispose()
    return int(n)


@contextmanager
def stalled_readers(server: LiveServer, n: int, path: str) -> Iterator[list[socket.socket]]:
    sockets = []
    try:
        for _ in range(n):
            s = raw_socket(server, rcvbuf=1024)
            s.sendall(request_bytes("GET", path))
            sockets.append(s)
        yield sockets
    finally:
        for s in sockets:
            s.close()


def test_a_cancelled_csv_download_never_hangs_the_worker(live: LiveServer) -> None:
    """Item 1: on PostgreSQL one abandoned COPY download used to hang the worker for good."""
    for _ in range(ROUNDS):
        s = raw_socket(live)
        s.sendall(request_bytes("GET", "/v1/values.csv"))
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        s.close()
        assert_responsive(live, within=3)
    deadline = time.monotonic() + 10
    while copy_backends_waiting(live) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert copy_backends_waiting(live) == 0


def test_stalled_csv_readers_hold_no_store_connection(live: LiveServer) -> None:
    """Item 4: 55 readers that never read exhausted the pool and everyone else got 500s."""
    with stalled_readers(live, 55, "/v1/values.csv"):
        time.sleep(1)
        for _ in range(5):
            assert_responsive(live)


def test_full_download_still_complete_after_abuse(live: LiveServer) -> None:
    r = live.get("/v1/values.csv", timeout=60)
    assert r.status_code == 200
    lines = r.content.split(b"\r\n")
    assert lines[0].startswith(b"metric,") and lines[-1] == b""
    assert len(lines) > 40 * 365 * 3


def test_slow_body_senders_are_cut_off_and_hold_nothing(live: LiveServer) -> None:
    """Item 4: POSTs that send 1 byte of a declared 1,000 held pooled connections."""
    dept = live.keys["dept"]  # type: ignore[attr-defined]
    headers = {
        "Authorization": f"Bearer {dept}",
        "Content-Type": "application/json",
        "Content-Length": "1000",
    }
    sockets = []
    for _ in range(20):
        s = raw_socket(live)
        s.sendall(request_bytes("POST", "/v1/ingest/values", headers) + b"[")
        sockets.append(s)
    try:
        assert_responsive(live)
        for s in sockets:  # cut off after BODY_TIMEOUT_S (2 s) with a 408
            assert s.recv(4096).startswith(b"HTTP/1.1 408"), "slow body not cut off"
    finally:
        for s in sockets:
            s.close()
    assert_responsive(live)


def test_writes_check_the_key_before_reading_the_body(live: LiveServer) -> None:
    """Item 3: an unauthenticated PUT with a 300 MB body was read whole before the 401."""
    headers = {"Content-Type": "application/json", "Content-Length": str(300 * 1024 * 1024)}
    for auth in ({}, {"Authorization": "Bearer not-a-key"}):
        s = raw_socket(live)
        s.sendall(request_bytes("PUT", "/v1/analyses/x", {**headers, **auth}) + b"{")
        answer = s.recv(4096)
        s.close()
        assert answer.startswith((b"HTTP/1.1 401", b"HTTP/1.1 413")), answer[:100]
    admin = live.keys["admin"]  # type: ignore[attr-defined]
    r = httpx.put(
        live.url + "/v1/analyses/x",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "auth", ["bEaReR   {key}", "Bearer {key}  ", "bearer {key}"], ids=["case", "space", "lower"]
)
def test_one_write_bucket_per_key_however_spelled(live: LiveServer, auth: str) -> None:
    """Item 9: the bucket was the raw header, so re-spelling it gave a fresh quota."""
    from api.http.ratelimit import _client_bucket

    key = live.keys["dept"]  # type: ignore[attr-defined]
    scopes = [
        {
            "method": "POST",
            "path": "/v1/ingest/values",
            "headers": [(b"authorization", h.encode())],
            "client": ("1.2.3.4", 1),
        }
        for h in (f"Bearer {key}", auth.format(key=key))
    ]
    assert _client_bucket(scopes[0]) == _client_bucket(scopes[1])


def test_two_authorization_headers_are_refused(live: LiveServer) -> None:
    key = live.keys["dept"]  # type: ignore[attr-defined]
    s = raw_socket(live)
    s.sendall(
        request_bytes("POST", "/v1/ingest/values?dry_run=true", {"Content-Length": "2"}).replace(
            b"\r\n\r\n",
            f"\r\nAuthorization: Bearer {key}\r\nAuthorization: Bearer x\r\n\r\n".encode(),
        )
        + b"[]"
    )
    assert s.recv(4096).startswith(b"HTTP/1.1 400")
    s.close()


def test_forwarded_for_is_believed_only_from_configured_proxies(
    live: LiveServer, tmp_path: Path
) -> None:
    """Item 8: with --forwarded-allow-ips='*' any client picked its rate-limit bucket."""
    server = LiveServer(
        live.database_url,
        env={
            "RATE_LIMIT_ENABLED": "true",
            "RATE_LIMIT_READS_PER_MINUTE": "3",
            "FORWARDED_ALLOW_IPS": "10.9.9.9",
        },
        log_path=tmp_path / "server.log",
    ).start()
    try:
        codes = [
            server.get("/v1/departments", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(5)
        ]
    finally:
        server.stop()
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
