"""Fixed-window rate limits with IETF ``RateLimit-Policy``/``RateLimit`` headers.

Reads are counted per client address, writes per API key. Counters live in memory, or in Redis
when ``REDIS_URL`` is set so that every worker and replica shares them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WINDOW_SECONDS = 60
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Counter(Protocol):
    def hit(self, bucket: str, window: int) -> int: ...


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str, window: int) -> int:
        with self._lock:
            if len(self._counts) > 100_000:  # drop finished windows
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= window}
            count = self._counts.get((bucket, window), 0) + 1
            self._counts[(bucket, window)] = count
            return count


class RedisCounter:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1.0)

    def hit(self, bucket: str, window: int) -> int:
        key = f"cityscore:rl:{bucket}:{window}"
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2)
        count, _ = pipe.execute()
        return int(count)


def _client_bucket(scope: Scope, headers: dict[bytes, bytes]) -> tuple[str, bool]:
    method = scope.get("method", "GET")
    if method in WRITE_METHODS:
        auth = headers.get(b"authorization", b"")
        if auth:
            return "w:" + hashlib.sha256(auth).hexdigest()[:24], True
    client = scope.get("client") or ("unknown", 0)
    return f"{'w' if method in WRITE_METHODS else 'r'}:{client[0]}", method in WRITE_METHODS


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        reads_per_minute: int,
        writes_per_minute: int,
        counter: Counter,
        exempt: tuple[str, ...] = ("/healthz", "/readyz"),
    ):
        self.app = app
        self.reads = reads_per_minute
        self.writes = writes_per_minute
        self.counter = counter
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        bucket, write = _client_bucket(scope, headers)
        quota = self.writes if write else self.reads
        policy = "writes" if write else "reads"
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset = WINDOW_SECONDS - int(now % WINDOW_SECONDS)
        try:
            count = self.counter.hit(bucket, window)
        except Exception:  # a limiter outage must not take the API down with it
            count = 0
        remaining = max(0, quota - count)
        extra: list[tuple[bytes, bytes]] = [
            (b"ratelimit-policy", f'"{policy}";q={quota};w={WINDOW_SECONDS}'.encode()),
            (b"ratelimit", f'"{policy}";r={remaining};t={reset}'.encode()),
        ]
        if count > quota:
            body = orjson.dumps(
                {
                    "type": "https://cityscore.dev/problems/rate-limited",
                    "title": "Too Many Requests",
                    "status": 429,
                    "detail": f"Rate limit of {quota} {policy} per minute exceeded; "
                    f"retry in {reset} s.",
                    "message": f"Rate limit of {quota} {policy} per minute exceeded; "
                    f"retry in {reset} s.",
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(reset).encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def make_counter(redis_url: str) -> Any:
    return RedisCounter(redis_url) if redis_url else MemoryCounter()
