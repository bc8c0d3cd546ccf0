"""Scale-out figures (issue 14): read req/s with 1 and 2 server processes, with reads on a
streaming replica, and the replica's lag while a 100,000-row ingest runs on the primary.

Private PostgreSQL clusters (tests/pg_cluster.py: initdb + pg_basebackup -R on free ports),
the 23-metric demo, and the same mixed read load against each setup: /v1/cityscore for a
different as-of date per request (the response cache cannot answer) and 1000-row pages of
/v1/values at different start dates. Everything runs on this machine's two cores together
(servers, PostgreSQL, the replica and the load generator), so a second process can only
help as far as a core is free; the ratio is what to read, against the 1-process anchor.

    .venv/bin/python bench/scale.py [--seconds 15] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import LoadResult, run_load
from tests.live import LiveServer, load_demo
from tests.pg_cluster import Cluster, pg_bin


def read_url(server: LiveServer, i: int) -> str:
    day = dt.date(2026, 11, 1) - dt.timedelta(days=i % 700)
    if i % 2:
        return f"{server.url}/v1/cityscore?as_of={day}"
    return f"{server.url}/v1/values?limit=1000&start={day}"


def measure(label: str, server: LiveServer, seconds: float, concurrency: int) -> LoadResult:
    result = run_load(
        label, lambda i: read_url(server, i), concurrency=concurrency, duration=seconds
    )
    print(result.summary(), flush=True)
    return result


def replica_lag(primary: Cluster, standby: Cluster, keys: dict[str, str], url: str) -> str:
    """Replay lag sampled every 50 ms while 100,000 rows are ingested (10 batches)."""
    standby_engine = create_engine(standby.url)
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        with standby_engine.connect() as conn:
            while not done.is_set():
                lag = conn.execute(
                    text(
                        "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
                        "THEN 0 ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                        " END"
                    )
                ).scalar_one()
                samples.append(float(lag or 0))
                conn.commit()
                time.sleep(0.05)

    metrics = httpx.get(url + "/v1/metrics").json()["data"]
    first = dt.date.today() - dt.timedelta(days=4400)
    rows = []
    for m in metrics:
        ratio = m["aggregation"] in ("pooled_ratio", "mean_of_ratios")
        for d in range(100_000 // len(metrics) + 1):
            day = (first + dt.timedelta(days=d)).isoformat()
            shape = (
                {"numerator": float(d % 97), "denominator": 100.0}
                if ratio
                else {"value": float(d % 97)}
            )
            rows.append({"metric": m["slug"], "date": day, **shape})
    rows = rows[:100_000]
    thread = threading.Thread(target=sample)
    thread.start()
    began = time.perf_counter()
    for i in range(0, len(rows), 10_000):
        r = httpx.post(
            url + "/v1/ingest/values",
            json=rows[i : i + 10_000],
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=600,
        )
        r.raise_for_status()
    took = time.perf_counter() - began
    # Catch-up: how long after the last batch's answer the replica had replayed everything.
    primary_engine = create_engine(primary.url)
    with primary_engine.connect() as conn:
        target = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()
    primary_engine.dispose()
    with standby_engine.connect() as conn:
        while conn.execute(
            text("SELECT pg_last_wal_replay_lsn() < CAST(:t AS pg_lsn)"), {"t": target}
        ).scalar_one():
            conn.commit()
            time.sleep(0.01)
    caught_up = time.perf_counter() - began - took
    done.set()
    thread.join()
    standby_engine.dispose()
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1] if samples else float("nan")
    return (
        f"100,000-row ingest in {took:.1f} s; the replica had replayed all of it "
        f"{caught_up:.2f} s after the last answer. Replay-timestamp lag while it ran (what "
        f"READ_MAX_LAG_S compares; it also counts the idle time before the first write): "
        f"max {max(samples):.2f} s, p99 {p99:.2f} s over {len(samples)} samples"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    binaries = pg_bin()
    if binaries is None:
        print("no PostgreSQL server binaries (set PG_BIN)", file=sys.stderr)
        return 1
    primary = Cluster(binaries).init().start()
    standby = primary.replica().start()
    try:
        keys = load_demo(primary.url, metrics=23, years=3)
        setups = [
            ("1 process, primary", {}, 1),
            ("2 processes, primary", {}, 2),
            ("2 processes, reads on the replica", {"DATABASE_READ_URL": standby.url}, 2),
        ]
        results = []
        for label, env, workers in setups:
            server = LiveServer(primary.url, env=env, workers=workers).start()
            try:
                results.append(measure(label, server, args.seconds, args.concurrency))
            finally:
                server.stop()
        anchor = results[0].rps
        for r in results:
            print(f"{r.label}: {r.rps:,.0f} req/s = {r.rps / anchor:.2f}x the 1-process anchor")
        server = LiveServer(primary.url, env={"DATABASE_READ_URL": standby.url}).start()
        try:
            print(replica_lag(primary, standby, keys, server.url))
        finally:
            server.stop()
    finally:
        standby.destroy()
        primary.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
