"""One big ingest batch, end to end: `python bench/ingest_batch.py [--metrics 50] [--days 1000]`.

Creates a fresh PostgreSQL database (``--pg-url``, default the machine's server) and a SQLite
file, defines ``--metrics`` pooled-ratio metrics, then posts one batch of metrics x days rows
through ``POST /v1/ingest/values`` three times: create, replay (all unchanged) and update
(every row changed, every old version kept as a revision). Prints seconds per batch; the
times include recomputing every affected score before the answer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alembic import command
from api.keys import service as keys
from api.main import create_app
from api.settings import Settings
from db.session import make_engine, session_factory

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/test"


def migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


def run(url: str, label: str, metrics: int, days: int) -> None:
    migrate(url)
    engine = make_engine(url)
    with session_factory(engine)() as s:
        _, token = keys.create(s, name="bench", admin=True)
        s.commit()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    client = TestClient(create_app(Settings(database_url=url, rate_limit_enabled=False)))
    client.put("/v1/departments/d", json={"name": "D"}, headers=headers).raise_for_status()
    for i in range(metrics):
        client.put(
            f"/v1/metrics/m{i}",
            headers=headers,
            json={
                "name": f"m{i}",
                "department": "d",
                "direction": "higher_is_better",
                "aggregation": "pooled_ratio",
                "reference": "target",
                "targets": [{"effective_from": "2000-01-01", "value": 0.9}],
            },
        ).raise_for_status()
    first = dt.date.today() - dt.timedelta(days=days + 2)

    def body(k: int) -> bytes:
        return orjson.dumps(
            [
                {
                    "metric": f"m{i}",
                    "date": (first + dt.timedelta(days=d)).isoformat(),
                    "numerator": 90 + (d + k) % 10,
                    "denominator": 100,
                }
                for i in range(metrics)
                for d in range(days)
            ]
        )

    for step, k in (("create", 0), ("replay", 0), ("update", 1)):
        payload = body(k)
        began = time.perf_counter()
        r = client.post("/v1/ingest/values", content=payload, headers=headers)
        elapsed = time.perf_counter() - began
        r.raise_for_status()
        receipt = {k: v for k, v in r.json().items() if k not in ("dry_run", "batch")}
        rows = metrics * days
        print(
            f"{label:10} {step:7} {rows:,} rows ({len(payload) / 1e6:.1f} MB): {elapsed:.2f} s "
            f"= {rows / elapsed:,.0f} rows/s  {receipt}",
            flush=True,
        )
    engine.dispose()
    client.app.state.engine.dispose()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="server to create a database on")
    args = parser.parse_args()
    name = f"cityscore_ingest_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
        run(url, "postgresql", args.metrics, args.days)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/ingest.db", "sqlite", args.metrics, args.days)


if __name__ == "__main__":
    main()
