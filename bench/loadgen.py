"""A small HTTP load generator: N keep-alive connections for T seconds, in pure asyncio.

Each of ``concurrency`` workers owns one keep-alive HTTP/1.1 connection (asyncio streams)
and loops ``GET url_of(i)``, reading the whole body (Content-Length or chunked). The result
carries requests per second, latency percentiles and the status counts.

Why not ``httpx.AsyncClient``: its connection pool costs far more CPU per request than the
server under test, and collapses as connections grow (on the 2-core bench machine: /healthz
at 64 connections went from ~1,100 req/s with this client to ~50 with one shared
AsyncClient). The client still runs on the same cores as the server, so every figure is a
floor for what the server does with a dedicated client. httpx is used for the one-off
requests (checks, streaming, ingest) where its cost does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    label: str
    concurrency: int
    seconds: float
    requests: int
    bytes: int
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    extra: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in seconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.errors == 0

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.label}: {self.rps:,.0f} req/s over {self.seconds:.1f} s "
            f"(c={self.concurrency}, n={self.requests}, p50 {self.percentile(50) * 1000:.1f} ms, "
            f"p99 {self.percentile(99) * 1000:.1f} ms, statuses {{{codes}}}, errors {self.errors})"
            + (f"; {self.extra}" if self.extra else "")
        )


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def get(self, target: str, head: bytes) -> tuple[int, int]:
        """One GET on the kept-alive connection: (status, body bytes)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\n" + head)
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = -1, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        size = 0
        if status in (204, 304) or 100 <= status < 200:
            pass
        elif chunked:
            while True:
                chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(chunk + 2)
                size += chunk
                if chunk == 0:
                    break
        elif length >= 0:
            size = len(await reader.readexactly(length))
        else:  # body until close
            size = len(await reader.read())
            close = True
        if close:
            await self.close()
        return status, size


async def _run(
    label: str,
    url_of: Callable[[int], str],
    concurrency: int,
    duration: float,
    headers: dict[str, str] | None,
    warmup: float,
) -> LoadResult:
    result = LoadResult(label, concurrency, 0.0, 0, 0)
    first = urlsplit(url_of(0))
    host, port = first.hostname or "127.0.0.1", first.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = f"Host: {first.netloc}\r\nUser-Agent: cityscore-bench\r\n{extra}\r\n".encode()
    counter = 0
    measuring = False
    stop_at = time.perf_counter() + warmup + duration

    async def worker() -> None:
        nonlocal counter
        conn = _Connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                counter += 1
                parts = urlsplit(url_of(counter))
                target = parts.path + ("?" + parts.query if parts.query else "")
                began = time.perf_counter()
                try:
                    status, size = await asyncio.wait_for(conn.get(target, head), 60)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    await conn.close()
                    if measuring:
                        result.errors += 1
                    continue
                if measuring:
                    result.latencies.append(time.perf_counter() - began)
                    result.requests += 1
                    result.bytes += size
                    result.statuses[status] += 1
                    if status >= 400:
                        result.errors += 1
        finally:
            await conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    measuring = True
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - began
    return result


def run_load(
    label: str,
    url_of: Callable[[int], str],
    *,
    concurrency: int,
    duration: float,
    headers: dict[str, str] | None = None,
    warmup: float = 1.0,
) -> LoadResult:
    """Run the load test and return its result (blocking)."""
    return asyncio.run(_run(label, url_of, concurrency, duration, headers, warmup))
