"""sodapy's ``get_all`` vs our own keyset-paged JSON, for the same 100,000 daily values.

`.venv/bin/python bench/soda_get_all.py [--rows 100000] [--page 1000] [--rounds 3] [--pg-url URL]`

For each store (a SQLite file and a fresh PostgreSQL database) it loads the demo with enough
metrics for ``--rows`` values, starts ``cityscore serve`` (a separate process, port 8290), then
reads the first ``--rows`` values twice, a page of ``--page`` rows at a time: through the real
``sodapy`` client (``Socrata.get_all``: ``$offset`` paging on ``/resource/values.json``) and by
following ``next`` links of ``/v1/values?limit=--page`` (with ``requests``, sodapy's own
HTTP client), alternating for ``--rounds`` rounds. Prints each reader's best rate and the
ratio (target: sodapy at no less than half our own rate, i.e. ratio >= 0.5).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import requests
from alembic.config import Config
from sodapy import Socrata
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alembic import command
from api.demo import service as demo
from api.settings import Settings
from db.session import make_engine, session_factory

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/bench_soda"
PORT = 8290


def prepare(url: str, rows: int) -> None:
    """Migrate and load the demo: 3 years of values for as many metrics as ``rows`` needs."""
    if not url.startswith("sqlite"):
        target = make_url(url)
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = url
    command.upgrade(config, "head")
    engine = make_engine(url)
    metrics = rows // 900 + 2  # some metrics skip days (weekly data, gaps)
    with session_factory(engine)() as session:
        print(" ", demo.load(session, years=3, metrics=metrics, today=Settings().today()))
        session.commit()
    engine.dispose()


def serve(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "RATE_LIMIT_ENABLED": "false"}
    exe = Path(sys.executable).parent / "cityscore"
    args = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(PORT)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not start")


def sodapy_rate(rows: int, page: int) -> float:
    adapter = {"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()}
    client = Socrata(f"127.0.0.1:{PORT}", "bench", session_adapter=adapter, timeout=60)
    start = time.perf_counter()
    got = sum(1 for _ in itertools.islice(client.get_all("values", limit=page), rows))
    elapsed = time.perf_counter() - start
    client.close()
    assert got == rows, got
    return rows / elapsed


def v1_rate(rows: int, page: int, round_: int) -> float:
    got = 0
    start = time.perf_counter()
    with requests.Session() as client:  # the HTTP client sodapy uses, for a like-for-like rate
        # An ignored parameter per round keeps the ETag-keyed response cache cold: repeated
        # rounds would otherwise be served from memory, which SODA pages are not.
        url: str | None = f"http://127.0.0.1:{PORT}/v1/values?limit={page}&round={round_}"
        while url and got < rows:
            body = client.get(url, timeout=60).json()
            got += len(body["data"])
            url = body["next"]
    elapsed = time.perf_counter() - start
    assert got >= rows, got
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_SODA_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("SQLite", f"sqlite:///{tmp}/soda.db"), ("PostgreSQL", args.pg_url)):
            print(f"{label}: loading")
            prepare(url, args.rows)
            proc = serve(url)
            try:
                v1_rate(args.page * 3, args.page, -1)  # warm-up
                # Alternate the two readers and keep each one's best round: on a shared
                # machine the load moves between rounds, not within one.
                ours, soda = 0.0, 0.0
                for round_ in range(args.rounds):
                    ours = max(ours, v1_rate(args.rows, args.page, round_))
                    soda = max(soda, sodapy_rate(args.rows, args.page))
            finally:
                proc.terminate()
                proc.wait(10)
            print(
                f"{label}: {args.rows:,} values, pages of {args.page}, best of {args.rounds}: "
                f"sodapy get_all {soda:,.0f} rows/s, /v1/values {ours:,.0f} rows/s, "
                f"ratio {soda / ours:.2f} (target >= 0.5)"
            )


if __name__ == "__main__":
    main()
