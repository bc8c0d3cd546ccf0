"""A real server for the real clients: uvicorn on a free port (8200-8299), on both stores.

The app is bound to one connection inside a transaction that is rolled back at the end of
the module, like every other DB test; the demo catalogue (Boston's 23 metrics, a year of
values) is loaded into it first. Clients run one request at a time, so sharing the
connection between the server's threads is safe.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlmodel import Session

from alembic import command
from api.demo import service as demo
from api.main import create_app
from api.settings import Settings
from db.session import make_engine, session_factory
from tests.conftest import BACKENDS, _migrated, alembic_config

PORTS = range(8200, 8300)


@dataclass
class Live:
    backend: str
    url: str
    app: FastAPI
    session: Session
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


@pytest.fixture(scope="module", params=BACKENDS)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    backend = str(request.param)
    if backend not in _migrated:
        url = request.getfixturevalue(f"{backend}_url")
        command.upgrade(alembic_config(url), "head")
        _migrated[backend] = make_engine(url)
    conn: Any = _migrated[backend].connect()
    trans = conn.begin()
    settings = Settings(rate_limit_enabled=False, city_timezone="America/New_York")
    session = session_factory(conn)()
    try:
        demo.load(session, years=1, metrics=23, today=settings.today())
        session.flush()
        app = create_app(settings, bind=conn)
        server, thread, port = serve(app)
        try:
            yield Live(backend, f"http://127.0.0.1:{port}", app, session, settings)
        finally:
            server.should_exit = True
            thread.join(10)
    finally:
        session.close()
        trans.rollback()
        conn.close()
