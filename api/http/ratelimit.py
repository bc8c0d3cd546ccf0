"""Fixed-window rate limits with IETF ``RateLimit-Policy``/``RateLimit`` headers.

Reads are counted per client address, writes per API key. Counters live in memory, or in Redis
when ``REDIS_URL`` is set so that every worker and replica shares them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import APIError, TooManyRequests, api_error_response
from api.http.guards import bearer_token, is_write

log = logging.getLogger("cityscore.ratelimit")

WINDOW_SECONDS = 60


class Counter(Protocol):
    async def hit(self, bucket: str, window: int) -> int: ...


class MemoryCounter:
    """Counts for the current window only: a new window starts an empty table in O(1), and
    the table is capped (past ``max_buckets`` new clients share one overflow bucket)."""

    def __init__(self, max_buckets: int = 200_000) -> None:
        self.max_buckets = max_buckets
        self._window = -1
        self._counts: dict[str, int] = {}

    def hit_now(self, bucket: str, window: int) -> int:
        if window != self._window:
            self._window, self._counts = window, {}
        counts = self._counts
        if bucket not in counts and len(counts) >= self.max_buckets:
            bucket = "overflow"
        count = counts.get(bucket, 0) + 1
        counts[bucket] = count
        return count

    async def hit(self, bucket: str, window: int) -> int:
        return self.hit_now(bucket, window)  # no await inside: atomic on the event loop


class RedisCounter:
    """Counters shared by every worker and host; on a Redis error the process falls back to
    its own counts (logged), so limits weaken but never vanish silently."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=0.5)
        self._fallback = MemoryCounter()
        self._failing = False

    async def hit(self, bucket: str, window: int) -> int:
        key = f"cityscore:rl:{bucket}:{window}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS * 2)
                count, _ = await pipe.execute()
        except Exception as exc:
            if not self._failing:
                log.warning("rate limiter: Redis unavailable (%s); counting per process", exc)
            self._failing = True
            return self._fallback.hit_now(bucket, window)
        if self._failing:
            log.warning("rate limiter: Redis is back")
            self._failing = False
        return int(count)


def _client_bucket(scope: Scope) -> tuple[str, bool]:
    """Writes count per API key (its token, however the header is spelled), reads and
    unauthenticated writes per client address."""
    write = is_write(scope)
    if write:
        try:
            token = bearer_token(scope.get("headers", []))
        except APIError:
            token = ""
        if token:
            return "w:" + hashlib.sha256(token.encode()).hexdigest()[:24], True
    client = scope.get("client") or ("unknown", 0)
    return f"{'w' if write else 'r'}:{client[0]}", write


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
        bucket, write = _client_bucket(scope)
        quota = self.writes if write else self.reads
        policy = "writes" if write else "reads"
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset = WINDOW_SECONDS - int(now % WINDOW_SECONDS)
        count = await self.counter.hit(bucket, window)
        remaining = max(0, quota - count)
        extra: list[tuple[bytes, bytes]] = [
            (b"ratelimit-policy", f'"{policy}";q={quota};w={WINDOW_SECONDS}'.encode()),
            (b"ratelimit", f'"{policy}";r={remaining};t={reset}'.encode()),
        ]
        if count > quota:
            detail = f"Rate limit of {quota} {policy} per minute exceeded; retry in {reset} s."
            headers = {k.decode(): v.decode() for k, v in extra}
            error = TooManyRequests(detail, headers={"Retry-After": str(reset), **headers})
            await api_error_response(error)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def make_counter(redis_url: str) -> Any:
    return RedisCounter(redis_url) if redis_url else MemoryCounter()
