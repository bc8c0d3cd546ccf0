"""The versions behind ETags from each worker's memory (``api/changes/cache.py``).

Two apps on one PostgreSQL database stand for two workers. A 304 answered from memory runs no
SQL at all; a write through the other worker reaches this one through NOTIFY; a write through
this worker is seen at once; a lost listening connection turns the cache off until it is
back. On a SQLite file, every read asks the file whether anything was committed since the
last one, so a write through the other worker is seen by the next request. For an app bound
to one test connection, and for an in-memory SQLite database, the cache is off.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from api.changes.cache import VersionCache
from api.main import create_app
from api.settings import Settings
from db.notify import DataVersion
from db.session import make_engine, session_factory
from tests._data import admin_headers, put_department, put_metric

URL = "/v1/metrics/m1"


def test_a_load_that_raced_a_change_is_not_kept() -> None:
    cache = VersionCache()
    cache.set_enabled(True)
    cache.renew(60)
    assert cache.get("k", lambda: 1) == 1
    assert cache.get("k", lambda: 2) == 1  # held

    def racing() -> int:
        cache.invalidate()  # a notification arrives while the store is being read
        return 3

    cache.invalidate()
    assert cache.get("k", racing) == 3
    assert cache.get("k", lambda: 4) == 4  # the racing value was not kept
    cache.set_enabled(False)
    assert cache.get("k", lambda: 5) == 5 and cache.get("k", lambda: 6) == 6


def test_a_reader_that_began_before_a_change_keeps_nothing() -> None:
    """The generation a GET's session began at counts, not the one when its read ended: under
    a snapshot that predates a change, the store still answers the old version."""
    cache = VersionCache()
    cache.set_enabled(True)
    cache.renew(60)
    began = cache.generation
    cache.invalidate()  # a change is notified after the session began, before it reads
    assert cache.get("k", lambda: "old", since=began) == "old"
    assert cache.get("k", lambda: "new") == "new"  # the old answer was not kept


def test_a_reader_that_began_before_a_change_is_not_given_a_later_readers_value() -> None:
    """A SQLite read keeps the snapshot of its first statement: a reader whose session began
    before a change must not take the version another reader cached after it, or its old
    body would go out (and be cached) under the new ETag."""
    cache = VersionCache()
    cache.set_enabled(True)
    cache.renew(60)
    began = cache.generation
    cache.invalidate()  # a change, seen by a later reader ...
    assert cache.get("k", lambda: "new") == "new"  # ... which caches what it read
    assert cache.get("k", lambda: "old", since=began) == "old"  # read in its own snapshot
    assert cache.get("k", lambda: "other") == "new"  # the later value is still held


def test_the_cache_falls_off_when_the_listener_stops_proving_alive() -> None:
    """A listening connection hung behind a proxy raises nothing and hears nothing: without
    a renewed lease the cache stops answering by itself."""
    cache = VersionCache()
    cache.set_enabled(True)
    cache.renew(0.05)
    assert cache.get("k", lambda: 1) == 1
    assert cache.get("k", lambda: 2) == 1
    time.sleep(0.1)
    assert cache.get("k", lambda: 3) == 3  # lease over: read from the store
    cache.renew(60)
    assert cache.get("k", lambda: 4) == 4 and cache.get("k", lambda: 5) == 4


def test_the_cache_is_off_for_a_test_connection(client: TestClient) -> None:
    assert client.app.state.versions.enabled is False  # type: ignore[attr-defined]


def test_the_cache_is_off_for_an_in_memory_sqlite_database(settings: Settings) -> None:
    app = create_app(settings, bind=make_engine("sqlite://"))
    assert app.state.versions.enabled is False
    assert not hasattr(app.state, "data_version")


def test_a_sqlite_file_says_when_another_connection_committed(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    missing = DataVersion(str(path))
    assert missing.changed() and missing.changed()  # no file: always "changed" ...
    assert not path.exists()  # ... and none created
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    probe = DataVersion(str(path))
    assert probe.changed()  # the first question: nothing known yet
    assert not probe.changed()
    writer.execute("INSERT INTO t VALUES (1)")
    assert probe.changed() and not probe.changed()
    writer.execute("BEGIN")
    writer.execute("INSERT INTO t VALUES (2)")
    assert not probe.changed()  # uncommitted
    writer.execute("ROLLBACK")
    assert not probe.changed()  # rolled back: nothing happened
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("SELECT * FROM t").fetchall()
    assert not probe.changed()  # reads change nothing
    with sqlite3.connect(path, isolation_level=None) as other:
        other.execute("INSERT INTO t VALUES (3)")
    assert probe.changed()
    writer.execute("BEGIN IMMEDIATE")  # the probe waits for no lock, and holds none
    assert not probe.changed()
    writer.execute("INSERT INTO t VALUES (4)")
    writer.execute("COMMIT")
    assert probe.changed()
    probe.close()
    assert probe.changed()  # reopened: a new connection's counter is not comparable
    assert not probe.changed()
    restored = tmp_path / "restored.db"
    with sqlite3.connect(restored, isolation_level=None) as other:
        other.execute("CREATE TABLE t (x INTEGER)")
    os.replace(restored, path)  # a restore under the same name: the open file never changes
    assert probe.changed() and not probe.changed()
    path.unlink()
    assert probe.changed() and probe.changed()  # gone: always "changed"
    writer.close()
    reader.close()


@pytest.fixture
def workers(
    committing_engine: Engine, settings: Settings
) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    with session_factory(committing_engine)() as s:
        headers = admin_headers(s)
        s.commit()
    with (
        TestClient(create_app(settings, bind=committing_engine)) as a,
        TestClient(create_app(settings, bind=committing_engine)) as b,
    ):
        yield a, b, headers


def _statements(engine: Engine, call: Callable[[], Any]) -> tuple[Any, list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        return call(), seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _until_changed(client: TestClient, etag: str, seconds: float = 5.0) -> tuple[str, float]:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        r = client.get(URL, headers={"If-None-Match": etag})
        if r.status_code == 200:
            return r.headers["etag"], time.monotonic() - began
        assert r.status_code == 304, r.text
        time.sleep(0.01)
    raise AssertionError(f"the change did not reach the other worker in {seconds} s")


def _settled(cache: VersionCache) -> int:
    """The cache's generation once no notification has come for 0.3 s."""
    began = time.monotonic()
    seen, since = cache.generation, time.monotonic()
    while time.monotonic() - began < 10:
        time.sleep(0.05)
        if cache.generation != seen:
            seen, since = cache.generation, time.monotonic()
        elif time.monotonic() - since >= 0.3:
            return seen
    raise AssertionError("notifications kept coming")


def _listening(client: TestClient) -> None:
    listener = client.app.state.version_listener  # type: ignore[attr-defined]
    assert listener.listening.wait(10), "the listener did not connect"


def test_versions_from_memory_stay_true_across_workers(
    backend: str,
    committing_engine: Engine,
    workers: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    a, b, headers = workers
    sqlite = backend == "sqlite"
    if sqlite:  # no notifications: the file's data_version instead
        assert not hasattr(a.app.state, "version_listener")  # type: ignore[attr-defined]
    else:
        _listening(a)
        _listening(b)
    put_department(b, headers, "d1")
    put_metric(b, headers, "m1", "d1")
    first = a.get(URL)
    assert first.status_code == 200
    etag = first.headers["etag"]

    # A 304 from memory: no SQL at all (not even BEGIN: the session never connects).
    a.get(URL, headers={"If-None-Match": etag})
    r, sql = _statements(committing_engine, lambda: a.get(URL, headers={"If-None-Match": etag}))
    assert r.status_code == 304 and sql == []

    # A write through the other worker reaches this one by NOTIFY (on SQLite: at once).
    put_metric(b, headers, "m1", "d1", name="Renamed once")
    if sqlite:
        assert a.get(URL, headers={"If-None-Match": etag}).status_code == 200
    etag2, took = _until_changed(a, etag)
    assert a.get(URL).json()["name"] == "Renamed once"
    assert took < 3.0, took  # about a millisecond when the machine is quiet

    # A write through this worker is seen by its next request, with no wait.
    put_metric(a, headers, "m1", "d1", name="Renamed twice")
    r = a.get(URL, headers={"If-None-Match": etag2})
    assert r.status_code == 200 and r.json()["name"] == "Renamed twice"
    etag3 = r.headers["etag"]
    if sqlite:
        return

    # The listening connections die: no stale answer survives it.
    with committing_engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'cityscore-change-listener' "
                "AND datname = current_database()"
            )
        ).scalar()
        conn.commit()
    assert killed == 2
    put_metric(b, headers, "m1", "d1", name="Renamed while deaf")
    _until_changed(a, etag3)
    assert a.get(URL).json()["name"] == "Renamed while deaf"
    _listening(a)  # back, and answering from memory again
    etag4 = a.get(URL).headers["etag"]
    a.get(URL, headers={"If-None-Match": etag4})
    r, sql = _statements(committing_engine, lambda: a.get(URL, headers={"If-None-Match": etag4}))
    assert r.status_code == 304 and sql == []


def test_a_warm_read_asks_the_store_only_for_its_rows(
    backend: str,
    committing_engine: Engine,
    workers: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    """Slugs' ids and a department's metrics come from memory too: a warm page runs only
    its data query (on the driver's cursor, so no SQLAlchemy statement at all)."""
    a, b, headers = workers
    if backend != "sqlite":
        _listening(a)
    put_department(b, headers, "d1")
    put_metric(b, headers, "m1", "d1")
    for path in ("/v1/values?metric=m1&limit=10", "/v1/values?department=d1&limit=10"):
        assert a.get(path).status_code == 200
        r, sql = _statements(committing_engine, lambda path=path: a.get(path))  # type: ignore[misc]
        # The page itself comes from the response cache: not even a BEGIN.
        assert r.status_code == 200 and sql == [], (path, sql)
    assert a.get("/v1/values?department=nowhere").status_code == 200
    assert ("department-scopes", "nowhere") not in a.app.state.versions._entries  # type: ignore[attr-defined]


def test_only_a_write_that_changed_something_empties_the_cache(
    backend: str, workers: tuple[TestClient, TestClient, dict[str, str]]
) -> None:
    """A POST that changes nothing (a replayed ingest batch) leaves the cache as it was:
    otherwise any client could keep every worker's 304s at their old cost."""
    a, b, headers = workers
    if backend != "sqlite":
        _listening(a)
    put_department(b, headers, "d1")
    put_metric(b, headers, "m1", "d1", aggregation="mean")
    rows = [{"metric": "m1", "date": "2026-01-05", "value": 3.0}]
    assert a.post("/v1/ingest/values", json=rows, headers=headers).status_code == 200
    etag = a.get(URL).headers["etag"]
    a.get(URL, headers={"If-None-Match": etag})
    cache = a.app.state.versions  # type: ignore[attr-defined]
    generation = _settled(cache)  # the first batch's own notification has arrived
    replay = a.post("/v1/ingest/values", json=rows, headers=headers)
    assert replay.status_code == 200 and replay.json()["unchanged"] == 1
    assert cache.generation == generation  # the notification of a real write aside
    # SQLite knows only that the file changed, and a replay commits its receipt: the next
    # read empties the cache there (one version query again), and still answers 304.
    assert a.get(URL, headers={"If-None-Match": etag}).status_code == 304
    assert (cache.generation == generation) is (backend != "sqlite")


def test_answers_from_memory_never_leave_the_event_loop(
    backend: str,
    workers: tuple[TestClient, TestClient, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A conditional GET answered from memory, a 304 from the version cache or a body the
    response cache holds, stays on the event loop (``api.http.memory_first``): no threadpool
    hop. A plain GET, and one that must read the store, still go to the threadpool, and get
    the same answer they always did."""
    import anyio.to_thread

    a, b, headers = workers
    if backend != "sqlite":
        _listening(a)
    put_department(b, headers, "d1")
    put_metric(b, headers, "m1", "d1")
    hops: list[Any] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    paths = (URL, "/v1/values?metric=m1&limit=10", "/v1/metrics/m1/values", "/v1/cityscore")
    for path in paths:
        first = a.get(path)
        assert first.status_code == 200, (path, first.text)
        assert hops, path  # the cold read went to the threadpool
        etag = first.headers["etag"]
        a.get(path, headers={"If-None-Match": etag})  # warms what the first read could not keep
        hops.clear()
        r = a.get(path, headers={"If-None-Match": etag})
        assert r.status_code == 304 and hops == [], (path, hops)
        stale = a.get(path, headers={"If-None-Match": '"an-older-etag"'})  # cached body
        assert stale.status_code == 200 and stale.content == first.content and hops == [], path
        assert a.get(path).content == first.content and hops, path  # plain GET: threadpool
        hops.clear()
        if path != URL:  # a metric's document has no CSV form
            download = a.get(path, headers={"Accept": "text/csv"})
            assert download.status_code == 200 and download.text.startswith(("metric", "date"))
            assert hops, path  # a download reads the store: threadpool
        hops.clear()
