"""``as_known_at`` on the 23-metric demo: CityScore for one as-of date, computed on read.

`.venv/bin/python bench/as_known_at.py [--requests 200] [--pg-url URL]`

For each store (a SQLite file and a fresh PostgreSQL database) it loads the demo (23 metrics,
3 years), starts ``cityscore serve`` (a separate process), and asks
``/v1/cityscore?as_of=D&as_known_at=T`` for ``--requests`` different as-of dates D (so the
response cache never helps) one at a time, against two anchors measured in the same run on
the same dates: the materialised ``/v1/cityscore?as_of=D`` and ``/healthz``. Prints the p50 and
p95 of each and the ratio (target: as_known_at p50 under 100 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soda_get_all import PORT, prepare, serve

DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/bench_known_at"


def latencies(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        start = time.perf_counter()
        r = client.get(path)
        out.append(time.perf_counter() - start)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return out


def figures(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"{label} p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms"


def measure(n: int) -> tuple[list[float], list[float], list[float]]:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    today = dt.date.today()
    dates = [(today - dt.timedelta(days=30 + i)).isoformat() for i in range(n)]
    with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=30) as client:
        latencies(client, ["/healthz", f"/v1/cityscore?as_of={dates[0]}&as_known_at={at}"] * 5)
        known = latencies(client, [f"/v1/cityscore?as_of={d}&as_known_at={at}" for d in dates])
        stored = latencies(client, [f"/v1/cityscore?as_of={d}" for d in dates])
        health = latencies(client, ["/healthz"] * n)
    return known, stored, health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_KNOWN_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("SQLite", f"sqlite:///{tmp}/known.db"), ("PostgreSQL", args.pg_url)):
            prepare(url, 23 * 900 - 2 * 900)  # the 23 demo metrics
            proc = serve(url)
            try:
                known, stored, health = measure(args.requests)
            finally:
                proc.terminate()
                proc.wait(10)
            ratio = statistics.median(known) / statistics.median(stored)
            print(
                f"{label}: {figures('as_known_at', known)}; {figures('materialised', stored)}; "
                f"{figures('/healthz', health)}; as_known_at / materialised p50 {ratio:.1f}x "
                f"(target: as_known_at p50 < 100 ms)"
            )


if __name__ == "__main__":
    main()
