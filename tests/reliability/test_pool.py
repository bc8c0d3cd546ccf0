"""An exhausted connection pool is a prompt 503 with Retry-After, never a 30 s wait and a 500."""

from __future__ import annotations

import time

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
