"""A real server for the real clients: uvicorn on a free port (8200-8299), on both stores.

Clients such as frictionless open several requests at once, so the server gets a database of
its own with a real connection pool (a fresh SQLite file; a fresh PostgreSQL database on the
test server, dropped afterwards), migrated with Alembic and loaded with the demo catalogue
(Boston's 23 metrics, a year of values), committed, once per module and store.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from alembic import command
from api.demo import service as demo
from api.main import create_app
from api.settings import Settings
from db.session import make_engine, session_factory
from tests.conftest import BACKENDS, alembic_config

PORTS = range(8200, 8300)


@dataclass
class Live:
    backend: str
    url: str
    app: FastAPI
    engine: Engine
    settings: Settings


def free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8200-8299")


def serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, int]:
    for _ in range(5):
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if server.started:
            return server, thread, port
        server.should_exit = True
        thread.join(5)
    raise RuntimeError("uvicorn did not start")


def _database(backend: str, request: pytest.FixtureRequest, tmp: Path) -> tuple[str, Any]:
    """A fresh database of its own for the server (it commits; dropped afterwards)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp}/live.db", None
    test_url = make_url(request.getfixturevalue("postgresql_url"))
    name = f"{test_url.database}_live"
    admin = create_engine(test_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return test_url.set(database=name).render_as_string(hide_password=False), (admin, name)


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    backend = str(request.param)
    url, cleanup = _database(backend, request, tmp_path_factory.mktemp("live"))
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    settings = Settings(
        database_url=url, rate_limit_enabled=False, city_timezone="America/New_York"
    )
    try:
        with session_factory(engine)() as session:
            demo.load(session, years=1, metrics=23, today=settings.today())
            session.commit()
        app = create_app(settings, bind=engine)
        server, thread, port = serve(app)
        try:
            yield Live(backend, f"http://127.0.0.1:{port}", app, engine, settings)
        finally:
            server.should_exit = True
            thread.join(10)
    finally:
        engine.dispose()
        if cleanup is not None:
            admin, name = cleanup
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
