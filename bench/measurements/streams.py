"""Reading a streamed body to the end, counting rows without keeping it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit


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


def describe_stream(label: str, s: Stream) -> str:
    state = "complete" if s.complete else "stopped early (rate over the part read)"
    return (
        f"{label}: HTTP {s.status}, {s.rows:,} rows, {s.bytes / 1e6:,.1f} MB in {s.seconds:.2f} s "
        f"= {s.rows_per_s:,.0f} rows/s, {state}"
    )
