"""Every DB test runs on SQLite and on a real PostgreSQL.

PostgreSQL is ``TEST_DATABASE_URL`` when set (a fresh database is created on that server for
the run), otherwise a throwaway server started from the ``pgserver`` wheel. It never skips:
if no server can be had, the PostgreSQL tests fail.

Each backend is migrated once with Alembic; each test then runs inside a transaction that
is rolled back, and the app under test is bound to that same connection.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from fastapi.testclient import TestClient
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from alembic import command
from api.main import create_app
from api.settings import Settings
from db import migrate
from db.session import make_engine, session_factory

ROOT = Path(__file__).resolve().parent.parent
# `make mutation` sets HYPOTHESIS_PROFILE=mutation: a property test that a mutant fails is a
# kill as soon as it fails, so shrinking the example (most of the time spent) is skipped.
hypothesis_settings.register_profile(
    "mutation", phases=(Phase.explicit, Phase.reuse, Phase.generate), database=None
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
BACKENDS = ("sqlite", "postgresql")
TABLES = (
    "run_figures",
    "cityscore_runs",
    "metric_revisions",
    "audit_log",
    "cityscore_daily",
    "metric_score_runs",
    "value_revisions",
    "metric_values",
    "ingest_batches",
    "api_keys",
    "metric_targets",
    "metrics",
    "analyses",
    "departments",
    "data_state",
)


def alembic_config(url: str) -> Config:
    """The packaged migrations (db/migrations -> alembic/), as `cityscore db upgrade` uses."""
    return migrate.alembic_config(url)


def _postgres_server_url(tmp: Path) -> tuple[str, Any]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url, None
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp))  # pgserver's platformdirs asks for one
    import pgserver

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")
    uri = server.get_uri()
    return uri.replace("postgresql://", "postgresql+psycopg://", 1), server


@pytest.fixture(scope="session")
def postgresql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped after the run."""
    server_url, server = _postgres_server_url(tmp_path_factory.mktemp("pg"))
    name = f"cityscore_test_{uuid.uuid4().hex[:8]}"
    # Pre-ping: the session-long admin connection may have been closed by the end of the run.
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    if server is None:  # a shared server (TEST_DATABASE_URL): leave it as it was
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    if server is not None:  # a throwaway server goes whole, with its databases
        server.cleanup()


@pytest.fixture(scope="session")
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/test.db"


@pytest.fixture
def scratch_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of its own (not migrated), for tests that commit or migrate."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/scratch.db"
        return
    server = make_url(request.getfixturevalue("postgresql_url"))
    name = f"cityscore_scratch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_migrated: dict[str, Engine] = {}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest) -> Engine:
    """The backend's engine, migrated to head once per run."""
    if backend not in _migrated:
        url = request.getfixturevalue(f"{backend}_url")
        command.upgrade(alembic_config(url), "head")
        _migrated[backend] = make_engine(url)
    return _migrated[backend]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Any]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(rate_limit_enabled=False, city_timezone="America/New_York")


# 02:30 UTC on 2026-05-16 is 22:30 on 2026-05-15 in New York (EDT, UTC-4): the city's date
# is not the UTC date, so a test of "today" also checks whose calendar it is.
FROZEN_NOW = dt.datetime(2026, 5, 16, 2, 30, tzinfo=dt.UTC)


class _FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _FrozenDatetime:
        now = FROZEN_NOW.astimezone(tz) if tz is not None else FROZEN_NOW.replace(tzinfo=None)
        return cls.combine(now.date(), now.timetz())


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings.today() reads a fixed instant: FROZEN_NOW, 2026-05-15 in New York."""
    import api.settings

    clock = types.SimpleNamespace(**{**vars(dt), "datetime": _FrozenDatetime})
    monkeypatch.setattr(api.settings, "dt", clock)


@pytest.fixture
def session(connection: Any) -> Iterator[Session]:
    """A session inside the test's rolled-back transaction."""
    s = session_factory(connection)()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    """Authorization headers of a new admin key, in the test's transaction."""
    from tests._data import admin_headers

    return admin_headers(session)


@pytest.fixture
def client(connection: Any, settings: Settings) -> Iterator[TestClient]:
    """The app over HTTP, bound to the test's connection (sees and rolls back the same data)."""
    app = create_app(settings, bind=connection)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def committing_engine(engine: Engine) -> Iterator[Engine]:
    """For tests that need real commits (concurrency): every table is emptied afterwards."""
    yield engine
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


_outcomes: dict[str, dict[str, int]] = {b: {} for b in BACKENDS}
_browser: dict[str, int] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    if "browser" in report.keywords:
        _browser[report.outcome] = _browser.get(report.outcome, 0) + 1
    for backend in BACKENDS:
        if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid:
            counts = _outcomes[backend]
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show that both stores really ran (a PostgreSQL half that silently vanished is a bug)."""
    where = "TEST_DATABASE_URL" if os.environ.get("TEST_DATABASE_URL") else "throwaway pgserver"
    terminalreporter.section("stores")
    for backend in BACKENDS:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(_outcomes[backend].items())) or "none"
        extra = f" ({where})" if backend == "postgresql" else ""
        terminalreporter.write_line(f"{backend}{extra}: {counts}")
    from tests.live import REPORT

    for what, per_store in sorted(REPORT.items()):
        counts = ", ".join(f"{store} {n}" for store, n in sorted(per_store.items()))
        terminalreporter.write_line(f"{what}: {counts}")
    # The browser suite (tests/web): a missing chromium skips it locally, fails it in CI.
    ran = ", ".join(f"{n} {k}" for k, n in sorted(_browser.items())) or "none"
    terminalreporter.section("browser")
    terminalreporter.write_line(f"browser tests (chromium via Playwright): {ran}")
