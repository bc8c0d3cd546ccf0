"""Reads on a real streaming replica (initdb + pg_basebackup -R, private clusters).

A write on the primary shows on the replica; public reads are served by the replica; a
stopped replica sends reads to the primary, and a restarted one gets them back; no 500.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.live import REPORT, LiveServer, load_demo
from tests.pg_cluster import Cluster, pg_bin


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    binaries = pg_bin()
    if binaries is None:
        message = "no PostgreSQL server binaries found (set PG_BIN): replicas NOT tested"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    primary = Cluster(binaries).init().start()
    standby = None
    try:
        standby = primary.replica().start()
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


def read_connections(cluster: Cluster) -> int:
    engine = create_engine(cluster.url)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cityscore-read'")
        ).scalar_one()
    engine.dispose()
    return int(n)


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_reads_on_the_replica_and_back_to_the_primary(
    clusters: tuple[Cluster, Cluster], tmp_path: Path
) -> None:
    primary, standby = clusters
    keys = load_demo(primary.url, metrics=5, years=1)
    server = LiveServer(
        primary.url,
        env={"DATABASE_READ_URL": standby.url, "READ_MAX_LAG_S": "5"},
        log_path=tmp_path / "server.log",
    ).start()
    statuses: list[int] = []
    try:
        slug = server.get("/v1/metrics?department=311&limit=1").json()["data"][0]["slug"]
        day = (dt.date.today() - dt.timedelta(days=3)).isoformat()
        r = httpx.post(
            server.url + "/v1/ingest/values",
            json=[{"metric": slug, "date": day, "numerator": 4242.0, "denominator": 5000.0}],
            headers={"Authorization": f"Bearer {keys['dept']}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text

        def replica_has_it() -> bool:
            rows = server.get(f"/v1/values?metric={slug}&start={day}&end={day}").json()["data"]
            statuses.append(200)
            return bool(rows) and rows[0]["numerator"] == 4242.0

        assert wait_for(replica_has_it), "the write never showed through the replica"
        assert read_connections(standby) > 0, "public reads did not use the replica"

        standby.stop("fast")
        for _ in range(30):  # reads go on, from the primary
            r = server.get("/v1/cityscore")
            statuses.append(r.status_code)
            assert r.status_code == 200 or (
                r.status_code == 503 and r.headers.get("retry-after")
            ), r.text
        assert statuses[-1] == 200

        standby.start()
        standby.wait_ready()
        assert wait_for(
            lambda: (
                server.get("/v1/cityscore").status_code == 200 and bool(read_connections(standby))
            )
        ), "reads did not come back to the restarted replica"
    finally:
        server.stop()
    REPORT.setdefault("replica reads checked", {})["postgresql"] = len(statuses)
