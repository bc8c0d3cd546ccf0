"""A real server per store, on demo data, for the tests that need real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, drop_database, load_demo, new_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with a small pool and short timeouts, so exhaustion shows in seconds."""
    backend = str(request.param)
    server_url = request.getfixturevalue("postgresql_url") if backend == "postgresql" else ""
    tmp: Path = tmp_path_factory.mktemp(f"live-{backend}")
    url = new_database(backend, server_url, tmp)
    keys = load_demo(url, metrics=40, years=4)
    server = LiveServer(
        url,
        env={
            "DB_POOL_SIZE": "4",
            "DB_MAX_OVERFLOW": "0",
            "DB_POOL_TIMEOUT": "2",
            "BODY_TIMEOUT_S": "2",
            "SEND_TIMEOUT_S": "3",
        },
        log_path=tmp / "server.log",
    )
    server.keys = keys  # type: ignore[attr-defined]
    server.backend = backend  # type: ignore[attr-defined]
    server.start()
    try:
        yield server
    finally:
        server.stop()
        drop_database(url)
