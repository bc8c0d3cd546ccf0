"""Rate limits: per-address reads, per-key writes, IETF headers, 429 problem+json, and a
count shared through Redis between app instances (when TEST_REDIS_URL is set)."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient

from api.http.ratelimit import WINDOW_SECONDS
from api.main import create_app
from api.settings import Settings


def fresh_window(margin: float = 5.0) -> None:
    """Wait for a new fixed window when the current one is about to end (no flaky resets)."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < margin:
        time.sleep(left + 0.05)


def app_client(connection: Any, **overrides: Any) -> TestClient:
    settings = Settings(**{"rate_limit_enabled": True, **overrides})
    return TestClient(create_app(settings, bind=connection))


@pytest.fixture
def limited(connection: Any) -> Iterator[TestClient]:
    with app_client(connection, rate_limit_reads_per_minute=3, rate_limit_writes_per_minute=2) as c:
        yield c


def test_reads_over_the_quota_get_429_with_retry_after(limited: TestClient) -> None:
    fresh_window()
    for remaining in (2, 1, 0):
        r = limited.get("/v1/departments")
        assert r.status_code == 200, r.text
        assert r.headers["ratelimit-policy"] == '"reads";q=3;w=60'
        assert r.headers["ratelimit"].startswith(f'"reads";r={remaining};t=')
    r = limited.get("/v1/metrics")
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 429 and body["message"] == body["detail"]
    retry = int(r.headers["retry-after"])
    assert 0 < retry <= WINDOW_SECONDS
    assert r.headers["ratelimit"] == f'"reads";r=0;t={retry}'
    assert r.headers["ratelimit-policy"] == '"reads";q=3;w=60'
    assert limited.get("/healthz").status_code == 200  # probes are never limited


def test_writes_are_counted_per_key(limited: TestClient) -> None:
    fresh_window()

    def write(token: str) -> Any:
        return limited.post(
            "/v1/ingest/values", json=[], headers={"Authorization": f"Bearer {token}"}
        )

    for _ in range(2):
        r = write("key-one")
        assert r.status_code == 401  # counted before the key is even checked
        assert r.headers["ratelimit-policy"] == '"writes";q=2;w=60'
    r = write("key-one")
    assert r.status_code == 429 and "retry-after" in r.headers
    assert write("key-two").status_code == 401  # another key has its own quota
    assert limited.get("/v1/departments").status_code == 200  # reads are a separate quota


def test_disabled_limits_send_no_headers(connection: Any) -> None:
    with app_client(connection, rate_limit_enabled=False, rate_limit_reads_per_minute=1) as c:
        for _ in range(3):
            r = c.get("/v1/departments")
            assert r.status_code == 200
            assert "ratelimit" not in r.headers


def test_redis_counter_is_shared_between_instances(connection: Any) -> None:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    redis = sync_redis.Redis.from_url(url, socket_timeout=2)
    try:
        redis.ping()
    except sync_redis.RedisError as exc:
        message = f"Redis at {url} is unreachable ({exc}): shared rate limits NOT tested"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    token = f"rl-test-{uuid.uuid4().hex}"  # a bucket no other run shares
    auth = f"Bearer {token}"
    bucket = "w:" + hashlib.sha256(token.encode()).hexdigest()[:24]
    fresh_window()
    settings: dict[str, Any] = {"redis_url": url, "rate_limit_writes_per_minute": 3}
    try:
        with app_client(connection, **settings) as one, app_client(connection, **settings) as two:

            def write(c: TestClient) -> int:
                r = c.post("/v1/ingest/values", json=[], headers={"Authorization": auth})
                return r.status_code

            assert [write(one), write(two), write(one)] == [401, 401, 401]
            assert write(two) == 429
            assert write(one) == 429
    finally:
        for key in redis.scan_iter(f"cityscore:rl:{bucket}:*"):
            redis.delete(key)
