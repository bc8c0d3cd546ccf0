"""An exhausted connection pool is a prompt 503 with Retry-After, never a 30 s wait and a 500."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import Settings


def test_pool_exhausted_is_503_with_retry_after(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        rate_limit_enabled=False,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=0.3,
    )
    app = create_app(settings)
    held = app.state.engine.connect()  # the only connection
    try:
        with TestClient(app) as client:
            started = time.monotonic()
            r = client.get("/v1/departments")
            assert time.monotonic() - started < 5
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"].isdigit()
            assert r.headers["content-type"] == "application/problem+json"
        held.close()
        with TestClient(app) as client:
            assert client.get("/v1/departments").status_code == 200
    finally:
        held.close()
        app.state.engine.dispose()


def test_failed_authentications_are_limited_per_address(connection: object) -> None:
    """Issue 9 item 9: random invalid keys each got a fresh bucket and were never limited."""
    settings = Settings(rate_limit_enabled=False, failed_auth_per_minute=3)
    with TestClient(create_app(settings, bind=connection)) as client:
        codes = [
            client.post(
                "/v1/ingest/values", json=[], headers={"Authorization": f"Bearer nope-{n}"}
            ).status_code
            for n in range(5)
        ]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]


@pytest.mark.parametrize("path", ["/v1/ingest/batches", "/v1/audit"])
def test_failed_authentications_on_reads_are_limited_too(connection: object, path: str) -> None:
    """The keyed GETs (receipts, the audit log) counted no failures: 33 bad keys, 33 401s."""
    settings = Settings(rate_limit_enabled=False, failed_auth_per_minute=3)
    with TestClient(create_app(settings, bind=connection)) as client:
        codes = [
            client.get(path, headers={"Authorization": f"Bearer nope-{n}"}).status_code
            for n in range(5)
        ]
        last = client.get(path, headers={"Authorization": "Bearer nope"})
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429], codes
    assert last.headers["retry-after"] == "60"
    assert last.headers["content-type"] == "application/problem+json"


def test_redis_outage_falls_back_to_counting_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9 item 14: a Redis error disabled limiting silently."""
    import asyncio
    import logging

    from api.http.ratelimit import RedisCounter

    counter = RedisCounter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    caplog.set_level(logging.WARNING, logger="cityscore.ratelimit")

    async def three() -> list[int]:
        return [await counter.hit("r:1.2.3.4", 7) for _ in range(3)]

    assert asyncio.run(three()) == [1, 2, 3]
    assert "Redis unavailable" in caplog.text


def test_memory_counter_starts_each_window_empty_and_is_capped() -> None:
    from api.http.ratelimit import MemoryCounter

    counter = MemoryCounter(max_buckets=2)
    assert [counter.hit_now("a", 1), counter.hit_now("a", 1), counter.hit_now("b", 1)] == [1, 2, 1]
    assert counter.hit_now("c", 1) == 1 and counter.hit_now("d", 1) == 2  # the shared overflow
    assert counter.hit_now("a", 2) == 1  # a new window: O(1), nothing rebuilt
