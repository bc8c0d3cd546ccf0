"""p50 render time of every page type of the site on the demo data.

    .venv/bin/python bench/web_render.py [--years 3] [--metrics 23] [--runs 30]
                                         [--database-url URL]

Loads the demo into a fresh SQLite file (or uses ``--database-url`` as it is, which must
already hold the demo), then renders each page type ``--runs`` times in process through the
ASGI app (no network, no conditional requests: every run renders in full) and prints the
median, the 90th percentile and the page size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PAGES = {
    "scoreboard": "/",
    "departments": "/departments",
    "department": "/departments/311",
    "metrics": "/metrics",
    "metrics (search)": "/metrics?q=on-time&department=public-works",
    "metric (weekly)": "/metrics/311-call-center-performance",
    "metric (daily)": "/metrics/311-call-center-performance?interval=day",
    "metric (monthly)": "/metrics/311-call-center-performance?interval=month",
    "weekly report": "/reports/weekly",
    "analyses": "/analyses",
    "analysis": "/analyses/ems-ambulance-allocation",
    "about": "/about",
    "embed": "/embed/cityscore",
    "sparkline.svg": "/v1/metrics/311-call-center-performance/sparkline.svg",
    "analyses.atom": "/v1/analyses.atom",
}


def load_demo(url: str, years: int, metrics: int) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    for args in (["db", "upgrade"], ["demo", "--years", str(years), "--metrics", str(metrics)]):
        subprocess.run([str(BIN / "cityscore"), *args], env=env, check=True, capture_output=True)


def measure(url: str, runs: int) -> None:
    import warnings

    warnings.simplefilter("ignore")  # the test client's httpx deprecation notice
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    app = create_app(Settings(database_url=url, rate_limit_enabled=False))
    with TestClient(app) as client:
        print(f"{'page':<20} {'p50 ms':>8} {'p90 ms':>8} {'KB':>7}")
        for name, path in PAGES.items():
            client.get(path)  # warm: templates compiled, connections open
            times = []
            size = 0
            for _ in range(runs):
                started = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, (path, r.status_code)
                size = len(r.content)
            times.sort()
            p90 = times[int(len(times) * 0.9) - 1]
            print(f"{name:<20} {statistics.median(times):8.1f} {p90:8.1f} {size / 1024:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--metrics", type=int, default=23)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if args.database_url:
        measure(args.database_url, args.runs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        load_demo(url, args.years, args.metrics)
        print(f"demo: {args.years} years, {args.metrics} metrics, SQLite; {args.runs} runs each")
        measure(url, args.runs)


if __name__ == "__main__":
    main()
