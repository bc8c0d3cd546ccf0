"""``warm_routes``: every route is worked out before the first request, not during it."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from api.http.warmup import warm_routes
from api.main import create_app
from api.settings import Settings

# One route of each kind of router: API, CityScore, scorecards, values, the web pages.
PATHS = [
    "/healthz",
    "/v1/metrics",
    "/v1/cityscore/history?start=2026-01-01&end=2026-01-31",
    "/v1/scorecards",
    "/v1/values?limit=1",
    "/metrics",
]


def _no_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, working out a route's handling (what FastAPI does lazily, on the first
    request through a router) fails the request."""

    def built(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a route was worked out during a request")

    monkeypatch.setattr(fastapi.routing._IncludedRouter, "_build_effective_context", built)


def test_after_the_warm_up_no_request_works_out_a_route(
    connection: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings, bind=connection)
    assert warm_routes(app) == 404  # the walk matched nothing, so it visited every router
    _no_building(monkeypatch)
    with TestClient(app) as client:
        for path in PATHS:
            assert client.get(path).status_code == 200, path


def test_without_it_the_first_request_works_out_its_routes(
    connection: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: FastAPI still builds routes lazily, so the warm-up is not moot (if a
    # release stops doing so, this fails and warm_routes can go).
    app = create_app(settings, bind=connection)
    _no_building(monkeypatch)
    with TestClient(app) as client, pytest.raises(AssertionError, match="worked out"):
        client.get("/healthz")


def test_a_failed_walk_is_logged_and_the_app_still_serves(
    connection: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, bind=connection)

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    router = app.router
    app.router = broken  # type: ignore[assignment]
    assert warm_routes(app) is None
    assert "route warm-up failed" in caplog.text
    app.router = router
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
