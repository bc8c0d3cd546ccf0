"""For operators: readiness, migrations from anywhere and in parallel, which database a
command uses, the CLI's help, and the connection budget. Every store test on both stores."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from api.cli import build_parser, format_keys
from api.main import create_app
from api.settings import Settings
from db import migrate
from db.session import connection_budget, make_engine

CLI = Path(sys.executable).parent / "cityscore"


def cli(cwd: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


# --- /readyz ---------------------------------------------------------------------------------


def test_readyz_is_503_when_the_schema_is_behind_head(client: TestClient, connection: Any) -> None:
    assert client.get("/readyz").status_code == 200
    connection.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "0000_older" in detail and "cityscore db upgrade" in detail
    assert all(head in detail for head in migrate.head_revisions())


def test_readyz_is_503_on_a_store_that_was_never_migrated(scratch_url: str) -> None:
    app = create_app(Settings(database_url=scratch_url, rate_limit_enabled=False))
    with TestClient(app) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "not migrated" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
    app.state.engine.dispose()
    migrate.upgrade(make_engine(scratch_url))
    app = create_app(Settings(database_url=scratch_url, rate_limit_enabled=False))
    with TestClient(app) as c:
        assert c.get("/readyz").json() == {"status": "ready"}
    app.state.engine.dispose()


def test_readyz_is_503_when_the_sqlite_file_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/a-directory.db")
    with TestClient(create_app(settings)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["detail"] == "The data store is unreachable."


# --- migrations ------------------------------------------------------------------------------


def test_concurrent_upgrades_on_a_fresh_database_all_succeed(
    scratch_url: str, tmp_path: Path
) -> None:
    """Replicas starting together: four `cityscore db upgrade` processes at the same moment."""
    env = {**os.environ, "DATABASE_URL": scratch_url}
    procs = [
        subprocess.Popen(
            [str(CLI), "db", "upgrade"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]
    failed = "\n\n".join(f"exit {code}:\n{err}" for code, err in outcomes if code != 0)
    assert not failed, failed  # the whole stderr: pytest's repr of a list elides it
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        assert migrate.schema_problem(conn) is None
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_an_upgrade_commits_no_revision_short_of_head(scratch_url: str) -> None:
    """The whole upgrade is one transaction: a second upgrader waiting on the lock never finds
    the schema part-way (it would then replay a revision the first one is about to run)."""
    engine = make_engine(scratch_url)
    committed: list[list[str]] = []

    @event.listens_for(engine, "commit")
    def _seen(conn: Any) -> None:
        raw = conn.connection.driver_connection
        exists = (
            "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'"
            if engine.dialect.name == "sqlite"
            else "SELECT count(*) FROM pg_tables WHERE tablename = 'alembic_version'"
        )
        if raw.execute(exists).fetchone()[0]:
            rows = raw.execute("SELECT version_num FROM alembic_version").fetchall()
            committed.append(sorted(row[0] for row in rows))

    migrate.upgrade(engine)
    engine.dispose()
    head = sorted(migrate.head_revisions())
    assert committed, "no commit carried the version table"
    assert all(revisions == head for revisions in committed), committed


def test_db_upgrade_works_from_any_directory_and_names_the_database(
    scratch_url: str, tmp_path: Path
) -> None:
    done = cli(tmp_path, "db", "upgrade", url=scratch_url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == f"cityscore: database {migrate.describe(scratch_url)}"
    assert not (tmp_path / "data").exists()
    listed = cli(tmp_path, "keys", "list", url=scratch_url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("ID  NAME")


def test_the_password_is_masked_in_logs() -> None:
    shown = migrate.describe("postgresql+psycopg://app:s3cr3t@db.internal:5432/cityscore")
    assert shown == "postgresql+psycopg://app:***@db.internal:5432/cityscore"


def test_keys_list_without_a_database_creates_nothing(tmp_path: Path) -> None:
    done = cli(tmp_path, "keys", "list")
    assert done.returncode == 1
    reason = done.stderr.splitlines()[-1]
    assert reason.startswith("cityscore: error: no database at ")
    assert "cityscore db upgrade" in reason and str(tmp_path / "data" / "cityscore.db") in reason
    assert not (tmp_path / "data").exists()


def test_commands_refuse_a_store_that_is_not_migrated(scratch_url: str, tmp_path: Path) -> None:
    if scratch_url.startswith("sqlite"):
        make_engine(scratch_url).connect().close()  # an empty file, as another tool might leave
    done = cli(tmp_path, "keys", "list", url=scratch_url)
    assert done.returncode == 1
    assert "not migrated" in done.stderr.splitlines()[-1]


# --- the CLI's surface -----------------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_every_option_has_help_and_shows_its_default() -> None:
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            assert action.help, f"{parser.prog} {action.dest} has no help"
            if action.default not in (None, False, argparse.SUPPRESS):
                shown = f"(default: {action.default})"
                assert shown in " ".join(parser.format_help().split()), action.dest
    serve_help = next(p for p in _parsers(build_parser()) if p.prog.endswith("serve"))
    assert "(default: 8000)" in serve_help.format_help()


def test_version(tmp_path: Path) -> None:
    done = cli(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("cityscore 0.1.0")


def test_keys_table_has_a_header_and_dates() -> None:
    rows = [
        {
            "id": 1,
            "name": "nightly",
            "department": "311",
            "admin": False,
            "created_at": dt.datetime(2026, 5, 1, 4, 5, 6),
            "revoked_at": None,
            "expires_at": dt.datetime(2027, 1, 1, 5, 0),
        }
    ]
    assert format_keys(rows).splitlines() == [
        "ID  NAME     SCOPE           CREATED (UTC)      REVOKED (UTC)  EXPIRES (UTC)",
        "1   nightly  department 311  2026-05-01 04:05Z  -              2027-01-01 05:00Z",
    ]
    assert "no keys yet" in format_keys([])


# --- the connection budget -------------------------------------------------------------------


def test_connection_budget_warns_when_workers_exceed_max_connections(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    assert connection_budget(url, 1, 15, 5) == []
    warnings = connection_budget(url, 1000, 15, 5)
    if backend == "sqlite":
        assert warnings == []
    else:
        (warning,) = warnings
        assert "1000 worker(s) x (DB_POOL_SIZE 15 + DB_MAX_OVERFLOW 5) = 20000" in warning
        assert "max_connections" in warning


def test_connection_budget_counts_each_workers_change_listener(postgresql_url: str) -> None:
    """Each worker also keeps one connection LISTENing for changes (the version cache)."""
    with make_engine(postgresql_url).connect() as conn:
        limit = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
        usable = limit - int(
            conn.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one()
        )
    assert connection_budget(postgresql_url, 1, usable - 1, 0, listeners=1) == []
    (warning,) = connection_budget(postgresql_url, 1, usable, 0, listeners=1)
    assert f"+ 1 listener) = {usable + 1} connections" in warning


def test_default_pool_lets_four_workers_fit_postgresql_defaults() -> None:
    settings = Settings(database_url="postgresql+psycopg://x@127.0.0.1/x")
    options = settings.engine_options()
    assert 4 * (options["pool_size"] + options["max_overflow"] + 1) <= 100 - 3
    assert Settings(database_url="sqlite://").engine_options() == {}


def test_pool_settings_reach_the_engine(postgresql_url: str) -> None:
    settings = Settings(
        database_url=postgresql_url, db_pool_size=3, db_max_overflow=2, db_pool_timeout=1.5
    )
    app = create_app(settings)
    pool: Any = app.state.engine.pool
    assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 2, 1.5)
    app.state.engine.dispose()


def test_serve_says_at_start_why_the_store_is_not_ready(scratch_url: str, tmp_path: Path) -> None:
    from api.cli import _store_warnings

    if scratch_url.startswith("sqlite"):
        (missing,) = _store_warnings(f"sqlite:///{tmp_path}/none/cityscore.db")
        assert missing.startswith("no database at ") and missing.endswith("until then")
        assert not (tmp_path / "none").exists()
    else:
        (down,) = _store_warnings("postgresql+psycopg://nobody@127.0.0.1:1/none")
        assert down.startswith("the store is unreachable (OperationalError)")
    engine = make_engine(scratch_url)
    engine.connect().close()
    (behind,) = _store_warnings(scratch_url)
    assert "not migrated" in behind
    migrate.upgrade(engine)
    engine.dispose()
    assert _store_warnings(scratch_url) == []


def test_a_worker_freezes_its_startup_objects_out_of_the_collector(tmp_path: Path) -> None:
    """Importing the ASGI app moves everything allocated at start-up (modules, the app, the
    models: hundreds of thousands of objects) to the permanent generation, so a full
    collection during a request walks only the request's objects. Without it a 10-year
    history request paid a ~50 ms full collection now and then: its p99."""
    code = "import gc, api.asgi; print(gc.get_freeze_count())"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert int(out.stdout.split()[-1]) > 100_000, out.stdout


def _first_connection(url: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait()
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        results.put("ok")
    except Exception as exc:  # reported to the test, which shows it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_sqlite_file_at_once_all_connect(tmp_path: Path) -> None:
    """SQLite answers `PRAGMA journal_mode=WAL` with "database is locked" at once, without
    waiting out the busy timeout, while another connection is switching a new file to WAL:
    four `db upgrade`s starting together failed that way now and then. 20 rounds of six
    processes failed about one round in five before the pragma was retried."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # quick: the children inherit the imports
    failures = []
    for round_ in range(20):
        url = f"sqlite:///{tmp_path}/race-{round_}.db"
        barrier, results = context.Barrier(6), context.Queue()
        procs = [
            context.Process(target=_first_connection, args=(url, barrier, results))
            for _ in range(6)
        ]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
        failures += [o for o in outcomes if o != "ok"]
    assert not failures, failures


def test_a_bulk_load_into_sqlite_writes_its_pages_once(tmp_path: Path) -> None:
    """In WAL mode every page of a load is written twice (to the WAL, then copied into the
    file at the checkpoint) and reads of the table being indexed look each page up in the
    WAL's index. The bulk engine (``cityscore demo``) uses a rollback journal, which holds only
    the pages that existed before: the 1000 x 10 demo went from 68 s to 50 s here. A normal
    engine switches the file back to WAL."""
    url = f"sqlite:///{tmp_path}/bulk.db"
    normal = make_engine(url)
    with normal.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    normal.dispose()
    bulk = make_engine(url, bulk=True)
    with bulk.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql(
            "INSERT INTO t WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
            "WHERE x < 100000) SELECT x FROM n"
        )
        wal = tmp_path / "bulk.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0
    bulk.dispose()
    again = make_engine(url)
    with again.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 100_000
    again.dispose()


def test_a_bulk_load_stays_in_wal_while_another_connection_has_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    normal = make_engine(url)
    with normal.connect() as held:
        held.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        held.commit()
        held.exec_driver_sql("SELECT * FROM t").all()
        bulk = make_engine(url, bulk=True)
        with bulk.connect() as conn:  # connects: SQLite refused to leave WAL, and that is fine
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        bulk.dispose()
    normal.dispose()
